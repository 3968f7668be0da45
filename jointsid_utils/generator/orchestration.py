"""The generator experiment over every scheme (STUDY.md §5, notebooks 05 and 06).

    runs = train_all_schemes(cfg, workers=2)      # train + decode + score every scheme x seed, cached

Each (scheme, seed) job calls ``generator.train_and_predict`` (which caches the model) and the parent
process scores it with ``metrics.score_and_save`` (``results/recall_at_30.csv`` and
``results/predictions/``). A finished job leaves ``results/generator_runs/<scheme>__seed<k>.json``
keyed on everything that decides its lists (generator settings, options, codes, data, case seed); a
rerun with the same key skips the job without loading the model.

Parallelism: FEASIBILITY.md measured two 1-thread processes side by side at ~1.4x the throughput of one
2-thread process on this 2-core machine, so ``workers`` jobs run in spawned processes, one torch thread
each, with ``OMP_WAIT_POLICY=PASSIVE`` (busy-waiting OpenMP threads made a step 17x slower).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from jointsid_utils import distributed
from jointsid_utils.cache import run_dir, write_json
from jointsid_utils.config import StudyConfig, as_dict, stable_hash
from jointsid_utils.errors import StudyInputError

Scheme = tuple[str, str]
SEARCH_OPTIONS = ("search_eval_cases",)  # options that change the test cases (baselines must use the same)

def auto_workers(sample_s: float = 1.0) -> int:
    """Generator jobs side by side when ``generator.workers`` is 0: 1 on a GPU, else 2 only while at
    least half the cores are idle.

    A GPU job already fills its device; a second one would time-share it with its own CUDA context and one
    CPU thread. On CPU, two workers pay only on an idle machine: on this 2-core VM with one other busy
    process, two default jobs took 95 s with two workers against 78-89 s with one; FEASIBILITY.md's 1.4x
    gain was on an idle machine. Idleness is sampled now, over ``sample_s`` seconds. The 1-minute load
    average used before still counted the study's own previous notebook, so it chose 1 worker right after
    notebook 04 even on an otherwise idle machine.
    """
    import psutil
    import torch

    if torch.cuda.is_available():
        return 1
    cores = os.cpu_count() or 1
    if cores < 2:
        return 1
    busy_cores = psutil.cpu_percent(interval=sample_s) / 100 * cores
    return 2 if busy_cores < 0.5 * cores else 1


def plan(cfg: StudyConfig, workers: int | None = None) -> dict[str, Any]:
    """Workers for this run (``workers`` if given, else ``generator.workers``, 0 = auto) and per-run
    generator options (none: the profile's ``GeneratorConfig`` carries them, e.g. smoke decodes 300 of
    its 2,000 test queries). Pass the workers a notebook printed, so that the run uses the same number
    instead of sampling the machine again."""
    if workers is None:
        workers = cfg.generator.workers or auto_workers()
    return {"workers": int(workers), "options": {}}


def study_schemes(include_content_quantizers: bool = False) -> list[Scheme]:
    """STUDY.md §5: Table A (RQ-KMeans) and Table B on multitask: 12 schemes; content's Table B on request."""
    from jointsid_utils.ids.schemes import TABLE_A, TABLE_B_QUANTIZERS

    out = [(e, "rq_kmeans") for e in TABLE_A] + [("multitask", q) for q in TABLE_B_QUANTIZERS]
    if include_content_quantizers:
        out += [("content", q) for q in TABLE_B_QUANTIZERS]
    return list(dict.fromkeys(out))


def scheme_name(scheme: Scheme) -> str:
    return f"{scheme[0]}__{scheme[1]}"


def runs_dir(profile: str) -> Path:
    return run_dir(profile, "results", "generator_runs")


def _data_hash(interactions: pd.DataFrame, queries: pd.DataFrame) -> str:
    a = pd.util.hash_pandas_object(interactions[["user_id", "item_id", "split"]], index=False).to_numpy()
    b = pd.util.hash_pandas_object(queries[["item_id", "query", "split"]], index=False).to_numpy()
    return stable_hash([int(a.sum() % (1 << 62)), len(a), int(b.sum() % (1 << 62)), len(b)])


