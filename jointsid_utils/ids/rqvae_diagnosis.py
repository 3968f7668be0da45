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

Each run is one stage (``jointsid_utils.stages``) keyed by the resolved config, the seed, the input's
sha256 and the code it reaches; its record is linked at ``runs/<folder>/rqvae_diagnosis/<embedding>/``:
a rerun loads, a killed grid resumes with the runs it had not finished.
``run_grid`` can fan out over processes (one torch thread each). ``plan`` reads the grid from the
profile's ``diagnosis`` section (its worker count from ``workers.plan_workers``); ``rqvae_tables`` and
``rqvae_plots`` turn the records into tables and figures.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from jointsid_utils.cache import run_dir, write_json
from jointsid_utils.config import StudyConfig
from jointsid_utils.errors import StudyInputError
from jointsid_utils.stages import Stage, Workspace, produce
from jointsid_utils.runtime.environment import configure_runtime
from jointsid_utils.runtime.workers import machine_cores, plan_workers

RECORD = "record.json"

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
FIXED = "kmeans_init+dead_code"  # what rq_vae_fixed registers (quantizers/rq_vae_fixed.py)
STAGE_QUANTIZERS = ("rq_vae", "rq_vae_fixed")  # compared at the quantizer stage's full budget


def plan(cfg: StudyConfig) -> dict[str, Any]:
    """``cfg.diagnosis`` as ``run_grid`` takes it: ``configs`` (embedding -> configuration names), ``seeds``,
    ``workers``, ``steps``, and ``base``: the paper-like ``rq_vae`` kwargs (``IdConfig`` mapped as the
    quantizer stage does) with the ablation's steps and a log every steps/40, so the history shows when
    codes die."""
    from jointsid_utils.ids.schemes import quantizer_kwargs

    d = cfg.diagnosis
    for key in ("skipped_configs", "core_configs"):
        unknown = [name for name in getattr(d, key) if name not in CONFIGS]
        if unknown:
            raise StudyInputError(f"diagnosis.{key} names unknown configuration(s) {unknown}; "
                                  f"choose from {', '.join(CONFIGS)}.")
    full = tuple(name for name in CONFIGS if name not in d.skipped_configs)
    configs = {e: full if e in d.full_grid_embeddings else d.core_configs for e in d.embeddings}
    base = {**quantizer_kwargs(cfg, "rq_vae"), "steps": d.steps, "log_every": max(1, d.steps // 40)}
    runs = sum(len(names) for names in configs.values()) * len(d.seeds)
    # the fits run on the CPU (one torch thread each) even beside a GPU; diagnosis.workers > 0 wins
    workers = plan_workers(machine_cores(), gpu=False, jobs=runs, fixed=d.workers).workers
    return {"steps": d.steps, "seeds": d.seeds, "workers": workers, "configs": configs, "base": base}


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


def records_dir(cfg: StudyConfig) -> Path:
    """Where the run folder shows the grid's records (``runs/<folder>/rqvae_diagnosis/``, one folder per
    embedding); each record is a store entry, so every run folder with the same runs reuses them."""
    return run_dir(cfg.folder, "rqvae_diagnosis")


def run_path(cache_dir: Path, embedding: str, name: str, seed: int) -> Path:
    return Path(cache_dir) / embedding / f"{name}__seed{seed}.json"


def run_one(X: np.ndarray, embedding: str, name: str, kwargs: Mapping[str, Any], seed: int,
            cache_dir: Path | str, input_sha: str | None = None) -> dict[str, Any]:
    """Fit one configuration on X with one seed (or load its record): one stage per run."""
    from jointsid_utils.quantizers.rq_vae import RQVAE
    from jointsid_utils.ids.build import array_sha256

    X = np.ascontiguousarray(X, dtype=np.float32)
    resolved = RQVAE(**{**kwargs, "seed": seed}).config
    key = {"config": resolved, "input_sha256": input_sha or array_sha256(X)}
    labels = {"embedding": embedding, "name": name, "seed": seed, "group": CONFIGS.get(name, ("custom", {}))[0]}
    stage = Stage("rqvae_diagnosis", functools.partial(_write_record, X, resolved, {**labels, "key": key}),
                  outputs=(RECORD,), config={**key, **labels}, seed=seed)
    path = run_path(Path(cache_dir), embedding, name, seed)
    produce(stage, {RECORD: path})
    return json.loads(path.read_text())


def _write_record(X: np.ndarray, resolved: dict[str, Any], labels: dict[str, Any], ws: Workspace) -> None:
    write_json(ws.out / RECORD, {**_fit_record(X, resolved), **labels})


def _fit_record(X: np.ndarray, resolved: dict[str, Any]) -> dict[str, Any]:
    from jointsid_utils.quantizers import scheme_diagnostics
    from jointsid_utils.quantizers.rq_vae import RQVAE

    q = RQVAE(**resolved)
    init = scale_probe(q, X, initial=True)
    q.fit(X)
    codes = q.encode(X)
    diag = scheme_diagnostics(codes, q.cfg.codebook_size, quantizer="rq_vae", config=resolved,
                              reconstruction_mse=q.diagnostics()["reconstruction_mse"], fit_seconds=q.fit_seconds)
    final = scale_probe(q, X, initial=False)
    return {**diag, "history": q.history, "probe_init": init, "probe_final": final}


def scale_probe(q: Any, X: np.ndarray, *, initial: bool) -> dict[str, Any]:
    """Latent scale versus level-1 codebook scale, of the fitted ``RQVAE`` or (``initial``) of a fresh one
    built with the same seed as ``fit`` (``RQVAE.latents_and_codebook``)."""
    import torch

    z, codebook = q.latents_and_codebook(X, initial=initial)
    with torch.no_grad():
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
    configure_runtime(1)  # one thread per run, inline or in a worker: its numbers do not depend on the machine
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
        import torch

        kernel_threads = torch.get_num_threads()
        try:
            for t in tasks:
                bar.set_postfix_str(f"{t[1]}/{t[2]}/s{t[4]}")
                records.append(_worker(t))
                bar.update()
        finally:
            configure_runtime(kernel_threads)  # each run had one thread; the kernel keeps its own
    else:
        configure_runtime()  # spawned workers inherit the environment: it must be set before they import torch
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(_worker, t) for t in tasks]
            for fut in as_completed(futures):
                records.append(fut.result())
                bar.update()
    bar.close()
    order = {(t[1], t[2], t[4]): i for i, t in enumerate(tasks)}
    return sorted(records, key=lambda r: order[(r["embedding"], r["name"], r["seed"])])


def stage_diagnostics(cfg: StudyConfig, vectors: Mapping[str, np.ndarray]) -> dict[tuple[str, str], dict[str, Any]]:
    """The quantizer stage's ``rq_vae`` and ``rq_vae_fixed`` IDs of each diagnosed embedding, built with
    ``build_ids`` and the stage's settings (``ids.rq_vae_steps``) into ``runs/<folder>/ids/``, so notebook
    03's cache is reused and notebook 05 finds them; (embedding, quantizer) -> the IDs' diagnostics."""
    from jointsid_utils.ids.build import build_ids
    from jointsid_utils.ids.schemes import scheme_kwargs

    return {(e, q): build_ids(e, q, vectors[e], run_dir(cfg.folder, "ids"), **scheme_kwargs(cfg, e, q))[1]
            for e in cfg.diagnosis.embeddings for q in STAGE_QUANTIZERS}
