"""The generator experiment over every scheme (STUDY.md §5, notebooks 05 and 06).

    runs = train_all_schemes(cfg, workers=2)      # train + decode + score every scheme x seed, cached

Each (scheme, seed) job calls ``job.train_and_predict``, whose model and decoded lists are stages
(``jointsid_utils.stages``): reloaded when published, built otherwise. The parent process scores every job
with ``metrics.score_and_save`` (``results/recall_at_<k>.csv`` and ``results/predictions/``) and writes its
summary to ``results/generator_runs/<scheme>__seed<k>.json`` (``__diverse`` appended for the paper's
decoding): times, sizes, Recall@k and validation scores, read by ``validation_table``. The summary decides
nothing: whether a job trains is the stages' to say, so a rerun reloads and rescores ("cached" when
neither stage was built).

Parallelism: ``workers`` jobs run in spawned processes (``workers.plan_workers``: one per free core on a CPU,
one on a GPU), one torch thread each on a CPU, set by ``runtime.configure_runtime`` with
``OMP_WAIT_POLICY=PASSIVE`` (busy-waiting OpenMP threads slow a step many times over); the measurements
behind this are in docs/DECISIONS.md ("Workers").
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd

from jointsid_utils.runtime import distributed
from jointsid_utils.cache import run_dir, write_json
from jointsid_utils.config import StudyConfig
from jointsid_utils.cutoff import recall_column, recall_column_in
from jointsid_utils.errors import StudyInputError
from jointsid_utils.generator.job import data_hash, job_key
from jointsid_utils.generator.tokenization import make_id_scheme
from jointsid_utils.runtime.environment import configure_runtime
from jointsid_utils.study import INCUMBENT, JOINT_SCHEMES, TWO_ID_SCHEMES, Scheme, study_schemes, table_a
from jointsid_utils.runtime.workers import machine_cores, plan_workers

SUMMARY_FIELDS = ("train_seconds", "decode_seconds", "job_seconds", "examples", "parameters", "vocab_size",
                  "best_checkpoint", "resumed")


def auto_workers(sample_s: float = 1.0, jobs: int | None = None) -> int:
    """Generator jobs side by side when ``generator.workers`` is 0: ``workers.plan_workers`` on this machine,
    so 1 on a GPU, else one per core not busy now (one thread each). Idleness is sampled now, over
    ``sample_s`` seconds, not read from the load average, which still counts the study's previous notebook
    for a minute after it ends. Why: docs/DECISIONS.md ("Workers")."""
    import psutil
    import torch

    gpu, cores = torch.cuda.is_available(), machine_cores()
    busy_cores = 0.0 if gpu or cores < 2 else psutil.cpu_percent(interval=sample_s) / 100 * cores
    return plan_workers(cores, gpu, jobs, busy_cores=busy_cores).workers


def resolve_workers(cfg: StudyConfig, workers: int | None = None) -> int:
    """Jobs side by side: ``workers`` if given, else ``generator.workers`` (0 = ``auto_workers``). A notebook
    passes the number it printed, so the run does not sample the machine again and disagree."""
    if workers is None:
        workers = cfg.generator.workers or auto_workers()
    return int(workers)


def job_threads(workers: int) -> int | None:
    """Torch threads of each job: 1 on a CPU whatever the worker count (so numbers do not depend on it),
    torch's default on a GPU (``workers.plan_workers``)."""
    import torch

    return plan_workers(machine_cores(), torch.cuda.is_available(), fixed=workers).threads


def scope_schemes(cfg: StudyConfig) -> list[Scheme]:
    """``study_schemes`` as the config's ``scope`` section asks, with the supplied embeddings' Table A rows."""
    from jointsid_utils.embeddings.registry import extra_embeddings

    return study_schemes(cfg.scope.content_quantizers, cfg.scope.joint_ids, extra=tuple(extra_embeddings(cfg)))


def table_a_rows(cfg: StudyConfig) -> list[Scheme]:
    """Table A as this run has it: the paper's eight rows, then one per supplied embedding."""
    from jointsid_utils.embeddings.registry import extra_names

    return table_a(extra_names(cfg))