def job_key(cfg: StudyConfig, scheme: Scheme, seed: int, codes: np.ndarray, data_hash: str,
            options: dict[str, Any]) -> str:
    """Everything that decides a job's ranked lists."""
    from jointsid_utils.generator.model import OPTIONS, _opt

    resolved = {k: _opt(cfg.generator, k, options) for k in OPTIONS}
    return stable_hash({"generator": as_dict(cfg.generator), "options": resolved, "scheme": scheme_name(scheme),
                        "codes": stable_hash(np.ascontiguousarray(codes).tobytes().hex()), "data": data_hash,
                        "case_seed": cfg.seed, "seed": int(seed)})


def _run_job(job: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One (scheme, seed): train (or reload) and decode. Runs in a worker process or inline."""
    from jointsid_utils.generator.model import train_and_predict

    started = time.time()
    preds = train_and_predict(scheme_name(job["scheme"]), job["codes"], job["items"], job["interactions"],
                              job["queries"], job["cfg"], job["seed"], threads=job["threads"],
                              retrain=job["retrain"], **job["options"])
    if preds is None:  # a torchrun process other than the main one: it trained its shard, nothing to score
        return None, {}
    info = dict(preds.attrs.get("train_info", {}))
    info.update(decode_seconds=preds.attrs.get("decode_seconds"), job_seconds=round(time.time() - started, 1),
                pid=os.getpid())
    preds.attrs = {}
    return preds, info


def _worker_init() -> None:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    torch.set_num_threads(1)


def load_inputs(cfg: StudyConfig):
    from jointsid_utils.data.dataset import prepare_data
    from jointsid_utils.queries.templates import prepare_queries

    items, interactions = prepare_data(cfg)
    return items, interactions, prepare_queries(items, cfg, run_dir(cfg.name, "data"))


def train_all_schemes(cfg: StudyConfig, schemes: Sequence[Scheme] | None = None, seeds: Sequence[int] | None = None,
                      *, workers: int | None = None, items: pd.DataFrame | None = None,
                      interactions: pd.DataFrame | None = None, queries: pd.DataFrame | None = None,
                      retrain: bool = False, progress: bool = True, **options: Any) -> pd.DataFrame:
    """Train, decode and score every scheme x seed; one summary row per job (status, times, examples).

    ``schemes`` defaults to ``study_schemes()`` (12), ``seeds`` to ``cfg.generator.seeds``, ``workers`` and
    ``options`` to the profile's ``plan`` (explicit ``options`` win). Data frames default to the cached
    stage outputs (notebook 01); IDs come from ``semantic_ids.load_ids`` (notebooks 03, 04). Finished jobs
    are skipped (``status="cached"``); ``retrain=True`` retrains and rescores everything.
    """
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_context

    from tqdm.auto import tqdm

    from jointsid_utils.metrics import score_and_save
    from jointsid_utils.ids.schemes import load_ids

    if distributed.world_size() > 1:  # torchrun: every process runs each job together, in this process
        distributed.init()
        workers = 1
    p = plan(cfg, workers)
    options = {**p["options"], **options}
    workers = p["workers"]
    schemes = study_schemes() if schemes is None else [tuple(s) for s in schemes]
    seeds = list(cfg.generator.seeds if seeds is None else seeds)
    if not seeds:
        raise StudyInputError("train_all_schemes needs at least one seed (generator.seeds is empty).")
    if items is None or interactions is None or queries is None:
        items, interactions, queries = load_inputs(cfg)
    codes = {s: load_ids(cfg, *s).codes for s in schemes}  # fail on a missing scheme before any training
    data_hash = _data_hash(interactions, queries)
    out = runs_dir(cfg.name)
    out.mkdir(parents=True, exist_ok=True)

    rows, jobs = [], []
    for s in schemes:
        for seed in seeds:
            key = job_key(cfg, s, seed, codes[s], data_hash, options)
            decoding = options.get("decoding", cfg.generator.decoding)
            suffix = "" if decoding == "beam" else f"__{decoding}"  # the paper's decoding is a separate job
            marker = out / f"{scheme_name(s)}__seed{seed}{suffix}.json"
            if not retrain and marker.exists() and json.loads(marker.read_text()).get("key") == key:
                rows.append({**json.loads(marker.read_text()), "status": "cached"})
                continue
            jobs.append({"scheme": s, "seed": int(seed), "codes": codes[s], "items": items,
                         "interactions": interactions, "queries": queries, "cfg": cfg, "options": options,
                         "retrain": retrain, "threads": 1 if workers > 1 else None, "key": key, "marker": marker})

    bar = tqdm(total=len(schemes) * len(seeds), initial=len(rows), desc="generator", unit="run",
               disable=not progress or not distributed.is_main())

    def finish(job, preds, info):
        if preds is None:
            bar.update()
            return
        scored = score_and_save(preds, cfg.name, job["scheme"][0], job["scheme"][1], interactions)
        summary = {"key": job["key"], "embedding": job["scheme"][0], "quantizer": job["scheme"][1],
                   "seed": job["seed"], "decoding": str(preds["decoding"].iloc[0]), "workers": workers,
                   **{k: info.get(k) for k in ("train_seconds", "decode_seconds", "job_seconds", "examples",
                                               "parameters", "vocab_size", "best_checkpoint", "resumed")},
                   "recall": {f"{r.task}/{r.protocol}": r.recall_at_30 for r in scored.itertuples()
                              if r.segment == "all" and r.decoding == preds["decoding"].iloc[0]}}
        write_json(job["marker"], summary)
        rows.append({**summary, "status": "trained"})
        bar.set_postfix_str(scheme_name(job["scheme"]))
        bar.update()

    if workers <= 1:
        for job in jobs:
            bar.set_postfix_str(f"{scheme_name(job['scheme'])} seed {job['seed']}")
            finish(job, *_run_job(job))
    elif jobs:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # spawned workers inherit the environment
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_worker_init) as pool:
            futures = {pool.submit(_run_job, {k: v for k, v in job.items() if k != "marker"}): job for job in jobs}
            for fut in as_completed(futures):
                finish(futures[fut], *fut.result())
    bar.close()
    if not rows:  # a torchrun process other than the main one
        return pd.DataFrame()
    order = {(s, seed): i for i, (s, seed) in enumerate((s, seed) for s in schemes for seed in seeds)}
    table = pd.DataFrame(rows)
    table["_o"] = [order[((e, q), int(sd))] for e, q, sd in zip(table.embedding, table.quantizer, table.seed)]
    return table.sort_values("_o").drop(columns=["_o", "key"]).reset_index(drop=True)


def run_summaries(cfg: StudyConfig) -> pd.DataFrame:
    """Every finished job's summary (``results/generator_runs/*.json``)."""
    rows = [json.loads(p.read_text()) for p in sorted(runs_dir(cfg.name).glob("*.json"))]
    return pd.DataFrame(rows).drop(columns=["key"], errors="ignore")



def generator_test_cases(cfg: StudyConfig, items: pd.DataFrame, interactions: pd.DataFrame, queries: pd.DataFrame,
               **options: Any):
    """The generator's test cases (the same for every scheme: the study seed picks the queries)."""
    from jointsid_utils.generator.model import _opt, build_examples
    from jointsid_utils.generator.tokenization import make_id_scheme

    options = {**plan(cfg)["options"], **options}
    dummy = make_id_scheme("baseline", np.arange(len(items)).reshape(-1, 1))
    ex = build_examples(dummy, interactions, queries, history_k=cfg.generator.history_k, rec_windows_per_user=1,
                        val_queries=0, search_eval_cases=_opt(cfg.generator, "search_eval_cases", options), seed=0,
                        case_seed=cfg.seed)
    return ex.test_search, ex.test_rec
