"""The semantic-ID stage (STUDY.md §2.3, §5): every scheme's IDs from the embeddings, cached, with diagnostics.

    ids = prepare_ids(cfg, vectors)                       # (embedding, quantizer) -> (codes, diag)
    table = diagnostics_table(ids)                        # one row per ID set
    sid = load_ids(cfg, "separate", "rq_kmeans")          # later stages: sid.search, sid.rec

A scheme is ``(embedding, quantizer)``. ``separate`` and ``prefix_share`` are not vectors but two ID
sets per item, built from the ``search`` and ``rec`` matrices; their arrays hold the search ID and the
rec ID side by side (JSON ``layout``). Files: ``runs/<folder>/ids/<embedding>__<quantizer>.npy/.json``,
written by ``ids.build.build_ids``, which reloads them when config and input are unchanged.

A training seed refits every quantizer (``seed=``): the study seed's IDs keep the plain name above (what
notebooks 03, 04 and 07 diagnose), another seed's are ``<embedding>__<quantizer>__seed<s>``. The
embeddings they quantize are fit once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from jointsid_utils.cache import manifest_path, run_dir
from jointsid_utils.config import StudyConfig
from jointsid_utils.errors import StudyInputError
from jointsid_utils.ids.build import build_ids
from jointsid_utils.quantizers import QUANTIZERS, make_quantizer, scheme_diagnostics
from jointsid_utils.study import TABLE_A, TWO_ID_SCHEMES, Scheme, study_schemes, table_a

# Every ID set of Tables A and B that notebook 03 may build (``jointsid_utils.study`` declares them).
SCHEMES: tuple[Scheme, ...] = tuple(study_schemes(include_content_quantizers=True))


def schemes_in_scope(cfg: StudyConfig) -> tuple[Scheme, ...]:
    """The ID sets notebook 03 builds: every scheme, less content's Table B quantizers (all but rq_kmeans)
    unless ``scope.content_quantizers`` asks for them; then a Table A row per supplied embedding
    (``embeddings.extra``)."""
    from jointsid_utils.embeddings.registry import extra_embeddings

    own = SCHEMES if cfg.scope.content_quantizers else tuple(s for s in SCHEMES
                                                             if s[0] != "content" or s[1] == "rq_kmeans")
    return own + tuple(s for s in table_a(tuple(extra_embeddings(cfg))) if s not in own)


# IdConfig field -> quantizer config field, per method. A method without an entry that subclasses one of
# these (``rq_vae_fixed``) gets only its parent's training-budget knobs, so the profile sets its steps
# but cannot undo the settings that make it "fixed".
_KNOBS: dict[str, dict[str, str]] = {
    "rq_kmeans": {"backend": "rq_kmeans_backend", "niter": "rq_kmeans_niter"},
    "rq_vae": {"steps": "rq_vae_steps", "batch_size": "rq_vae_batch_size", "lr": "rq_vae_lr",
               "optimizer": "rq_vae_optimizer", "latent_dim": "rq_vae_latent_dim", "log_every": "rq_vae_log_every"},
    "residual_lfq": {"steps": "lfq_steps", "normalize": "lfq_normalize",
                     "entropy_loss_weight": "lfq_entropy_loss_weight"},
    "dict_learning": {"max_iter": "dict_max_iter", "alpha": "dict_alpha"},
}
_BUDGET = ("steps", "batch_size", "log_every", "niter", "max_iter")


def id_seed(cfg: StudyConfig, seed: int | None) -> int:
    """The seed a quantizer is fit with: a training seed's own, or the study seed when none is named."""
    return cfg.seed if seed is None else int(seed)


def ids_stem(cfg: StudyConfig, embedding: str, quantizer: str, seed: int | None = None) -> str:
    """The files' name under ``ids/``: ``<embedding>__<quantizer>`` for the study seed, so the diagnostics of
    notebooks 03, 04 and 07 read one name whatever the seeds; ``...__seed<s>`` for another seed's refit."""
    base = f"{embedding}__{quantizer}"
    return base if id_seed(cfg, seed) == cfg.seed else f"{base}__seed{id_seed(cfg, seed)}"