def prepare_scheme_ids(cfg: StudyConfig, schemes: Sequence[Scheme], seeds: Sequence[int] | None = None, *,
                       progress: bool = False) -> dict[int, dict[Scheme, np.ndarray]]:
    """seed -> scheme -> codes, for every training seed (default ``generator.seeds``).

    A seed replicates the IDs and the generator together: each seed's quantizers are fit with that seed
    (``ids.schemes.ids_stem`` names the files). The study seed's IDs are notebook 03's (and 04's); the other
    seeds' are built (or reloaded) here from notebook 02's embeddings, which are fit once, and so are the joint
    constructions of every seed, since notebook 05 runs before notebook 07 shows them."""
    from jointsid_utils.embeddings.registry import load_embedding
    from jointsid_utils.ids.schemes import load_ids, prepare_ids
    from jointsid_utils.joint.constructions import JOINT_CONSTRUCTIONS, JOINT_INPUTS, prepare_joint_ids

    seeds = [int(s) for s in (cfg.generator.seeds if seeds is None else seeds)]
    joint = [e for e, _ in schemes if e in JOINT_CONSTRUCTIONS]
    plain = [tuple(s) for s in schemes if s[0] not in JOINT_CONSTRUCTIONS]
    refit = [s for s in seeds if s != cfg.seed]
    needed = set(JOINT_INPUTS) if joint else set()
    if refit:
        needed |= {m for e, _ in plain for m in (("search", "rec") if e in TWO_ID_SCHEMES else (e,))}
    vectors = {m: load_embedding(cfg, m) for m in sorted(needed)}
    for seed in seeds:
        if joint:
            prepare_joint_ids(cfg, vectors, joint, seed=seed, progress=progress)
        if plain and seed in refit:
            prepare_ids(cfg, vectors, plain, seed=seed, progress=progress)
    return {seed: {s: load_ids(cfg, *s, seed=seed).codes for s in schemes} for seed in seeds}


def scheme_name(scheme: Scheme) -> str:
    """``embedding__quantizer``: the scheme's name in file and directory names."""
    return f"{scheme[0]}__{scheme[1]}"


def runs_dir(profile: str) -> Path:
    """``runs/<folder>/results/generator_runs/``: one summary per finished job."""
    return run_dir(profile, "results", "generator_runs")


def load_inputs(cfg: StudyConfig) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(items, interactions, queries) from notebook 01's cached stages."""
    from jointsid_utils.data.dataset import prepare_data
    from jointsid_utils.queries.stage import prepare_queries

    items, interactions = prepare_data(cfg)
    return items, interactions, prepare_queries(items, cfg, run_dir(cfg.folder, "data"))


def worker_init() -> None:
    """Set-up of a spawned job process: one torch / OpenMP thread, OpenMP threads that sleep when idle, and
    no trainer bars (they would reach the terminal unrelayed; the notebook's bar of jobs shows progress)."""
    configure_runtime(1)
    from jointsid_utils.generator import training

    training.SHOW_TRAINER_PROGRESS = False
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Loading weights", "Writing model shards": one bar per checkpoint


