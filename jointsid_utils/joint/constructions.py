"""Notebook 07: joint semantic-ID constructions that try to beat ``multitask x rq_kmeans`` on both tasks.

    results = prepare_joint_ids(cfg, {"multitask": mt, "search": s, "rec": r})   # scheme -> (codes, diag)
    sid = schemes.load_ids(cfg, "shared_then_task", "rq_kmeans")                  # later stages, as any scheme

Each construction is one class (settings from ``cfg``, the embeddings it reads, ``build``) and one line in
``JOINT_CONSTRUCTIONS``. Files go where every scheme's do, ``runs/<folder>/ids/<name>__<quantizer>.npy/.json``,
in the same layouts (``load_ids`` reads them), cached on the construction's settings and its inputs'
hashes. Their settings live in ``cfg.joint_ids``, so the keys of the existing schemes do not move. A
training seed refits a construction's quantizers as it does every scheme's (``seed=``, ``ids.schemes.ids_stem``).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np

from jointsid_utils.cache import run_dir
from jointsid_utils.config import StudyConfig, as_dict
from jointsid_utils.errors import StudyInputError
from jointsid_utils.ids.build import array_sha256, cached_codes
from jointsid_utils.ids.schemes import id_seed, ids_stem, quantizer_kwargs
from jointsid_utils.joint.balanced import greedy_residual_codes, unique_residual_codes
from jointsid_utils.quantizers.base import check_matrix
from jointsid_utils.quantizers.collisions import deduplicate
from jointsid_utils.quantizers.diagnostics import scheme_diagnostics
from jointsid_utils.quantizers.rq_kmeans import RQKMeans
from jointsid_utils.joint.shared_task import shared_then_task_fit, unit_rows
from jointsid_utils.study import TWO_ID_SCHEMES, Scheme

QUANTIZER = "rq_kmeans"  # the constructions' quantizer unless a class says otherwise; the scheme is (name, quantizer)


def weighted_cf_vectors(multitask: np.ndarray, rec: np.ndarray, weight: float) -> np.ndarray:
    """[unit(multitask); weight x unit(ENMF)]: weight 0 is the multitask direction alone."""
    return np.ascontiguousarray(np.hstack([unit_rows(multitask), weight * unit_rows(rec)]), dtype=np.float32)


def _choice(key: str, value: str, options: tuple[str, ...]) -> str:
    if value not in options:
        raise StudyInputError(f"joint_ids.{key}={value!r} is not supported; choose one of: {', '.join(options)}.")
    return value


def _rq_settings(cfg: StudyConfig, seed: int) -> dict[str, Any]:
    """The rq_kmeans knobs of ``cfg.ids`` (levels, codebook size, iterations) and ``seed``, greedy per-level k-means."""
    return {**quantizer_kwargs(cfg, QUANTIZER, seed), "backend": "kmeans"}


class JointConstruction(ABC):
    """A joint ID construction: ``settings(cfg, seed)`` (its whole cache key besides the inputs; ``seed`` fits
    its quantizers), the embeddings it reads, and ``build`` -> (int64 codes as the generator consumes them,
    diagnostics JSON)."""

    name: ClassVar[str]
    quantizer: ClassVar[str] = QUANTIZER  # the scheme's second half and the files' suffix
    two_block: ClassVar[bool] = False

    @abstractmethod
    def settings(self, cfg: StudyConfig, seed: int) -> dict[str, Any]: ...

    @abstractmethod
    def inputs(self, settings: Mapping[str, Any]) -> tuple[str, ...]: ...

    @abstractmethod
    def build(self, vectors: Mapping[str, np.ndarray], settings: Mapping[str, Any]) -> tuple[np.ndarray, dict]: ...


class MultitaskCF(JointConstruction):
    """RQ-KMeans on [multitask; w x ENMF], then the dedup level.

    Why this one is the likeliest to beat multitask on both tasks: on this study's data, IDs from the
    multi-task vector are the best joint scheme on search but the weakest on rec, while fused_concat
    (search + ENMF at equal weight) gains on rec and loses little on search. Keeping the multi-task half
    keeps its text structure for search; the ENMF half moves items consumed together under one prefix,
    which the rec prompt (a history of IDs) can exploit. ``w`` spans a family that contains the incumbent
    (w = 0), so choosing it on validation cannot do worse there than multitask x rq_kmeans.
    """

    name = "multitask_cf"

    def settings(self, cfg: StudyConfig, seed: int) -> dict[str, Any]:
        w = cfg.joint_ids.cf_weight
        if not np.isfinite(w) or w < 0:
            raise StudyInputError(f"joint_ids.cf_weight is {w!r}; use a finite weight >= 0 (0 = multitask alone).")
        return {**_rq_settings(cfg, seed), "cf_weight": float(w)}

    def inputs(self, settings: Mapping[str, Any]) -> tuple[str, ...]:
        return ("multitask", "rec")

    def build(self, vectors: Mapping[str, np.ndarray], settings: Mapping[str, Any]) -> tuple[np.ndarray, dict]:
        s = dict(settings)
        X = weighted_cf_vectors(vectors["multitask"], vectors["rec"], s.pop("cf_weight"))
        q = RQKMeans(**s).fit(X)
        codes = q.encode(X)
        diag = scheme_diagnostics(codes, s["codebook_size"], quantizer=QUANTIZER, config=dict(settings),
                                  reconstruction_mse=q.diagnostics()["reconstruction_mse"], fit_seconds=q.fit_seconds)
        diag.update(embedding=f"[multitask; {settings['cf_weight']:g} x rec]", dedup_level_size=diag["max_items_per_prefix"],
                    layout=f"columns 0..{codes.shape[1] - 1}: quantizer levels; column {codes.shape[1]}: dedup counter")
        return deduplicate(codes, seed=s["seed"]), diag


class BalancedUnique(JointConstruction):
    """RQ-KMeans on multitask, then colliding items moved to the nearest free code (``joint.balanced``):
    every ID is ``levels`` meaningful tokens and unique, with no dedup counter for the generator to guess."""

    name = "balanced_unique"

    def settings(self, cfg: StudyConfig, seed: int) -> dict[str, Any]:
        k = cfg.joint_ids.unique_codebook_size
        if k is not None and k < 2:
            raise StudyInputError(f"joint_ids.unique_codebook_size is {k}; use at least 2 codes per level, or None.")
        return {**_rq_settings(cfg, seed), "unique_codebook_size": k}  # codebook_size: the base that None grows from

    def inputs(self, settings: Mapping[str, Any]) -> tuple[str, ...]:
        return ("multitask",)

    @staticmethod
    def codebook_size(requested: int | None, base: int, levels: int, n_items: int) -> int:
        """``requested``, or ``base`` grown to the smallest size whose ``levels`` codes name every item."""
        if requested is not None:
            if requested ** levels < n_items:
                raise StudyInputError(f"joint_ids.unique_codebook_size={requested} gives {requested ** levels} IDs of "
                                      f"{levels} levels for {n_items} items; use at least "
                                      f"{BalancedUnique.codebook_size(None, 2, levels, n_items)} or None.")
            return requested
        k = base
        while k ** levels < n_items:
            k += 1
        return k

    def build(self, vectors: Mapping[str, np.ndarray], settings: Mapping[str, Any]) -> tuple[np.ndarray, dict]:
        X = unit_rows(vectors["multitask"])
        s = dict(settings)
        s["codebook_size"] = self.codebook_size(s.pop("unique_codebook_size"), s["codebook_size"], s["levels"], len(X))
        q = RQKMeans(**s).fit(X)
        before, codes = greedy_residual_codes(X, q.centroids), unique_residual_codes(X, q.centroids)
        recon = sum(c[codes[:, l]] for l, c in enumerate(q.centroids))
        recon_before = sum(c[before[:, l]] for l, c in enumerate(q.centroids))
        diag = scheme_diagnostics(codes, s["codebook_size"], quantizer=QUANTIZER, config=s,
                                  reconstruction_mse=float(np.mean((X - recon) ** 2)), fit_seconds=q.fit_seconds)
        moved = (codes != before).any(axis=1)
        diag.update(embedding="multitask", dedup_level_size=None,
                    layout=f"columns 0..{codes.shape[1] - 1}: quantizer levels, every row unique; no dedup counter",
                    collision_rate_before_reassignment=scheme_diagnostics(before, s["codebook_size"])["collision_rate"],
                    max_items_per_prefix_before_reassignment=int(np.unique(before, axis=0, return_counts=True)[1].max()),
                    moved_items=int(moved.sum()), moved_share=float(moved.mean()),
                    reconstruction_mse_before_reassignment=float(np.mean((X - recon_before) ** 2)))
        return codes, diag


class SharedThenTask(JointConstruction):
    """A shared level-0 code from the multi-task vector (or [multitask; w x ENMF]), then search levels on the
    search-tuned (or multitask) vectors and rec levels on ENMF (``joint.shared_task``); two blocks,
    column 0 shared, each with its dedup level, tokenised as prefix_share (``<L0_a><s1_b>``, ``<L0_a><r1_y>``)."""

    name = "shared_then_task"
    two_block = True

    def settings(self, cfg: StudyConfig, seed: int) -> dict[str, Any]:
        j = cfg.joint_ids
        out = {**_rq_settings(cfg, seed), "shared_input": _choice("shared_input", j.shared_input, ("multitask", "multitask_cf")),
               "search_space": _choice("search_space", j.search_space, ("search", "multitask"))}
        if j.shared_input == "multitask_cf":
            out["cf_weight"] = MultitaskCF().settings(cfg, seed)["cf_weight"]
        return out

    def inputs(self, settings: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(("multitask", settings["search_space"], "rec")))

    def build(self, vectors: Mapping[str, np.ndarray], settings: Mapping[str, Any]) -> tuple[np.ndarray, dict]:
        s = dict(settings)
        shared_input, search_space = s.pop("shared_input"), s.pop("search_space")
        shared = vectors["multitask"] if shared_input == "multitask" else \
            weighted_cf_vectors(vectors["multitask"], vectors["rec"], s.pop("cf_weight"))
        codes, info = shared_then_task_fit(shared, {"search": vectors[search_space], "rec": vectors["rec"]}, **s)
        K, L, seed = s["codebook_size"], s["levels"], s["seed"]
        blocks = {t: scheme_diagnostics(codes[t], K, quantizer=QUANTIZER, reconstruction_mse=info[f"{t}_reconstruction_mse"],
                                        fit_seconds=info["seconds"] / 2) for t in ("search", "rec")}
        diag = {
            "quantizer": QUANTIZER, "config": dict(settings), "embedding": f"{shared_input} | {search_space}, rec",
            "n_items": int(len(shared)),
            "collision_rate": max(b["collision_rate"] for b in blocks.values()),
            "max_items_per_prefix": max(b["max_items_per_prefix"] for b in blocks.values()),
            "levels": [{**lv, "block": t} for t, b in blocks.items() for lv in b["levels"]],
            "reconstruction_mse": float(np.mean([info["search_reconstruction_mse"], info["rec_reconstruction_mse"]])),
            "fit_seconds": info["seconds"], "encode_seconds": None, "blocks": blocks, "training": info,
            "layout": {"search": [0, L + 1], "rec": [L + 1, 2 * L + 2], "shared_columns": [0, L + 1],
                       "description": f"columns [0, {L + 1}) are the search ID (levels 0..{L - 1} + dedup counter), "
                                      f"columns [{L + 1}, {2 * L + 2}) the rec ID (same layout); column 0 and "
                                      f"column {L + 1} are the same shared code"},
            "dedup_level_size": {t: b["max_items_per_prefix"] for t, b in blocks.items()},
        }
        return np.concatenate([deduplicate(codes["search"], seed=seed), deduplicate(codes["rec"], seed=seed)], axis=1), diag


class AlignedRQVAEIds(JointConstruction):
    """An RQ-VAE on the multi-task vector trained with a LETTER-style alignment to ENMF (``joint.aligned``),
    then the dedup level: one tokenizer trained with both signals, where the others combine fixed vectors."""

    name = "aligned_rq_vae"
    quantizer = "aligned_rq_vae"

    def settings(self, cfg: StudyConfig, seed: int) -> dict[str, Any]:
        j = cfg.joint_ids
        return {**quantizer_kwargs(cfg, "rq_vae_fixed", seed), "align_weight": float(j.align_weight),
                "align_temperature": float(j.align_temperature)}

    def inputs(self, settings: Mapping[str, Any]) -> tuple[str, ...]:
        return ("multitask", "rec")

    def build(self, vectors: Mapping[str, np.ndarray], settings: Mapping[str, Any]) -> tuple[np.ndarray, dict]:
        from jointsid_utils.joint.aligned import AlignedRQVAE

        X = unit_rows(vectors["multitask"])
        q = AlignedRQVAE(**settings).fit_aligned(X, vectors["rec"])
        codes, fitted = q.encode(X), q.diagnostics()
        diag = scheme_diagnostics(codes, settings["codebook_size"], quantizer=self.quantizer, config=dict(settings),
                                  reconstruction_mse=fitted["reconstruction_mse"], fit_seconds=q.fit_seconds)
        last = fitted["history"][-1]
        diag.update(embedding="multitask, aligned to rec", dedup_level_size=diag["max_items_per_prefix"],
                    layout=f"columns 0..{codes.shape[1] - 1}: quantizer levels; column {codes.shape[1]}: dedup counter",
                    align_cosine=fitted["align_cosine"], align_top1=fitted["align_top1"],
                    final_align_loss=last.get("align_loss"), history=fitted["history"])
        return deduplicate(codes, seed=settings["seed"]), diag


JOINT_CONSTRUCTIONS: dict[str, JointConstruction] = {
    SharedThenTask.name: SharedThenTask(),
    BalancedUnique.name: BalancedUnique(),
    MultitaskCF.name: MultitaskCF(),
    AlignedRQVAEIds.name: AlignedRQVAEIds(),
}
JOINT_INPUTS = ("multitask", "search", "rec")  # every embedding any construction may read (notebook 02)


def construction(name: str) -> JointConstruction:
    if name not in JOINT_CONSTRUCTIONS:
        raise StudyInputError(f"Unknown joint ID construction {name!r}; choose one of: {', '.join(JOINT_CONSTRUCTIONS)}.")
    c = JOINT_CONSTRUCTIONS[name]
    if c.two_block != (name in TWO_ID_SCHEMES):
        raise StudyInputError(f"Joint construction {name!r} has two_block={c.two_block} but TWO_ID_SCHEMES "
                              f"{'lacks' if c.two_block else 'lists'} it; make study.TWO_ID_SCHEMES agree.")
    return c


def resolved_settings(cfg: StudyConfig, name: str, seed: int | None = None) -> dict[str, Any]:
    """The construction's settings from ``cfg`` (checked) for training ``seed`` (default the study seed),
    JSON-ready: its cache key besides the inputs."""
    return as_dict(construction(name).settings(cfg, id_seed(cfg, seed)))


def build_joint_ids(cfg: StudyConfig, name: str, vectors: Mapping[str, np.ndarray],
                    out_dir: Path | str | None = None, *, seed: int | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Build (or reload) construction ``name`` fit with training ``seed`` (default the study seed):
    ``<out_dir>/<ids_stem>.npy`` (int64) and ``.json``, written atomically; the JSON's ``cache_key`` ties it to
    its array, as ``ids.build.build_ids`` does."""
    c, settings = construction(name), resolved_settings(cfg, name, seed)
    missing = [m for m in c.inputs(settings) if m not in vectors]
    if missing:
        raise StudyInputError(f"Joint IDs {name} need the {', '.join(missing)} embedding(s), which were not passed; "
                              f"run notebook 02 (./run_all.sh --profile {cfg.name} --only 02) first.")
    arrays = {m: check_matrix(vectors[m], f"The {m!r} embedding") for m in c.inputs(settings)}
    if len({len(a) for a in arrays.values()}) > 1:
        raise StudyInputError(f"Joint IDs {name}: the embeddings {', '.join(arrays)} have different numbers of rows "
                              f"({', '.join(str(len(a)) for a in arrays.values())}); rebuild them with notebook 02.")
    out_dir = Path(out_dir) if out_dir is not None else run_dir(cfg.folder, "ids")
    stem = ids_stem(cfg, name, c.quantizer, seed)
    npy, js = out_dir / f"{stem}.npy", out_dir / f"{stem}.json"
    key = {"construction": name, "settings": settings, "input_sha256": array_sha256(*arrays.values())}

    def fit() -> tuple[np.ndarray, dict[str, Any]]:
        codes, diag = c.build(arrays, settings)
        return (np.ascontiguousarray(codes, dtype=np.int64),
                json.loads(json.dumps({**diag, "construction": name}, default=float)))

    return cached_codes(npy, js, key, fit, seed=settings["seed"])


def prepare_joint_ids(cfg: StudyConfig, vectors: Mapping[str, np.ndarray], names: Sequence[str] | None = None, *,
                      seed: int | None = None, progress: bool = True) -> dict[Scheme, tuple[np.ndarray, dict[str, Any]]]:
    """Every construction (or ``names``) built or reloaded into ``runs/<folder>/ids/`` for training ``seed``
    (default the study seed); scheme -> (codes, diag). All settings are checked before the first fit, so a
    bad option fails in a second."""
    from tqdm.auto import tqdm

    names = list(JOINT_CONSTRUCTIONS) if names is None else list(names)
    for name in names:
        resolved_settings(cfg, name, seed)
    return {(name, construction(name).quantizer): build_joint_ids(cfg, name, vectors, seed=seed)
            for name in tqdm(names, desc="joint IDs", unit="scheme", disable=not progress)}


def id_length(scheme: Scheme, diag: Mapping[str, Any]) -> int:
    """ID tokens the generator emits per item and task: the levels, plus the dedup counter where there is one."""
    return int(diag["config"]["levels"]) + (diag.get("dedup_level_size") is not None)

