"""Why the paper's RQ-VAE collapsed: a cached grid of named RQ-VAE configurations x seeds (notebook 04).

Every configuration is the paper-like ``rq_vae`` defaults with a few fields changed (``CONFIGS``).
One run = one (embedding, configuration, seed): it fits ``RQVAE``, encodes every item and stores

- the quantizer-stage diagnostics (usage, perplexity, top-code share per level, collision rate
  before dedup, items per full prefix, reconstruction MSE, fit seconds; STUDY.md §4),
- the training history (per logged step: codes used and perplexity per level, reconstruction and
  commitment loss, distinct full IDs),
- scale probes: the encoder's latents versus the level-1 codebook, at initialisation and after
  training (``latent_radius``: mean distance of a latent to the latents' centroid; ``code_gap``: mean
  distance of a latent to its nearest level-1 code; ``codes_used_init``: level-1 codes nearest to at
  least one item before any update). These measure the mechanism instead of assuming it.

Each run is one JSON under ``runs/<profile>/rqvae_diagnosis/<embedding>/``, keyed by the resolved
config, the seed and the input's sha256, written atomically: a rerun loads, a killed run resumes.
``run_grid`` can fan out over processes (one torch thread each).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from jointsid_utils.cache import write_json
from jointsid_utils.config import stable_hash
from jointsid_utils.errors import StudyInputError

FORMAT = 1  # bump when a run's record changes, so cached runs recompute

# name -> (knob group, what differs from the paper-like rq_vae). Order = table order.
CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "paper_like": ("baseline", {}),
    "l2_input": ("input scale", {"normalize": "l2"}),
    "standardise_input": ("input scale", {"normalize": "standardise"}),
    "kmeans_init": ("codebook init", {"kmeans_init": True}),
    "dead_code_2": ("dead codes", {"threshold_ema_dead_code": 2.0}),
    "cosine_sim": ("distance", {"use_cosine_sim": True}),
    "no_rotation_trick": ("gradient estimator", {"rotation_trick": False}),
    "commitment_0.25": ("commitment", {"commitment_weight": 0.25}),
    "ema_decay_0.99": ("codebook update", {"decay": 0.99}),
    "learned_codebook": ("codebook update", {"ema_update": False, "learnable_codebook": True}),
    "lr_1e-4": ("optimisation", {"lr": 1e-4}),
    "steps_x3": ("optimisation", {"steps": "x3"}),
    "codebook_half": ("capacity", {"codebook_size": "half"}),
    "levels_3": ("capacity", {"levels": 3}),
    "kmeans_init+dead_code": ("combined", {"kmeans_init": True, "threshold_ema_dead_code": 2.0}),
    "kmeans+dead+standardise": ("combined", {"kmeans_init": True, "threshold_ema_dead_code": 2.0,
                                             "normalize": "standardise"}),
    "kmeans+dead+commit_0.25": ("combined", {"kmeans_init": True, "threshold_ema_dead_code": 2.0,
                                             "commitment_weight": 0.25}),
    "residual_only": ("no autoencoder", {"autoencoder": False}),
    "residual_only+kmeans+dead": ("no autoencoder", {"autoencoder": False, "kmeans_init": True,
                                                     "threshold_ema_dead_code": 2.0}),
}
# The configurations that are cheap and decisive enough to run on every embedding of the profile.
CORE = ("paper_like", "standardise_input", "kmeans_init", "dead_code_2", "kmeans_init+dead_code", "residual_only")
FIXED = "kmeans_init+dead_code"  # what rq_vae_fixed registers (quantizers/rq_vae_fixed.py)


# What each profile runs (steps per ablation run, seeds, configurations per embedding); measured to
# fit the notebook's budget on a 2-core CPU: smoke < 2 min, default < 20 min with the cache empty.
PLANS: dict[str, dict[str, Any]] = {
    "smoke": {"steps": 100, "seeds": (0,), "workers": 1, "configs": {"content": CORE, "multitask": CORE}},
    "default": {"steps": 500, "seeds": (0, 1, 2), "workers": 2,
                # l2_input is the identity on unit-norm sentence vectors; the two extra variants are for paper
                "configs": {"content": tuple(c for c in CONFIGS if c not in
                                             ("l2_input", "ema_decay_0.99", "kmeans+dead+commit_0.25")),
                            "multitask": CORE}},
    "paper": {"steps": 3000, "seeds": (0, 1, 2), "workers": 2,
              "configs": {"content": tuple(CONFIGS), "multitask": tuple(CONFIGS)}},
}


def plan(cfg: Any, steps: int | None = None) -> dict[str, Any]:
    """The profile's plan plus the paper-like base kwargs (``IdConfig`` mapped as the quantizer stage does,
    with the ablation's steps and a log every steps/40 so the history shows when codes die)."""
    from jointsid_utils.ids.schemes import quantizer_kwargs

    p = dict(PLANS.get(cfg.name, PLANS["default"]))
    if steps:
        p["steps"] = int(steps)
    base = quantizer_kwargs(cfg, "rq_vae")
    base.update(steps=p["steps"], log_every=max(1, p["steps"] // 40))
    p["base"] = base
    return p


def resolve_config(name: str, base: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` (the paper-like kwargs: levels, codebook size, steps ...) with configuration ``name`` applied."""
    if name not in CONFIGS:
        raise StudyInputError(f"Unknown RQ-VAE diagnosis configuration {name!r}; choose from {', '.join(CONFIGS)}.")
    out = dict(base)
    for key, value in CONFIGS[name][1].items():
        if value == "x3":
            value = 3 * int(out.get("steps", 3000))
        elif value == "half":
            value = max(2, int(out.get("codebook_size", 64)) // 2)
        out[key] = value
    return out


def run_path(cache_dir: Path, embedding: str, name: str, seed: int, key: Mapping[str, Any]) -> Path:
    return Path(cache_dir) / embedding / f"{name}__seed{seed}__{stable_hash(dict(key), 10)}.json"


def run_one(X: np.ndarray, embedding: str, name: str, kwargs: Mapping[str, Any], seed: int,
            cache_dir: Path | str, input_sha: str | None = None) -> dict[str, Any]:
    """Fit one configuration on X with one seed (or load its cached record)."""
    from jointsid_utils.quantizers import RQVAE
    from jointsid_utils.ids.build import array_sha256

    X = np.ascontiguousarray(X, dtype=np.float32)
    resolved = RQVAE(**{**kwargs, "seed": seed}).config
    key = {"format": FORMAT, "config": resolved, "input_sha256": input_sha or array_sha256(X)}
    path = run_path(Path(cache_dir), embedding, name, seed, key)
    if path.exists():
        try:
            record = json.loads(path.read_text())
            if record.get("key") == json.loads(json.dumps(key)):
                return record
        except (OSError, json.JSONDecodeError):
            pass
    record = _fit_record(X, resolved)
    record.update(embedding=embedding, name=name, seed=seed, group=CONFIGS.get(name, ("custom", {}))[0], key=key)
    write_json(path, record)
    return json.loads(path.read_text())


def _fit_record(X: np.ndarray, resolved: dict[str, Any]) -> dict[str, Any]:
    import torch

    from jointsid_utils.quantizers import RQVAE, scheme_diagnostics

    q = RQVAE(**resolved)
    init = scale_probe(q, X, initial=True)
    q.fit(X)
    codes = q.encode(X)
    diag = scheme_diagnostics(codes, q.cfg.codebook_size, quantizer="rq_vae", config=resolved,
                              reconstruction_mse=q.diagnostics()["reconstruction_mse"], fit_seconds=q.fit_seconds)
    with torch.no_grad():
        final = scale_probe(q, X, initial=False)
    return {**diag, "history": q.history, "probe_init": init, "probe_final": final}


def scale_probe(q: Any, X: np.ndarray, *, initial: bool) -> dict[str, Any]:
    """Latent scale versus level-1 codebook scale. ``initial``: on a freshly built, untrained model with
    the same seed as ``fit`` (the codebook is all zeros until k-means init runs in the first step)."""
    import torch

    from jointsid_utils.quantizers._torch_common import Normaliser

    if initial:
        torch.manual_seed(q.cfg.seed)
        model = q._build(X.shape[1])
        data = torch.from_numpy(Normaliser(q.cfg.normalize).fit(X)(X))
    else:
        model = q.model
        data = torch.from_numpy(q.normaliser(X))
    model.eval()
    with torch.no_grad():
        z = model.encoder(data)
        codebook = model.rvq.layers[0]._codebook.embed[0]
        if q.cfg.use_cosine_sim:
            z = torch.nn.functional.normalize(z, dim=-1)
        dist = torch.cdist(z, codebook)
        nearest = dist.argmin(dim=1)
        centre = z.mean(dim=0, keepdim=True)
        code_pair = torch.cdist(codebook, codebook) + torch.eye(len(codebook)) * 1e9
        return {
            "latent_norm": float(z.norm(dim=1).mean()),
            "latent_radius": float((z - centre).norm(dim=1).mean()),  # spread of the items around their centroid
            "latent_coord_std": float(z.std(dim=0).mean()),
            "code_norm": float(codebook.norm(dim=1).mean()),
            "code_spacing": float(code_pair.min(dim=1).values.mean()),  # nearest-neighbour distance between codes
            "code_gap": float(dist.min(dim=1).values.mean()),  # latent to its nearest code
            "codes_used_init" if initial else "codes_used": int(torch.unique(nearest).numel()),
            "codes_near_centroid": int((torch.cdist(codebook, centre)[:, 0]
                                        < (z - centre).norm(dim=1).max()).sum()),  # codes inside the latent ball
        }


def _worker(args: tuple) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    return run_one(*args)


def run_grid(vectors: Mapping[str, np.ndarray], base: Mapping[str, Any], cache_dir: Path | str,
             configs: Mapping[str, Sequence[str]] | Sequence[str], seeds: Sequence[int] = (0, 1, 2), *,
             workers: int = 1, progress: bool = True) -> list[dict[str, Any]]:
    """Every (embedding, configuration, seed); ``configs`` is a list (same for every embedding) or a dict
    embedding -> list. Cached runs load instantly; the rest run in ``workers`` processes."""
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_context

    from tqdm.auto import tqdm

    from jointsid_utils.ids.build import array_sha256

    per_emb = configs if isinstance(configs, Mapping) else {e: list(configs) for e in vectors}
    tasks = []
    for emb, names in per_emb.items():
        if emb not in vectors:
            raise StudyInputError(f"run_grid: no vectors for embedding {emb!r}; pass it in `vectors`.")
        sha = array_sha256(np.ascontiguousarray(vectors[emb], dtype=np.float32))
        for name in names:
            kwargs = resolve_config(name, base)
            tasks.extend((vectors[emb], emb, name, kwargs, int(s), str(cache_dir), sha) for s in seeds)
    records: list[dict[str, Any]] = []
    bar = tqdm(total=len(tasks), desc="RQ-VAE diagnosis", unit="run", disable=not progress)
    if workers <= 1:
        for t in tasks:
            bar.set_postfix_str(f"{t[1]}/{t[2]}/s{t[4]}")
            records.append(_worker(t))
            bar.update()
    else:
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(_worker, t) for t in tasks]
            for fut in as_completed(futures):
                records.append(fut.result())
                bar.update()
    bar.close()
    order = {(t[1], t[2], t[4]): i for i, t in enumerate(tasks)}
    return sorted(records, key=lambda r: order[(r["embedding"], r["name"], r["seed"])])


# Tidy tables ---------------------------------------------------------------------------------

def runs_table(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per (embedding, configuration, seed, level) with the level's and the run's diagnostics."""
    rows = []
    for r in records:
        for lvl, stats in enumerate(r["levels"]):
            rows.append({
                "embedding": r["embedding"], "config": r["name"], "group": r["group"], "seed": r["seed"],
                "level": lvl + 1, "codebook_size": stats["codebook_size"], "used": stats["used"],
                "used_share": stats["used"] / stats["codebook_size"], "perplexity": stats["perplexity"],
                "top_code_share": stats["top_code_share"], "collision_rate": r["collision_rate"],
                "max_items_per_prefix": r["max_items_per_prefix"], "distinct_prefixes": r["distinct_prefixes"],
                "reconstruction_mse": r["reconstruction_mse"], "fit_seconds": r["fit_seconds"],
                "steps": r["config"]["steps"],
                "codes_used_init_l1": r["probe_init"]["codes_used_init"],
                "latent_radius_init": r["probe_init"]["latent_radius"],
                "code_spacing_init": r["probe_init"]["code_spacing"],
                "code_gap_init": r["probe_init"]["code_gap"],
                "latent_radius_final": r["probe_final"]["latent_radius"],
            })
    return pd.DataFrame(rows)


def history_table(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per (embedding, configuration, seed, logged step, level): codes used, perplexity, losses."""
    rows = []
    for r in records:
        for h in r["history"]:
            for lvl, (used, ppl) in enumerate(zip(h["used"], h["perplexity"])):
                rows.append({"embedding": r["embedding"], "config": r["name"], "seed": r["seed"], "step": h["step"],
                             "level": lvl + 1, "used": used, "perplexity": ppl, "distinct_ids": h["distinct_ids"],
                             "recon_loss": h["recon_loss"], "commit_loss": h["commit_loss"][lvl]})
    return pd.DataFrame(rows)


def summary_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and sd over seeds per (embedding, configuration, level)."""
    cols = ["codebook_size", "used", "used_share", "perplexity", "top_code_share", "collision_rate", "max_items_per_prefix",
            "distinct_prefixes", "reconstruction_mse", "codes_used_init_l1", "fit_seconds"]
    g = runs.groupby(["embedding", "config", "level"], sort=False)[cols]
    out = g.mean().join(g.std(ddof=1).add_suffix("_sd")).join(g.size().rename("seeds"))
    return out.reset_index()


def pretty_table(summary: pd.DataFrame, embedding: str) -> pd.DataFrame:
    """The ablation table for one embedding: 'mean ± sd' strings, one row per configuration, levels side by side."""
    s = summary[summary.embedding == embedding]

    def pm(m: float, sd: float, fmt: str) -> str:
        return f"{m:{fmt}}" if not np.isfinite(sd) else f"{m:{fmt}} ± {sd:{fmt}}"

    rows = []
    for name, block in s.groupby("config", sort=False):
        row: dict[str, Any] = {"config": name, "knob": CONFIGS.get(name, ("custom",))[0]}
        for _, lv in block.iterrows():
            k = int(lv.level)
            row[f"L{k} used"] = pm(lv.used, lv.used_sd, ".1f") + f" / {int(lv.codebook_size)}"
            row[f"L{k} perplexity"] = pm(lv.perplexity, lv.perplexity_sd, ".1f")
        first = block.iloc[0]
        row["collision rate"] = pm(first.collision_rate, first.collision_rate_sd, ".3f")
        row["max items/prefix"] = pm(first.max_items_per_prefix, first.max_items_per_prefix_sd, ".1f")
        row["recon MSE x1e3"] = pm(1e3 * first.reconstruction_mse, 1e3 * first.reconstruction_mse_sd, ".3f")
        row["seeds"] = int(first.seeds)
        rows.append(row)
    return pd.DataFrame(rows).set_index("config")


def death_steps(history: pd.DataFrame, threshold: float = 0.1) -> pd.DataFrame:
    """Per (embedding, config, seed, level): the first logged step where codes used fall below
    ``threshold`` x the best count seen so far, and the step where usage is lowest."""
    rows = []
    for (emb, cfg, seed, lvl), h in history.groupby(["embedding", "config", "seed", "level"], sort=False):
        h = h.sort_values("step")
        peak = h.used.cummax()
        dead = h[h.used <= np.maximum(1, threshold * peak)]
        rows.append({"embedding": emb, "config": cfg, "seed": seed, "level": lvl,
                     "first_logged_used": int(h.used.iloc[0]), "min_used": int(h.used.min()),
                     "step_of_min": int(h.step.iloc[int(h.used.values.argmin())]),
                     "collapsed_at_step": int(dead.step.iloc[0]) if len(dead) else None,
                     "final_used": int(h.used.iloc[-1])})
    return pd.DataFrame(rows)


# Figures --------------------------------------------------------------------------------------

def plot_usage_over_training(history: pd.DataFrame, configs: Sequence[str], *, embeddings: Sequence[str] | None = None,
                             codebook_size: int | None = None):
    """Codes used per level over training: rows = embeddings, columns = levels, one line per configuration
    (mean over seeds, shaded min..max)."""
    import matplotlib.pyplot as plt

    embeddings = list(embeddings or history.embedding.unique())
    shown = history[history.config.isin(configs)]  # levels of the plotted configs only (no empty panels)
    levels = sorted(shown.level.unique())
    fig, axes = plt.subplots(len(embeddings), len(levels), figsize=(5.2 * len(levels), 3.4 * len(embeddings)),
                             squeeze=False, sharex=True, sharey=True)
    colours = dict(zip(configs, plt.get_cmap("tab10").colors))
    for i, emb in enumerate(embeddings):
        for j, lvl in enumerate(levels):
            ax = axes[i, j]
            for k, name in enumerate(configs):
                h = history[(history.embedding == emb) & (history.level == lvl) & (history.config == name)]
                if h.empty:
                    continue
                g = h.groupby("step").used
                ax.plot(g.mean().index, g.mean().values, color=colours[name], lw=2.6 if k == 0 else 1.6,
                        ls="--" if k == 0 else "-", label=name, zorder=3 if k == 0 else 2)
                ax.fill_between(g.min().index, g.min().values, g.max().values, color=colours[name], alpha=0.15, lw=0)
            if codebook_size:
                ax.axhline(codebook_size, color="grey", ls=":", lw=1)
            ax.set_title(f"{emb} · level {lvl}")
            ax.set_xlabel("training step")
            ax.set_ylabel("codes used")
            ax.set_ylim(0, (codebook_size or ax.get_ylim()[1]) * 1.05)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.suptitle("RQ-VAE codebook usage over training (mean over seeds, band = min..max)", y=1.0)
    fig.tight_layout()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(5, len(labels)), fontsize=9)
    return fig


def plot_ablation(summary: pd.DataFrame, embedding: str, order: Sequence[str] | None = None):
    """Three panels per configuration: share of each level's codebook used, perplexity / codebook size,
    collision rate before dedup (mean over seeds, error bar = sd)."""
    import matplotlib.pyplot as plt

    s = summary[summary.embedding == embedding].copy()
    order = [c for c in (order or s.config.unique()) if c in set(s.config)]
    levels = sorted(s.level.unique())
    fig, axes = plt.subplots(1, 3, figsize=(15, 0.32 * len(order) + 1.6), sharey=True)
    y = np.arange(len(order))
    height = 0.8 / len(levels)
    for k, lvl in enumerate(levels):
        lv = s[s.level == lvl].set_index("config").reindex(order)
        offs = y - 0.4 + height * (k + 0.5)
        axes[0].barh(offs, lv.used_share, height, xerr=lv.used_sd / lv.codebook_size, label=f"level {lvl}")
        axes[1].barh(offs, lv.perplexity / lv.codebook_size, height, xerr=lv.perplexity_sd / lv.codebook_size,
                     label=f"level {lvl}")
    first = s[s.level == levels[0]].set_index("config").reindex(order)
    axes[2].barh(y, first.collision_rate, 0.6, xerr=first.collision_rate_sd, color="tab:red")
    axes[0].set_yticks(y, order)
    axes[0].invert_yaxis()
    axes[0].set_xlabel("codes used / codebook size")
    axes[1].set_xlabel("perplexity / codebook size")
    axes[2].set_xlabel("collision rate before dedup (lower is better)")
    for ax in axes:
        ax.set_xlim(0, 1.05)
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle(f"RQ-VAE ablation on {embedding} (mean ± sd over seeds; each row changes the paper-like config)", y=1.0)
    fig.tight_layout()
    return fig
