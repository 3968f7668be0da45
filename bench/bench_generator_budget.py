"""What the generator's budget knobs cost in Recall@30: one scheme trained under several settings.

    OMP_WAIT_POLICY=PASSIVE python bench/bench_generator_budget.py [--profile default]
        [--scheme multitask/rq_kmeans] [--variant NAME KEY=VALUE ...] [--workers 2] [--out FILE]

Each variant is the profile's generator settings with a few overridden (``generator.epochs=6``,
``generator.rec_windows_per_user=10``, ...). Every variant trains the same scheme's IDs (from
``runs/<profile>/ids``) on the same data and seed, one torch thread per job as notebook 05 runs them,
and is decoded on the same test cases; so the rows differ only in the knob. Models go under
``runs/<profile>_budget_<variant>/`` (cached like notebook 05's: a rerun reuses them). Prints one JSON
line per variant (Recall@30 with bootstrap intervals, train seconds, examples) and writes a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

DEFAULT_VARIANTS = {"base": {}, "epochs6": {"generator.epochs": 6.0},
                    "windows10": {"generator.rec_windows_per_user": 10}}


def run_variant(profile: str, scheme: tuple[str, str], name: str, overrides: dict) -> dict:
    from jointsid_utils.config import load_config
    from jointsid_utils.generator import orchestration as study
    from jointsid_utils.generator.job import train_and_predict
    from jointsid_utils.ids.schemes import load_ids
    from jointsid_utils.metrics import bootstrap_ci, per_case_recall

    base = load_config(profile)
    cfg = load_config(profile, overrides)
    items, interactions, queries = study.load_inputs(base)
    codes = load_ids(base, *scheme).codes
    seed = int(cfg.generator.seeds[0])
    started = time.time()
    preds = train_and_predict(study.scheme_name(scheme), codes, items, interactions, queries, cfg, seed,
                              profile=f"{profile}_budget_{name}", threads=1)
    info = preds.attrs["train_info"]
    row = {"variant": name, "overrides": overrides, "scheme": "/".join(scheme), "seed": seed,
           "train_seconds": info["train_seconds"], "job_seconds": round(time.time() - started, 1),
           "examples_train": info["examples"]["train_search"] + info["examples"]["train_rec"],
           "best_checkpoint": os.path.basename(str(info.get("best_checkpoint")))}
    for (task, protocol), frame in preds.groupby(["task", "protocol"], sort=True):
        hits = per_case_recall(frame.reset_index(drop=True))
        lo, hi = bootstrap_ci(hits)
        row[f"{task}/{protocol}"] = [round(float(hits.mean()), 4), round(lo, 4), round(hi, 4)]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="default")
    ap.add_argument("--scheme", default="multitask/rq_kmeans")
    ap.add_argument("--variant", nargs="+", action="append", metavar=("NAME", "KEY=VALUE"),
                    help="a variant: its name then overrides, e.g. --variant e6 generator.epochs=6")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="bench/results/bench_generator_budget.json")
    args = ap.parse_args()
    variants = DEFAULT_VARIANTS
    if args.variant:
        variants = {}
        for name, *pairs in args.variant:
            over = {}
            for pair in pairs:
                key, _, value = pair.partition("=")
                over[key] = json.loads(value)
            variants[name] = over
    scheme = tuple(args.scheme.split("/"))
    from jointsid_utils.generator.orchestration import worker_init  # notebook 05's worker set-up: one thread per job

    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn"), initializer=worker_init) as pool:
        futures = [pool.submit(run_variant, args.profile, scheme, n, o) for n, o in variants.items()]
        rows = [f.result() for f in futures]
    for row in rows:
        print(json.dumps(row))
    meta = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "workers": args.workers, "date": time.strftime("%Y-%m-%d"), "profile": args.profile}
    with open(args.out, "w") as fh:
        json.dump({"meta": meta, "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
