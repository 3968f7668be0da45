"""The type I error at a Holm level of the variance model's df rules, on a simulation of the study's design.

    OMP_NUM_THREADS=1 python bench/bench_type_one_error.py [--reps 8000] [--out bench/results/bench_type_one_error.json]

Designs (``evaluation.type_one_error``): search (2,000 cases on 1,190 items, recall 0.6) and rec (943 users,
recall 0.2), three and five seeds, seed effects that put the seed term at about 30-99% of the paired
variance; paired comparisons of two generators, and unpaired ones of a generator against a baseline with five
seeds of its own (SASRec). Per rule and family size m (4, 8, 16) the share of null tables rejected at 0.05 / m
and the mean detectable difference (80% power) in SDs of the difference. Writes the JSON (settings, rows) and
a markdown table beside it (``.md``) that docs/STATISTICS.md quotes. The unit-tier version is
tests/unit/test_type_one_error.py.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import pandas as pd

from jointsid_utils.evaluation.type_one_error import ADOPTED, Design, error_table

SEED_SDS = {"search": (0.03, 0.06, 0.1, 0.2), "rec": (0.05, 0.1, 0.2, 0.3)}
RECALL = {"search": 0.6, "rec": 0.2}
CASES = {"search": 2000, "rec": 943}


def designs() -> list[Design]:
    paired = [Design(task=task, n_seeds=s, seed_sd=sd, recall=RECALL[task], n_cases=CASES[task])
              for task in ("search", "rec") for s in (3, 5) for sd in SEED_SDS[task]]
    unpaired = [Design(task="rec", n_seeds=s, seed_sd=sd, recall=0.2, n_cases=943, baseline_seeds=5)
                for s in (3, 5) for sd in (0.1, 0.3)]
    return paired + unpaired


def summary_markdown(table: pd.DataFrame) -> str:
    """The worst ratio to nominal per (comparison, seeds, rule, m) over the seed shares, and the mean detectable
    difference: the before/after table of docs/STATISTICS.md."""
    g = table.groupby(["comparison", "n_seeds", "rule", "m"], sort=False).agg(
        worst_ratio=("ratio", "max"), mean_ratio=("ratio", "mean"), detectable=("detectable_in_sd", "mean"))
    lines = ["| comparison | seeds | rule | m | worst ratio to nominal | mean ratio | detectable (SDs) |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {t} | {s} | {r} | {m} | {row.worst_ratio:.2f} | {row.mean_ratio:.2f} | {row.detectable:.2f} |"
              for (t, s, r, m), row in g.iterrows()]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=8000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench/results/bench_type_one_error.json"))
    args = parser.parse_args()
    start = time.perf_counter()
    table = error_table(designs(), args.reps, seed=args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {"settings": {"reps": args.reps, "seed": args.seed, "alpha": 0.05, "adopted": ADOPTED,
                           "machine": platform.processor() or platform.machine(),
                           "seconds": round(time.perf_counter() - start, 1)},
              "rows": table.round(5).to_dict(orient="records")}
    args.out.write_text(json.dumps(record, indent=1))
    detail = table.assign(type_one_error=table.type_one_error.round(5), ratio=table.ratio.round(2),
                          detectable_in_sd=table.detectable_in_sd.round(2))
    args.out.with_suffix(".md").write_text(summary_markdown(table) + "\n\n" + detail.drop(
        columns=["nominal", "rate_se", "reps", "recall"]).to_markdown(index=False) + "\n")
    print(summary_markdown(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
