"""The tuned baselines on a profile's data: SASRec's validation grid and its five training seeds,
BM25's (k1, b) grid, each chosen on validation and then scored on the generator's test cases.

Not a test: run by hand; prints the validation grids, the chosen settings, test Recall@30 (SASRec: the
seeds' mean and SD, per protocol) and the wall time of each part, for docs/STUDY.md. Choices read the
validation split only (``evaluation.tuned``); the test cases are scored once, after choosing.

    JOINTSID_RUNS_DIR=/tmp/bench_runs .venv/bin/python bench/bench_baselines.py            # default profile
    JOINTSID_RUNS_DIR=/tmp/bench_runs .venv/bin/python bench/bench_baselines.py --profile smoke
"""

from __future__ import annotations

import argparse
import logging
import time

import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="default")
    args = parser.parse_args()
    from jointsid_utils.runtime.environment import configure_runtime

    configure_runtime()  # idle OpenMP threads sleep, the hub stays offline; workers inherit both
    logging.basicConfig(format="%(message)s")
    logging.getLogger("jointsid_utils").setLevel(logging.INFO)  # one line per SASRec grid run, with its seconds

    from jointsid_utils.cache import run_dir
    from jointsid_utils.config import load_config
    from jointsid_utils.data.dataset import prepare_data
    from jointsid_utils.evaluation.baselines import bm25, most_popular
    from jointsid_utils.evaluation.bm25_tuning import bm25_tuned, tune_bm25
    from jointsid_utils.evaluation.tuned import sasrec_grid, sasrec_predictions
    from jointsid_utils.generator.examples import generator_test_cases
    from jointsid_utils.metrics import recall_column, recall_rows
    from jointsid_utils.queries.stage import prepare_queries

    cfg = load_config(args.profile)
    k = cfg.evaluation.k
    items, interactions = prepare_data(cfg)
    queries = prepare_queries(items, cfg, run_dir(cfg.name, "data"))
    search, rec = generator_test_cases(cfg, items, interactions, queries)
    print(f"{len(items)} items, {len(interactions)} interactions, {len(rec)} rec and {len(search)} search test cases")

    started = time.perf_counter()
    grid, chosen = sasrec_grid(cfg, interactions, len(items))
    grid_s = time.perf_counter() - started
    print(f"\nSASRec validation grid ({grid_s:.0f} s):\n{grid.to_string(index=False)}\nchosen: {chosen.text()}")
    started = time.perf_counter()
    sasrec = sasrec_predictions(cfg, interactions, rec, len(items), chosen)
    seeds_s = time.perf_counter() - started
    print(f"SASRec {len(cfg.baselines.sasrec_seeds)} seeds (trained on train histories, scored from train + validation): {seeds_s:.0f} s")

    started = time.perf_counter()
    bm25_grid, k1b = tune_bm25(items, queries, cfg.baselines.bm25_k1, cfg.baselines.bm25_b, seed=cfg.seed, k=k)
    bm25_s = time.perf_counter() - started
    print(f"\nBM25 validation grid ({bm25_s:.1f} s):\n{bm25_grid.to_string(index=False)}\nchosen: k1={k1b[0]}, b={k1b[1]}")

    rows = []
    for name, frame in (("sasrec", sasrec), ("most_popular", most_popular(rec, interactions, k=k).assign(seed=0)),
                        ("bm25", bm25(search, items, k=k).assign(seed=0)),
                        ("bm25_tuned", bm25_tuned(search, items, k1b, k=k).assign(seed=0))):
        rows.append(recall_rows(frame, embedding="baseline", quantizer=name, k=k).assign(method=name))
    scored = pd.concat(rows, ignore_index=True)
    scored = scored[scored["segment"] == "all"]
    summary = scored.groupby(["method", "task", "protocol"])[recall_column(k)].agg(["mean", "std", "count"])
    print(f"\nTest Recall@{k} (mean and SD over seeds):\n{summary.round(4).to_string()}")
    print(f"\nwall: SASRec grid {grid_s:.0f} s, seeds {seeds_s:.0f} s, BM25 grid {bm25_s:.1f} s")


if __name__ == "__main__":
    main()
