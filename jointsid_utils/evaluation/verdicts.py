"""Verdicts on the declared findings F1-F8, computed from their paired tests, never written by hand.

Each finding is its own Holm family (Holm 1979): the comparisons it declares (``declared_comparisons``), over
both tasks, tested by ``statistics.family_tests`` (seed and item-clustered case variance, Satterthwaite df). A
comparison a vs b expects a above b; ``weight`` w tests a - w x b > 0 (F4's "fixed reaches 0.8 x RQ-KMeans").

A finding is decided per task (F5 and F8 over both tasks at once) from its *candidates*: one for F1-F4 (every
comparison is needed), one per scheme for the existential findings F5-F8 ("a joint construction ...", "the
best generator ..."; all candidates sit in one family, so picking the best is paid for in Holm's m, not
chosen on test). Per comparison: ``better`` = significant after Holm in the declared direction, ``worse`` =
significant after Holm against it.

* ``reproduces``: some candidate has every comparison ``better`` (F5: one task ``better``, the other not
  ``worse``; F8: every comparison non-inferior, see below);
* ``contradicted``: every candidate has a comparison ``worse``;
* ``inconclusive`` otherwise, reported with the detectable difference (80% power at alpha / m).

F8's non-inferiority: a joint construction is not below the best single-task IDs on a task when joint - (1 -
margin) x best is significantly above 0 (one-sided, alpha / m), with a relative margin declared before the run
(``evaluation.noninferiority_margin``). The margin is fixed, not the design's detectable difference: a margin
that grew with the noise would let a weak design "show" non-inferiority.
The row reports the deciding candidate's weakest comparison (its smallest t in the declared direction).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from jointsid_utils.evaluation.statistics import EVAL, JOINT, _t_quantile, family_tests, label

VERDICT_COLUMNS = ["finding", "family", "task", "verdict", "diff", "detectable", "comparison", "p_holm", "m",
                   "candidate", "rule"]
_KM = "rq_kmeans"
INCUMBENT = label("multitask", _KM)
BM25 = ("bm25_tuned", "bm25")  # the tuned BM25 where the run has it
DENSE_SEARCH = "dense_search"
SASREC = ("sasrec_tuned", "sasrec")
RULES = {
    "F1": "task-specific IDs above content and the other task's IDs on their own task (all comparisons)",
    "F2": "multitask above separate, prefix-share, fused concat and fused SVD (all comparisons)",
    "F3": "RQ-KMeans above RQ-VAE, ResidualLFQ and dictionary learning on multitask (all comparisons)",
    "F4": "RQ-VAE fixed above RQ-VAE and above 0.8 x RQ-KMeans (all comparisons)",
    "F5": "some joint construction above multitask x RQ-KMeans on one task, not below on the other",
    "F6": "some generator above tuned BM25 on known-item queries",
    "F7": "some joint generator above every specialised system of the task (BM25 / dense; SASRec)",
    "F8": "some joint construction non-inferior to search-tuned (search) and rec-tuned (rec) IDs: above "
          "(1 - margin) x theirs, one-sided",
}


def _baseline(present: set[str], names: Iterable[str]) -> str | None:
    return next((label("baseline", n) for n in names if label("baseline", n) in present), None)


def declared_comparisons(present: Iterable[str], joint: Sequence[str] = (),
                         margin: float = EVAL.noninferiority_margin) -> list[tuple]:
    """(finding, task, a, b, weight, candidate) of F1-F8 among the ``present`` schemes (``embedding/quantizer``;
    baselines as ``baseline/<method>``); ``joint``: the constructions beyond the paper that were trained."""
    have = set(present)
    km = {e: label(e, _KM) for e in ("content", "search", "rec", "multitask")}
    rows: list[tuple] = []
    for task, own, others in (("search", "search", ("content", "rec")), ("rec", "rec", ("content", "search"))):
        rows += [("F1", task, km[own], km[o], 1.0, "") for o in others]
    for task in ("search", "rec"):
        rows += [("F2", task, INCUMBENT, label(e, _KM), 1.0, "") for e in JOINT if e != "multitask"]
        rows += [("F3", task, INCUMBENT, label("multitask", q), 1.0, "") for q in ("rq_vae", "residual_lfq",
                                                                                   "dict_learning")]
        rows += [("F4", task, label("multitask", "rq_vae_fixed"), label("multitask", "rq_vae"), 1.0, ""),
                 ("F4", task, label("multitask", "rq_vae_fixed"), INCUMBENT, 0.8, "")]
    constructions = [label(e, _KM) for e in JOINT if e != "multitask"] + list(joint)
    rows += [("F5", t, c, INCUMBENT, 1.0, c) for c in constructions for t in ("search", "rec")]
    generators = sorted(s for s in have if not s.startswith("baseline/"))
    bm25 = _baseline(have, BM25)
    if bm25:
        rows += [("F6", "search", g, bm25, 1.0, g) for g in generators]
    specialised = {"search": [b for b in (bm25, _baseline(have, [DENSE_SEARCH])) if b],
                   "rec": [b for b in [_baseline(have, SASREC)] if b]}
    for task, systems in specialised.items():
        rows += [("F7", task, c, b, 1.0, c) for c in [INCUMBENT, *constructions] for b in systems]
    rows += [("F8", t, c, km[t], 1.0 - margin, c) for c in [INCUMBENT, *constructions] for t in ("search", "rec")]
    return [r for r in rows if r[2] in have and r[3] in have]


def finding_pairs(hits: pd.DataFrame, *, known_item_cases: Sequence[str] | None = None, joint: Sequence[str] = (),
                  alpha: float = EVAL.alpha, power: float = EVAL.power, decoding: str = EVAL.decoding,
                  margin: float = EVAL.noninferiority_margin) -> dict[str, pd.DataFrame]:
    """Per finding, its family's paired tests (``statistics.family_tests`` rows plus ``finding`` and
    ``candidate``), Holm within the finding; F6 on ``known_item_cases`` only (no row without them). Rec on
    protocol "all". Findings without any comparison among the run's schemes are absent."""
    present = {label(e, q) for e, q in hits[["embedding", "quantizer"]].drop_duplicates().itertuples(index=False)}
    declared = declared_comparisons(present, joint, margin)
    out = {}
    for finding in dict.fromkeys(r[0] for r in declared):
        comps = [(f"{r[5]}" or finding, r[1], r[2], r[3], r[4]) for r in declared if r[0] == finding]
        cases = None
        if finding == "F6":
            if not known_item_cases:
                continue
            cases = list(known_item_cases)
        tests = family_tests(hits, comps, finding, cases=cases, alpha=alpha, power=power, decoding=decoding)
        if len(tests):
            out[finding] = tests.rename(columns={"label": "candidate"}).assign(finding=finding)
    return out