def train_all_schemes(cfg: StudyConfig, schemes: Sequence[Scheme] | None = None, seeds: Sequence[int] | None = None,
                      *, workers: int | None = None, items: pd.DataFrame | None = None,
                      interactions: pd.DataFrame | None = None, queries: pd.DataFrame | None = None,
                      retrain: bool = False, progress: bool = True,
                      validate: Sequence[Scheme] | None = None) -> pd.DataFrame:
    """Train, decode and score every scheme x seed; one summary row per job (status, times, examples).

    ``schemes`` defaults to ``study_schemes()`` (12), ``seeds`` to ``cfg.generator.seeds``, ``workers`` to
    ``resolve_workers``; every other setting is ``cfg.generator``'s. Data frames default to the cached
    stage outputs (notebook 01); seed s trains on the IDs of seed s (``ids.schemes.load_ids``: notebooks
    03, 04 for the study seed, ``prepare_scheme_ids`` for the others). A job whose model and lists are
    published reloads them (``status="cached"``); ``retrain=True`` retrains and rescores everything. Jobs of
    the ``validate`` schemes (default: the joint constructions of ``jointsid_utils.joint`` among ``schemes``,
    and with them the scheme they must beat) also score the validation cases, into their summary's
    ``validation``; ``validation_table`` collects them. Asking for them later decodes the saved model again.
    """
    from tqdm.auto import tqdm

    from jointsid_utils.metrics import score_and_save

    torchrun = distributed.world_size() > 1
    if torchrun:  # every process runs each job together, in this process
        distributed.init()
        workers = 1
    workers = resolve_workers(cfg, workers)
    schemes = study_schemes() if schemes is None else [tuple(s) for s in schemes]
    seeds = list(cfg.generator.seeds if seeds is None else seeds)
    if not seeds:
        raise StudyInputError("train_all_schemes needs at least one seed (generator.seeds is empty).")
    if items is None or interactions is None or queries is None:
        items, interactions, queries = load_inputs(cfg)
    if validate is None:  # the incumbent's validation numbers only matter beside a joint construction's
        joint = [s for s in schemes if s in JOINT_SCHEMES]
        validate = (*joint, INCUMBENT) if joint else ()
    validate = {tuple(s) for s in validate}
    warm = warm_starts(cfg, seeds, items, interactions, queries)
    rows: list[dict[str, Any]] = []
    jobs = _plan_jobs(cfg, schemes, seeds, items, interactions, queries, retrain=retrain,
                            threads=None if torchrun else job_threads(workers), validate=validate, warm=warm)
    bar = tqdm(total=len(schemes) * len(seeds), desc="generator", unit="run",
               disable=not progress or not distributed.is_main())

    def finish(job: dict[str, Any], preds: pd.DataFrame | None, info: dict[str, Any]) -> None:
        if preds is not None:  # None: a torchrun process other than the main one, nothing to score
            scored = score_and_save(preds, cfg.folder, job["scheme"][0], job["scheme"][1], interactions, queries,
                                    k=cfg.evaluation.k)
            summary = _summary(job, preds, info, scored, workers)
            write_json(job["summary"], summary)
            rows.append({**summary, "status": "cached" if info.get("reused") else "trained"})
            bar.set_postfix_str(scheme_name(job["scheme"]))
        bar.update()

    _run_jobs(jobs, workers, finish, bar)
    bar.close()
    if not rows:  # a torchrun process other than the main one
        return pd.DataFrame()
    order = {(s, seed): i for i, (s, seed) in enumerate((s, seed) for s in schemes for seed in seeds)}
    table = pd.DataFrame(rows)
    table["_o"] = [order[((e, q), int(sd))] for e, q, sd in zip(table.embedding, table.quantizer, table.seed)]
    return table.sort_values("_o").drop(columns=["_o", "key"]).reset_index(drop=True)


def warm_starts(cfg: StudyConfig, seeds: Sequence[int], items: pd.DataFrame, interactions: pd.DataFrame,
                queries: pd.DataFrame) -> dict[int, Path]:
    """seed -> its pretrained checkpoint (``generator.pretrain``), trained here before any job when missing,
    so that every scheme of a seed fine-tunes the same one (linked at the run folder's ``pretrain/seed<k>``);
    empty without ``generator.warm_start``."""
    if not cfg.generator.warm_start:
        return {}
    from jointsid_utils.generator.pretrain import pretrain

    data = (items, interactions, queries)
    return {int(seed): pretrain(cfg.generator, data, int(seed), cfg.folder) for seed in seeds}


def _plan_jobs(cfg: StudyConfig, schemes: Sequence[Scheme], seeds: Sequence[int], items: pd.DataFrame,
               interactions: pd.DataFrame, queries: pd.DataFrame, *, retrain: bool, threads: int | None,
               validate: set[Scheme] = frozenset(),
               warm: dict[int, Path] | None = None) -> list[dict[str, Any]]:
    """Every (scheme, seed) job, with its key and where its summary goes; ``warm``: ``warm_starts``."""
    from jointsid_utils.generator.pretrain import checkpoint_sha256

    warm = warm or {}
    warm_sha = {seed: checkpoint_sha256(path) for seed, path in warm.items()}

    # every seed's IDs (another seed's refit built here when notebook 05 has not), before any training
    seed_codes = prepare_scheme_ids(cfg, schemes, seeds)
    codes = {(s, seed): seed_codes[seed][s] for s in schemes for seed in seeds}
    data = data_hash(items, interactions, queries)
    out = runs_dir(cfg.folder)
    out.mkdir(parents=True, exist_ok=True)
    decoding = cfg.generator.decoding
    suffix = "" if decoding == "beam" else f"__{decoding}"  # the paper's decoding is a job of its own
    jobs = []
    for s in schemes:
        for seed in seeds:
            id_scheme = make_id_scheme(scheme_name(s), codes[(s, seed)])
            key = job_key(cfg.generator, id_scheme, data, case_seed=cfg.seed, seed=seed, warm_start=warm_sha.get(seed))
            jobs.append({"scheme": s, "seed": int(seed), "codes": codes[(s, seed)], "items": items,
                         "interactions": interactions, "queries": queries, "cfg": cfg, "retrain": retrain,
                         "threads": threads, "key": key, "validate": s in validate,
                         "summary": out / f"{scheme_name(s)}__seed{seed}{suffix}.json",
                         "warm_start": warm.get(seed)})
    # The jobs that also decode validation cases are the longest: first, so the pool's last minutes hold
    # short jobs and one worker idles less at the end (sorted() keeps the order otherwise).
    return sorted(jobs, key=lambda job: not job["validate"])


