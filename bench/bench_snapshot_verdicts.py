"""The verdicts of a committed snapshot (``docs/results/``) under the current rules, from its pairs rows alone.

    python bench/bench_snapshot_verdicts.py [--results docs/results] [--out bench/results/bench_snapshot_verdicts.json]

A snapshot holds per pair the difference, its SE, the df of the rule it was run with (Welch-Satterthwaite) and
the recalls, not the per-(seed, case) hits, so only part of the current rules can be applied exactly:

* exact: one-sided p, Holm p and detectable difference for F8 at the snapshot's SE and df;
* approximate: the current df (``variance.degrees_of_freedom``, rule "seed_bound"), from the seed and case
  terms recovered by inverting the Satterthwaite df of the row (se^2 = v_seed + v_case,
  se^4 / df = v_seed^2 / (S - 1) + v_case^2 / (G - 1); the interaction, small at these sizes, is ignored);
* approximate: F5 redeclared, whose non-inferiority rows a - 0.95 b reuse the SE of a - b (not in the
  snapshot);
* not possible: the unpaired SASRec test of F7 and the "exclude_history" families, which need hits.

Writes the recomputed verdicts (JSON and a markdown table beside it) that docs/STATISTICS.md quotes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import chi2
from scipy.stats import t as student

from jointsid_utils.config import EvaluationConfig
from jointsid_utils.evaluation import verdicts as vd
from jointsid_utils.evaluation.statistics import holm, minimum_detectable_difference
from jointsid_utils.variance import SEED_BOUND, satterthwaite

BEYOND = ("shared_then_task/rq_kmeans", "balanced_unique/rq_kmeans", "multitask_cf/rq_kmeans",
          "aligned_rq_vae/aligned_rq_vae")


def seed_bound_df(se: float, df: float, n_seeds: int, n_items: int, bound: float = SEED_BOUND) -> float:
    """The current rule's df from a row's SE and Satterthwaite df: recover (v_seed, v_case), the larger root
    (the seed term the df speak of), then bound the seed term and recompute."""
    v, s1, g1 = se ** 2, n_seeds - 1, n_items - 1
    a, b, c = 1 / s1 + 1 / g1, -2 * v / g1, v * v / g1 - v * v / df
    disc = b * b - 4 * a * c
    seed = (-b + np.sqrt(max(disc, 0.0))) / (2 * a)
    seed = float(np.clip(seed, 0.0, v))
    bounded = seed * s1 / chi2.ppf(bound, s1)
    return satterthwaite([(bounded, s1), (v - seed, g1)])


def rescore(rows: pd.DataFrame, *, sided: str, new_df: bool, ev: EvaluationConfig) -> pd.DataFrame:
    """Rows with p, Holm p, significance and detectable difference of the ``sided`` test at the snapshot's df
    or the current rule's (``new_df``)."""
    f = rows.copy()
    if new_df:
        f["df"] = [seed_bound_df(se, df, s, g) for se, df, s, g in zip(f.se, f.df, f.n_seeds, f.n_items)]
    stat = f["diff"] / f.se
    f["p_value"] = student.sf(stat, f.df) if sided == "one" else 2 * student.sf(np.abs(stat), f.df)
    f["p_holm"] = holm(f.p_value)
    f["significant"] = f.p_holm < ev.alpha
    f["m"] = len(f)
    f["sided"] = sided
    f["detectable"] = [minimum_detectable_difference(se, alpha=ev.alpha / len(f), power=ev.power, df=df, sided=sided)
                       for se, df in zip(f.se, f.df)]
    return f.assign(rec_protocol="all")


def f5_rows(pairs_f5: pd.DataFrame, margin: float) -> pd.DataFrame:
    """F5 redeclared from the snapshot's F5 rows: superiority rows of the constructions beyond the paper, and
    non-inferiority rows a - (1 - margin) x b with the SE of a - b (the approximation)."""
    sup = pairs_f5[pairs_f5.a.isin(BEYOND)].assign(test="superiority")
    ni = sup.assign(test="noninferiority", weight=1 - margin, **{"diff": sup.recall_a - (1 - margin) * sup.recall_b})
    return pd.concat([sup, ni], ignore_index=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("docs/results"))
    parser.add_argument("--out", type=Path, default=Path("bench/results/bench_snapshot_verdicts.json"))
    args = parser.parse_args()
    ev = EvaluationConfig()
    pairs = {f: pd.read_csv(args.results / f"pairs_{f}.csv") for f in [f"F{i}" for i in range(1, 9)]
             if (args.results / f"pairs_{f}.csv").exists()}
    pairs["F5"] = f5_rows(pairs["F5"], ev.pareto_margin)
    tables, details = [], {}
    for model, new_df in (("snapshot df, current rules", False), ("current df (approximate), current rules", True)):
        scored = {}
        for finding, rows in pairs.items():
            if finding == "F7":
                rows = rows[~rows.b.str.startswith("baseline/sasrec")]  # SASRec needs the unpaired test: hits
            scored[finding] = rescore(rows, sided="one" if finding in vd.ONE_SIDED else "two", new_df=new_df, ev=ev)
        table = vd.verdicts(scored, alpha=ev.alpha).assign(model=model)
        tables.append(table)
        details[model] = {f: s[["a", "b", "task", "weight", "diff", "se", "df", "p_value", "p_holm", "detectable",
                                "sided", "m"] + (["test"] if "test" in s else [])].round(5).to_dict(orient="records")
                          for f, s in scored.items() if f in ("F5", "F8")}
    old = pd.read_csv(args.results / "verdicts.csv").assign(model="snapshot as committed")
    out = pd.concat([old, *tables], ignore_index=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"results": str(args.results), "verdicts": out.round(5).to_dict(orient="records"),
                                    "pairs": details}, indent=1, default=str))
    shown = out.assign(**{"diff": out["diff"].round(4), "detectable": out.detectable.round(4),
                          "p_holm": out.p_holm.map(lambda p: f"{p:.3g}")})
    wide = shown.pivot_table(index=["finding", "task"], columns="model", values="verdict", aggfunc="first")
    columns = ["model", "finding", "task", "verdict", "comparison", "diff", "detectable", "p_holm", "sided", "m"]
    text = wide.to_markdown() + "\n\n" + shown[columns].to_markdown(index=False) + "\n"
    args.out.with_suffix(".md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