def _status(pairs: pd.DataFrame, alpha: float, noninferior: bool) -> pd.DataFrame:
    """Per comparison: ``better`` / ``worse`` (significant after Holm in / against the declared direction) and,
    for a non-inferiority finding, ``better`` = the one-sided (1 - alpha / m) lower bound of a - w x b above 0."""
    f = pairs.copy()
    f["worse"] = (f.p_holm < alpha) & (f["diff"] < 0)
    if noninferior:
        lower = [d - _t_quantile(1 - alpha / m, df) * se for d, se, df, m in zip(f["diff"], f.se, f.df, f.m)]
        f["better"] = np.asarray(lower) > 0
    else:
        f["better"] = (f.p_holm < alpha) & (f["diff"] > 0)
    f["t"] = np.where(f.se > 0, f["diff"] / f.se.where(f.se > 0, 1.0), np.sign(f["diff"]) * np.inf)
    return f


def _candidate_verdict(g: pd.DataFrame, finding: str) -> str:
    if finding == "F5":
        ok = g.better.any() and not g.worse.any()
    else:
        ok = bool(g.better.all())
    return "reproduces" if ok else "contradicted" if g.worse.any() else "inconclusive"


def _decide(f: pd.DataFrame, finding: str) -> dict:
    """One verdict from one task's (or both tasks') comparisons of a finding, over its candidates."""
    order = {"reproduces": 0, "inconclusive": 1, "contradicted": 2}
    best = None
    for candidate, g in f.groupby("candidate", sort=False):
        verdict = _candidate_verdict(g, finding)
        weakest = g.loc[g.t.idxmin()]
        key = (order[verdict], -float(weakest.t))
        if best is None or key < best[0]:
            best = (key, verdict, weakest)
    _, verdict, w = best
    if f.candidate.nunique() > 1 and verdict != "reproduces" and (f.groupby("candidate").worse.any()).all():
        verdict = "contradicted"
    elif f.candidate.nunique() > 1 and verdict == "contradicted":
        verdict = "inconclusive"
    weight = f" x {w.weight:g}" if w.weight != 1 else ""
    return {"verdict": verdict, "diff": float(w["diff"]), "detectable": float(w.detectable),
            "comparison": f"{w.a} vs{weight} {w.b} ({w.task})", "p_holm": float(w.p_holm), "m": int(w.m),
            "candidate": w.candidate if f.candidate.nunique() > 1 else ""}


def verdicts(pairs: dict[str, pd.DataFrame] | pd.DataFrame, *, alpha: float = EVAL.alpha) -> pd.DataFrame:
    """``results/verdicts.csv``: one row per (finding, task) of the findings that were run (F5 and F8: task
    "both"), with ``verdict`` in reproduces / contradicted / inconclusive, the deciding comparison's ``diff``,
    ``detectable`` (80% power at alpha / m), Holm p and the rule; ``pairs`` is ``finding_pairs``' output."""
    frames = pairs.values() if isinstance(pairs, dict) else [g for _, g in pairs.groupby("finding", sort=False)]
    rows = []
    for f in frames:
        if f.empty:
            continue
        finding = str(f.finding.iloc[0])
        f = _status(f, alpha, noninferior=finding == "F8")
        groups = [("both", f)] if finding in ("F5", "F8") else list(f.groupby("task", sort=False))
        for task, g in groups:
            rows.append({"finding": finding, "family": finding, "task": task, **_decide(g, finding),
                         "rule": RULES[finding]})
    return pd.DataFrame(rows, columns=VERDICT_COLUMNS)


def pairs_file(tests: pd.DataFrame) -> pd.DataFrame:
    """A family's tests in the columns of ``results/pairs_<family>.csv``: a, b, task, diff, ci_low, ci_high,
    p_value, p_holm, detectable, then the rest."""
    first = ["a", "b", "task", "diff", "ci_low", "ci_high", "p_value", "p_holm", "detectable"]
    return tests[first + [c for c in tests.columns if c not in first]]
