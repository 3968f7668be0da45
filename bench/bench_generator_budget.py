"""What the generator's budget knobs do to **validation** Recall@30: one scheme trained under several settings.

    OMP_WAIT_POLICY=PASSIVE python bench/bench_generator_budget.py [--profile default]
        [--scheme multitask/rq_kmeans] [--variant NAME KEY=VALUE ...] [--workers 2] [--out FILE]

Each variant is the profile's config with a few overrides (``generator.epochs=6``,
``generator.history_k=5``, ...). Every variant trains the same scheme's IDs (from ``runs/<profile>/ids``)
on the same data and seed, one torch thread per job as notebook 05 runs them, and is decoded on the same
**validation** cases only: the validation queries (at most ``generator.val_queries``, drawn by the study
seed) and every user's validation item. The test split is never decoded here, so a setting chosen from
this table never saw it. Each row also gets its paired difference from the first variant on the same cases.
Models go under ``runs/<profile>_budget_<variant>/`` (cached: a rerun reuses them). Prints one JSON line
per variant and writes ``bench/results/bench_generator_budget_validation.json``; the older
``bench_generator_budget*.json`` files scored test (docs/DECISIONS.md, "Settings once compared on test").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

# The two knobs once compared on test and never re-checked on validation: epochs (6 vs 8) and history_k (5 vs 10).
DEFAULT_VARIANTS = {"base": {}, "epochs6": {"generator.epochs": 6.0}, "history5": {"generator.history_k": 5}}


def variant_inputs(profile: str, scheme: tuple[str, str], overrides: dict):
    """(study config with the overrides, items, interactions, queries, ID scheme) from ``runs/<profile>/``."""
    from jointsid_utils.config import load_config
    from jointsid_utils.generator import orchestration as study
    from jointsid_utils.generator.tokenization import make_id_scheme
    from jointsid_utils.ids.schemes import load_ids

    base = load_config(profile)
    items, interactions, queries = study.load_inputs(base)
    ids = make_id_scheme(study.scheme_name(scheme), load_ids(base, *scheme).codes)
    return load_config(profile, overrides), items, interactions, queries, ids


def validation_scores(ids, items, interactions, queries, cfg, out) -> tuple[dict, dict]:
    """Train (or reload) the job as notebook 05 does and decode its validation cases only:
    (row of Recall@k, ``evaluation.k``, per task with its case-bootstrap interval, task -> per-case hits)."""
    from jointsid_utils.generator.examples import scheme_examples
    from jointsid_utils.generator.job import data_hash, job_key
    from jointsid_utils.generator.model import load_saved
    from jointsid_utils.generator.predict import predict_validation
    from jointsid_utils.generator.job import trained_model
    from jointsid_utils.metrics import bootstrap_ci, per_case_recall
    from jointsid_utils.runtime.reproducibility import seed_everything

    gcfg, seed, k = cfg.generator, int(cfg.generator.seeds[0]), cfg.evaluation.k
    examples = scheme_examples(ids, items, interactions, queries, gcfg, seed=seed, case_seed=cfg.seed)
    key = job_key(gcfg, ids, data_hash(items, interactions, queries), case_seed=cfg.seed, seed=seed)
    seed_everything(seed)
    saved, info = trained_model(ids, lambda: examples, items, queries, gcfg, seed, key, link=out)
    tokenizer, model = load_saved(saved)
    preds = predict_validation(model, tokenizer, ids, examples, gcfg)
    row = {"seed": seed, "train_seconds": info["train_seconds"],
           "examples_train": info["examples"]["train_search"] + info["examples"]["train_rec"],
           "best_checkpoint": os.path.basename(str(info.get("best_checkpoint")))}
    hits = {}
    for task, frame in preds.groupby("task", sort=True):
        frame = frame.reset_index(drop=True)
        hits[task] = {"case_id": frame["case_id"].astype(str).tolist(), "target": frame["target"].tolist(),
                      "hit": per_case_recall(frame, k=k).tolist()}
        lo, hi = bootstrap_ci(per_case_recall(frame, k=k))
        row[f"val_{task}"] = [round(float(sum(hits[task]["hit"]) / len(frame)), 4), round(lo, 4), round(hi, 4)]
        row[f"val_{task}_cases"] = len(frame)
    return row, hits


def run_variant(profile: str, scheme: tuple[str, str], name: str, overrides: dict) -> tuple[dict, dict]:
    """One variant's row and per-case validation hits (run in a worker process)."""
    from jointsid_utils.generator.training import model_dir

    started = time.time()
    cfg, items, interactions, queries, ids = variant_inputs(profile, scheme, overrides)
    out = model_dir(f"{profile}_budget_{name}", ids.name, int(cfg.generator.seeds[0]))
    scores, hits = validation_scores(ids, items, interactions, queries, cfg, out)
    row = {"variant": name, "overrides": overrides, "scheme": "/".join(scheme), **scores,
           "job_seconds": round(time.time() - started, 1)}
    return row, hits


def paired_against_first(rows: list[dict], hits: list[dict]) -> None:
    """Adds to every row but the first its paired validation difference from the first (mean and 95% bootstrap
    interval of the per-case differences); cases must match, which they do unless the data changed."""
    import numpy as np

    from jointsid_utils.metrics import bootstrap_ci

    for row, own in zip(rows[1:], hits[1:]):
        for task, ref in hits[0].items():
            if own[task]["case_id"] != ref["case_id"] or own[task]["target"] != ref["target"]:
                raise SystemExit(f"{row['variant']} and {rows[0]['variant']} were scored on different {task} cases.")
            diff = np.asarray(own[task]["hit"]) - np.asarray(ref["hit"])
            lo, hi = bootstrap_ci(diff)
            row[f"paired_{task}_vs_{rows[0]['variant']}"] = [round(float(diff.mean()), 4), round(lo, 4), round(hi, 4)]


def parse_variants(specs: list[list[str]] | None) -> dict[str, dict]:
    """``--variant NAME KEY=VALUE ...`` (values as JSON) into name -> overrides; the defaults without any."""
    if not specs:
        return DEFAULT_VARIANTS
    variants = {}
    for name, *pairs in specs:
        variants[name] = {key: json.loads(value) for key, _, value in (p.partition("=") for p in pairs)}
    return variants


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="default")
    ap.add_argument("--scheme", default="multitask/rq_kmeans")
    ap.add_argument("--variant", nargs="+", action="append", metavar=("NAME", "KEY=VALUE"),
                    help="a variant: its name then overrides, e.g. --variant e6 generator.epochs=6 (first = reference)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="bench/results/bench_generator_budget_validation.json")
    args = ap.parse_args()
    from jointsid_utils.runtime.environment import configure_runtime

    configure_runtime()  # idle OpenMP threads sleep, the hub stays offline; workers inherit both
    variants = parse_variants(args.variant)
    scheme = tuple(args.scheme.split("/"))
    from jointsid_utils.generator.orchestration import worker_init  # notebook 05's worker set-up: one thread per job

    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn"), initializer=worker_init) as pool:
        futures = [pool.submit(run_variant, args.profile, scheme, n, o) for n, o in variants.items()]
        results = [f.result() for f in futures]
    rows, hits = [r for r, _ in results], [h for _, h in results]
    paired_against_first(rows, hits)
    for row in rows:
        print(json.dumps(row))
    meta = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "workers": args.workers,
            "date": time.strftime("%Y-%m-%d"), "profile": args.profile, "scored_on": "validation"}
    with open(args.out, "w") as fh:
        json.dump({"meta": meta, "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