def quantizer_kwargs(cfg: StudyConfig, name: str, seed: int | None = None) -> dict[str, Any]:
    """``cfg.ids`` mapped onto quantizer ``name``'s config: levels, codebook_size, seed (``id_seed``) and its
    own knobs."""
    if name not in QUANTIZERS:
        make_quantizer(name)  # the registry's one-sentence error listing valid names
    ids = cfg.ids
    out: dict[str, Any] = {"levels": ids.levels, "codebook_size": ids.codebook_size, "seed": id_seed(cfg, seed)}
    cls = QUANTIZERS[name]
    if name in _KNOBS:
        knobs = _KNOBS[name]
    else:  # a method without its own entry: the budget knobs of the family it derives from, if any
        parents = [p for p in _KNOBS if p in QUANTIZERS and issubclass(cls, QUANTIZERS[p])]
        knobs = {k: v for k, v in _KNOBS[parents[0]].items() if k in _BUDGET} if parents else {}
    fields = set(cls.Config.__dataclass_fields__)
    out.update({key: getattr(ids, field) for key, field in knobs.items() if key in fields})
    return out


def scheme_kwargs(cfg: StudyConfig, embedding: str, quantizer: str, seed: int | None = None) -> dict[str, Any]:
    """``quantizer_kwargs`` plus the scheme's own codebook size (``prefix_share``'s shared + task codebooks)."""
    out = quantizer_kwargs(cfg, quantizer, seed)
    if embedding == "prefix_share" and cfg.ids.prefix_share_codebook_size is not None:
        out["codebook_size"] = cfg.ids.prefix_share_codebook_size
    return out


def _check_schemes(requested: Iterable[Scheme], embeddings: Mapping[str, np.ndarray]) -> list[Scheme]:
    out = []
    for scheme in requested:
        if not (isinstance(scheme, (tuple, list)) and len(scheme) == 2):
            raise StudyInputError(f"Scheme {scheme!r} is not an (embedding, quantizer) pair, e.g. ('content', 'rq_kmeans').")
        emb, quant = scheme
        if quant not in QUANTIZERS:
            raise StudyInputError(f"Scheme {emb}__{quant}: unknown quantizer {quant!r}; registered: {', '.join(QUANTIZERS)}.")
        if emb not in TABLE_A and emb not in embeddings:
            raise StudyInputError(f"Scheme {emb}__{quant}: unknown embedding {emb!r}; use one of "
                                  f"{', '.join(TABLE_A)} or a key of the embeddings passed in.")
        needed = ("search", "rec") if emb in TWO_ID_SCHEMES else (emb,)
        missing = [m for m in needed if m not in embeddings]
        if missing:
            raise StudyInputError(f"Scheme {emb}__{quant} needs the {', '.join(missing)} embedding(s), which were not "
                                  f"passed; run notebook 02 (prepare_embeddings) for them first.")
        out.append((emb, quant))
    return list(dict.fromkeys(out))


def _check_inputs(cfg: StudyConfig, todo: Sequence[Scheme], embeddings: Mapping[str, np.ndarray]) -> None:
    """Each matrix a scheme reads is finite and has at least a codebook's worth of items, checked before any fit
    so the sentence names the embedding and the config key rather than the quantizer's argument ``X``."""
    from jointsid_utils.quantizers.base import check_matrix

    for emb, quant in todo:
        K = scheme_kwargs(cfg, emb, quant)["codebook_size"]
        key = "ids.prefix_share_codebook_size" if emb == "prefix_share" and cfg.ids.prefix_share_codebook_size \
            is not None else "ids.codebook_size"
        for name in (("search", "rec") if emb in TWO_ID_SCHEMES else (emb,)):
            X = np.asarray(embeddings[name])
            if X.ndim == 2 and np.issubdtype(X.dtype, np.number) and not np.isfinite(X).all():
                rows = int((~np.isfinite(X)).any(axis=1).sum())
                raise StudyInputError(f"The {name!r} embedding has NaN or infinite values in {rows} row(s), so "
                                      f"scheme {emb}__{quant} cannot be quantized; rebuild it with notebook 02 "
                                      "(prepare_embeddings) or drop those items.")
            n = len(check_matrix(X, f"The {name!r} embedding"))
            if K > n:
                raise StudyInputError(f"{key}={K} is larger than the {n} items of the {name!r} embedding "
                                      f"(scheme {emb}__{quant}); pass -p {key} {max(2, n // 8)} "
                                      f"(at most {n}; a few items per code works best).")