def _run_job(job: dict[str, Any]) -> tuple[pd.DataFrame | None, dict[str, Any]]:
    """One (scheme, seed): train (or reload) and decode. Runs in a worker process or inline."""
    from jointsid_utils.generator.job import train_and_predict

    started = time.time()
    preds = train_and_predict(scheme_name(job["scheme"]), job["codes"], job["items"], job["interactions"],
                              job["queries"], job["cfg"], job["seed"], threads=job["threads"], retrain=job["retrain"],
                              validate=job.get("validate", False), warm_start=job.get("warm_start"))
    if preds is None:  # a torchrun process other than the main one: it trained its shard, nothing to score
        return None, {}
    info = dict(preds.attrs.get("train_info", {}))
    info.update(decode_seconds=preds.attrs.get("decode_seconds"), job_seconds=round(time.time() - started, 1),
                pid=os.getpid(), reused=preds.attrs.get("reused", False))
    if "validation" in preds.attrs:
        info["validation"] = preds.attrs["validation"]
    preds.attrs = {}
    return preds, info


def _run_jobs(jobs: list[dict[str, Any]], workers: int, finish: Callable[..., None], bar) -> None:
    """Every job inline (``workers`` <= 1) or in ``workers`` spawned processes; ``finish`` each result here."""
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_context

    if workers <= 1:
        import torch

        kernel_threads = torch.get_num_threads()
        try:
            for job in jobs:
                bar.set_postfix_str(f"{scheme_name(job['scheme'])} seed {job['seed']}")
                finish(job, *_run_job(job))
        finally:
            configure_runtime(kernel_threads)  # inline jobs ran with their plan's threads; the kernel keeps its own
    elif jobs:
        configure_runtime()  # spawned workers inherit the environment: it must be set before they import torch
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=worker_init) as pool:
            futures = {pool.submit(_run_job, {k: v for k, v in job.items() if k != "summary"}): job for job in jobs}
            for fut in as_completed(futures):
                finish(futures[fut], *fut.result())


def _summary(job: dict[str, Any], preds: pd.DataFrame, info: dict[str, Any], scored: pd.DataFrame,
             workers: int) -> dict[str, Any]:
    """A finished job's summary: its model's stage key, times, sizes and Recall@k per task/protocol (all cases)."""
    decoding, recall = str(preds["decoding"].iloc[0]), recall_column_in(scored)
    return {"key": info.get("key"), "embedding": job["scheme"][0], "quantizer": job["scheme"][1], "seed": job["seed"],
            "decoding": decoding, "workers": workers, **{k: info.get(k) for k in SUMMARY_FIELDS},
            "recall": {f"{r.task}/{r.protocol}": getattr(r, recall) for r in scored.itertuples()
                       if r.segment == "all" and r.decoding == decoding},
            **({"validation": info["validation"]} if "validation" in info else {})}


def validation_table(profile: str, *, k: int) -> pd.DataFrame:
    """Validation Recall@k of every job that scored it (one row per scheme, seed and task), from the summaries;
    a job scored at another k than ``k`` (``evaluation.k``) is left out."""
    rows = []
    for path in sorted(runs_dir(profile).glob("*.json")):
        summary = json.loads(path.read_text())
        if summary.get("decoding", "beam") != "beam":  # the paper's decoding of a model counted once, as beam
            continue
        for task, score in summary.get("validation", {}).items():
            if recall_column(k) in score:
                rows.append({"embedding": summary["embedding"], "quantizer": summary["quantizer"],
                             "seed": summary["seed"], "task": task, **score})
    columns = ["embedding", "quantizer", "seed", "task", recall_column(k), "ci_low", "ci_high", "n_cases"]
    return pd.DataFrame(rows, columns=columns)