def prepare_ids(cfg: StudyConfig, embeddings: Mapping[str, np.ndarray], schemes: Sequence[Scheme] | None = None,
                *, seed: int | None = None, progress: bool = True) -> dict[Scheme, tuple[np.ndarray, dict[str, Any]]]:
    """Build (or reload) the IDs of every scheme into ``runs/<folder>/ids/``; (emb, quant) -> (codes, diag).

    ``schemes`` defaults to every scheme of STUDY.md §5 (``SCHEMES``); ``seed`` is the training seed whose
    quantizers are fit (default: the study seed). All schemes are checked before anything is fitted, so a
    typo fails in a second, not after the RQ-VAE.
    """
    from tqdm.auto import tqdm

    todo = _check_schemes(SCHEMES if schemes is None else schemes, embeddings)
    _check_inputs(cfg, todo, embeddings)
    out_dir = run_dir(cfg.folder, "ids")
    results: dict[Scheme, tuple[np.ndarray, dict[str, Any]]] = {}
    bar = tqdm(todo, desc="semantic IDs", unit="scheme", disable=not progress)
    for emb, quant in bar:
        bar.set_postfix_str(ids_stem(cfg, emb, quant, seed))
        X = (embeddings["search"], embeddings["rec"]) if emb in TWO_ID_SCHEMES else embeddings[emb]
        results[(emb, quant)] = build_ids(emb, quant, X, out_dir, file_stem=ids_stem(cfg, emb, quant, seed),
                                          **scheme_kwargs(cfg, emb, quant, seed))
    return results


@dataclass(frozen=True)
class SemanticIds:
    """One scheme's IDs for the generator: ``search`` and ``rec`` are (n_items, levels + 1) int64 (the same
    array for one-block schemes); ``codes`` is the stored array, ``diagnostics`` its JSON."""

    embedding: str
    quantizer: str
    codes: np.ndarray
    search: np.ndarray
    rec: np.ndarray
    diagnostics: dict[str, Any]

    @property
    def two_block(self) -> bool:
        return self.embedding in TWO_ID_SCHEMES

    def for_task(self, task: str) -> np.ndarray:
        if task not in ("search", "rec"):
            raise StudyInputError(f"task {task!r} is not 'search' or 'rec'.")
        return self.search if task == "search" else self.rec


def load_ids(cfg: StudyConfig, embedding: str, quantizer: str, seed: int | None = None) -> SemanticIds:
    """A built scheme from ``runs/<folder>/ids/`` (training ``seed``'s refit, default the study seed's); the
    two-block schemes split by their JSON ``layout``."""
    ids_dir = run_dir(cfg.folder, "ids")
    stem = ids_stem(cfg, embedding, quantizer, seed)
    npy, js = ids_dir / f"{stem}.npy", ids_dir / f"{stem}.json"
    if not (npy.exists() and js.exists()):
        builder = "notebook 03" if stem == f"{embedding}__{quantizer}" else "notebook 05 (its IDs of every seed)"
        raise StudyInputError(f"{npy.name} is missing under {ids_dir}; run {builder} "
                              f"(./run_all.sh --profile {cfg.name} --only {builder[9:11]}) first.")
    codes = np.load(npy, allow_pickle=False)
    diag = json.loads(js.read_text())
    manifest = manifest_path(npy)
    if manifest.exists() and diag.get("cache_key") != json.loads(manifest.read_text()).get("key"):
        raise StudyInputError(f"{js.name} does not belong to {npy.name} (an interrupted build); rerun notebook 03.")
    layout = diag.get("layout")
    if isinstance(layout, dict):
        (s0, s1), (r0, r1) = layout["search"], layout["rec"]
        search, rec = codes[:, s0:s1], codes[:, r0:r1]
    else:
        search = rec = codes
    return SemanticIds(embedding, quantizer, codes, search, rec, diag)


# diagnostics ------------------------------------------------------------------------------------

def id_sets(diag: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """A scheme's ID sets with their diagnostics: ``[("", diag)]`` for one-block schemes, ``[("search",
    block), ("rec", block)]`` for the two-ID schemes, in the order of the array's columns."""
    blocks = diag.get("blocks")  # the JSON stores keys sorted; keep the array's order: search, then rec
    return [(task, blocks[task]) for task in ("search", "rec")] if blocks else [("", diag)]


def diagnostics_table(results: Mapping[Scheme, tuple[np.ndarray, Mapping[str, Any]]]) -> pd.DataFrame:
    """One row per ID set (a two-block scheme has a search row and a rec row): per level codes used,
    perplexity and top-code share; collision rate, largest prefix group, reconstruction MSE, fit time."""
    rows = []
    for (emb, quant), (_, diag) in results.items():
        for block, d in id_sets(diag):
            row: dict[str, Any] = {"embedding": emb, "quantizer": quant, "block": block or "-",
                                   "codebook": d["levels"][0]["codebook_size"]}
            for i, lv in enumerate(d["levels"], start=1):
                row[f"used L{i}"] = lv["used"]
            for i, lv in enumerate(d["levels"], start=1):
                row[f"ppl L{i}"] = round(lv["perplexity"], 1)
            for i, lv in enumerate(d["levels"], start=1):
                row[f"top L{i}"] = round(lv["top_code_share"], 3)
            row.update({"collision_rate": d["collision_rate"], "max_per_prefix": d["max_items_per_prefix"],
                        "recon_mse": d.get("reconstruction_mse"), "fit_s": d.get("fit_seconds")})
            rows.append(row)
    return pd.DataFrame(rows)


def level_codes(results: Mapping[Scheme, tuple[np.ndarray, Mapping[str, Any]]], scheme: Scheme,
                      block: str = "search") -> np.ndarray:
    """Per-level code columns (without the dedup counter) of one ID set, (n_items, levels)."""
    codes, diag = results[scheme]
    L = int(diag["config"]["levels"])
    if scheme[0] in TWO_ID_SCHEMES:
        start = 0 if block == "search" else L + 1
        return codes[:, start:start + L]
    return codes[:, :L]


# codebook size --------------------------------------------------------------------------------

def codebook_sweep(cfg: StudyConfig, embeddings: Mapping[str, np.ndarray],
                   sizes: Sequence[int] = (16, 32, 64, 128, 256), quantizer: str = "rq_kmeans") -> pd.DataFrame:
    """ID diagnostics of ``quantizer`` for each codebook size and embedding (nothing written to ids/).

    One row per (embedding, size, level): used share, perplexity / size, top-code share, plus the
    scheme's collision rate, largest prefix group and distinct prefixes per item.
    """
    from tqdm.auto import tqdm

    rows = []
    for emb, X in embeddings.items():
        for K in tqdm(sizes, desc=f"codebook sweep ({emb})", leave=False):
            if K > len(X):
                continue
            q = make_quantizer(quantizer, **{**quantizer_kwargs(cfg, quantizer), "codebook_size": int(K)}).fit(X)
            d = scheme_diagnostics(q.encode(X), int(K), reconstruction_mse=q.diagnostics()["reconstruction_mse"])
            for level, lv in enumerate(d["levels"], start=1):
                rows.append({"embedding": emb, "codebook_size": int(K), "level": level, "used": lv["used"],
                             "used_share": lv["used"] / K, "perplexity": lv["perplexity"],
                             "perplexity_share": lv["perplexity"] / K, "top_code_share": lv["top_code_share"],
                             "items_per_code": len(X) / K, "collision_rate": d["collision_rate"],
                             "max_items_per_prefix": d["max_items_per_prefix"],
                             "distinct_prefix_share": d["distinct_prefixes"] / len(X),
                             "recon_mse": d["reconstruction_mse"]})
    return pd.DataFrame(rows)


def sweep_summary(sweep: pd.DataFrame) -> pd.DataFrame:
    """One row per (embedding, size): the worst level's used and perplexity shares, and the collisions."""
    g = sweep.groupby(["embedding", "codebook_size"])
    return pd.DataFrame({
        "items_per_code": g["items_per_code"].first().round(1),
        "min_used_share": g["used_share"].min().round(3),
        "min_perplexity_share": g["perplexity_share"].min().round(3),
        "max_top_code_share": g["top_code_share"].max().round(3),
        "collision_rate": g["collision_rate"].first().round(3),
        "max_items_per_prefix": g["max_items_per_prefix"].first(),
        "recon_mse": g["recon_mse"].first(),
    }).reset_index()


def recommend_codebook_size(summary: pd.DataFrame, min_perplexity_share: float = 1 / 3,
                            embeddings: Sequence[str] | None = None) -> int:
    """The largest swept size at which every level of every embedding (or of ``embeddings`` only) keeps a
    perplexity of at least ``min_perplexity_share`` x size (no level mostly unused in effect); larger
    sizes lower collisions further only by leaving more of level 2 idle. Falls back to the smallest size."""
    if embeddings is not None:
        summary = summary[summary.embedding.isin(list(embeddings))]
    ok = summary.groupby("codebook_size")["min_perplexity_share"].min() >= min_perplexity_share
    return int(ok[ok].index.max()) if ok.any() else int(summary.codebook_size.min())


# what the IDs group together ---------------------------------------------------------------------

def genre_code_matrix(items: pd.DataFrame, codes: np.ndarray, top: int = 20) -> pd.DataFrame:
    """Genre x first-level code: share of the genre's items under each of the ``top`` largest codes
    (rows sum to the share covered by those codes). An item counts once per genre it has."""
    first = pd.Series(np.asarray(codes)[:, 0], index=items.index, name="code")
    exploded = pd.DataFrame({"genre": items["genres"], "code": first}).explode("genre").dropna()
    counts = pd.crosstab(exploded["genre"], exploded["code"])
    shares = counts.div(counts.sum(axis=1), axis=0)
    order = first.value_counts().index[:top]
    shares.index = [f"{g} ({n})" for g, n in counts.sum(axis=1).items()]
    return shares.reindex(columns=order, fill_value=0.0)


def genre_concentration(items: pd.DataFrame, codes: np.ndarray) -> pd.Series:
    """Per genre, perplexity of its items' first-level codes divided by the overall perplexity:
    below 1, the genre sits in fewer codes than the catalogue (IDs group by genre); 1 = genre-blind."""
    from jointsid_utils.quantizers import perplexity

    first = np.asarray(codes)[:, 0]
    exploded = pd.DataFrame({"genre": items["genres"].to_numpy(), "code": first}).explode("genre").dropna()
    overall = perplexity(first)
    out = exploded.groupby("genre")["code"].agg(lambda c: perplexity(c.to_numpy()) / overall)
    counts = exploded.groupby("genre").size()
    return out[counts >= 10].sort_values()


def example_ids(items: pd.DataFrame, ids: np.ndarray, anchors: Sequence[str], levels: int,
                per_anchor: int = 5) -> pd.DataFrame:
    """For each anchor title, the anchor and up to ``per_anchor`` other items sharing the longest prefix
    (the full pre-dedup ID first, then the first level), with their ID strings."""
    ids = np.asarray(ids)
    titles = items["title"].astype(str).to_numpy()
    rows = []
    for anchor in anchors:
        hits = np.flatnonzero(np.char.find(np.char.lower(titles.astype(str)), anchor.lower()) >= 0)
        if not len(hits):
            continue
        a = int(hits[0])
        for depth in range(levels, 0, -1):
            same = np.flatnonzero((ids[:, :depth] == ids[a, :depth]).all(axis=1))
            same = same[same != a]
            if len(same):
                break
        for i in [a, *same[:per_anchor]]:
            rows.append({"anchor": titles[a], "shared_levels": depth if i != a else None,
                         "id": "-".join(str(c) for c in ids[i]), "title": titles[i],
                         "genres": ", ".join(items["genres"].iloc[i]) if items["genres"].iloc[i] is not None else ""})
    out = pd.DataFrame(rows)
    if len(out):
        out["shared_levels"] = out["shared_levels"].astype("Int64")  # <NA> on the anchor's own row
    return out
