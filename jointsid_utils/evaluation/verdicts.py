"""Verdicts on the declared findings F1-F8, computed from their paired tests, never written by hand.

Each finding is a Holm family (Holm 1979) per rec protocol: the comparisons it declares
(``declared_comparisons``), over both tasks, tested by ``statistics.family_tests`` (seed and item-clustered
case variance, seed-bounded df), with rec read under "all" (the paper's protocol, family ``F1``) and again
under "exclude_history" (family ``F1, excl. history``; search is read under "all" in both, so both families
have the same m). A comparison a vs b expects a above b; ``weight`` w tests a - w x b > 0 (F4's "fixed reaches
0.8 x RQ-KMeans", the non-inferiority margins).

A finding is decided per task (F5 and F8 over both tasks at once) from its *candidates*: one for F1-F4 (every
comparison is needed), one per scheme for the existential findings F5-F8 ("a joint construction ...", "the
best generator ..."; all candidates sit in one family, so picking the best is paid for in Holm's m, not
chosen on test). Per comparison: ``better`` = significant after Holm in the declared direction, ``worse`` =
significant against it (two-sided families after Holm; one-sided families: the one-sided upper bound at
alpha / m below 0).

* ``reproduces``: some candidate has every comparison ``better`` (F5: ``better`` on one task and
  non-inferior on the other; F8: non-inferior on both);
* ``contradicted``: every candidate has a comparison ``worse``;
* ``inconclusive`` otherwise, reported with the detectable difference (80% power at alpha / m).

F5 and F8 are one-sided (``ONE_SIDED``): their p, Holm p and detectable difference are those of one-sided
tests, and the pairs files say so (``sided``). Non-inferiority: a construction is not below a reference on a
task when a - (1 - margin) x b is significantly above 0, with a relative margin declared before the run
(``evaluation.noninferiority_margin`` for F8 against the single-task IDs, ``evaluation.pareto_margin`` for
F5 against multitask x RQ-KMeans). A margin is fixed, not the design's detectable difference: a margin that
grew with the noise would let a weak design "show" non-inferiority. F5's candidates are the constructions
beyond the paper (notebook 07); the paper's joint schemes are F2's.
The row reports the deciding candidate's weakest comparison (its smallest t in the declared direction).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from jointsid_utils.config import EvaluationConfig
from jointsid_utils.evaluation.statistics import _t_quantile, family_tests, label
from jointsid_utils.study import BASE_QUANTIZER, INCUMBENT as INCUMBENT_SCHEME, JOINT, SINGLE_TASK

VERDICT_COLUMNS = ["finding", "family", "task", "rec_protocol", "verdict", "diff", "detectable", "comparison",
                   "p_holm", "sided", "m", "candidate", "rule"]
REC_PROTOCOLS = ("all", "exclude_history")
ONE_SIDED = ("F5", "F8")
_KM = BASE_QUANTIZER
INCUMBENT = label(*INCUMBENT_SCHEME)
BM25 = ("bm25_tuned", "bm25")  # the tuned BM25 where the run has it
DENSE_SEARCH = "dense_search"
SASREC = ("sasrec_tuned", "sasrec")
DENSE_REC = ("dense_rec", "dense_fused_concat")  # dense retrieval over the rec and the fused vectors
RULES = {
    "F1": "task-specific IDs above content and the other task's IDs on their own task (all comparisons)",
    "F2": "multitask above separate, prefix-share, fused concat and fused SVD (all comparisons)",
    "F3": "RQ-KMeans above RQ-VAE, ResidualLFQ and dictionary learning on multitask (all comparisons)",
    "F4": "RQ-VAE fixed above RQ-VAE and above 0.8 x RQ-KMeans (all comparisons)",
    "F5": "some construction beyond the paper above multitask x RQ-KMeans on one task and above (1 - margin) x "
          "its recall on the other, one-sided",
    "F6": "some generator above tuned BM25 on known-item queries",
    "F7": "some joint generator above every specialised system of the task (BM25 / dense; SASRec / dense rec)",
    "F8": "some joint construction non-inferior to search-tuned (search) and rec-tuned (rec) IDs: above "
          "(1 - margin) x theirs, one-sided",
}


def _baseline(present: set[str], names: Iterable[str]) -> str | None:
    return next((label("baseline", n) for n in names if label("baseline", n) in present), None)


def family_name(finding: str, protocol: str) -> str:
    """A finding's family under a rec protocol: ``F1`` (rec on "all") or ``F1, excl. history``."""
    return finding if protocol == "all" else f"{finding}, excl. history"


def declared_comparisons(present: Iterable[str], joint: Sequence[str] = (), *, margin: float,
                         pareto_margin: float) -> list[tuple]:
    """(finding, task, a, b, weight, candidate, test) of F1-F8 among the ``present`` schemes
    (``embedding/quantizer``; baselines as ``baseline/<method>``); ``joint``: the constructions beyond the paper
    that were trained; ``test``: "superiority" or "noninferiority"."""
    have = set(present)
    km = {e: label(e, _KM) for e in ("content", "search", "rec", "multitask")}
    rows: list[tuple] = []
    for task, own, others in (("search", "search", ("content", "rec")), ("rec", "rec", ("content", "search"))):
        rows += [("F1", task, km[own], km[o], 1.0, "", "superiority") for o in others]
    for task in ("search", "rec"):
        rows += [("F2", task, INCUMBENT, label(e, _KM), 1.0, "", "superiority") for e in JOINT if e != "multitask"]
        rows += [("F3", task, INCUMBENT, label("multitask", q), 1.0, "", "superiority")
                 for q in ("rq_vae", "residual_lfq", "dict_learning")]
        rows += [("F4", task, label("multitask", "rq_vae_fixed"), label("multitask", "rq_vae"), 1.0, "", "superiority"),
                 ("F4", task, label("multitask", "rq_vae_fixed"), INCUMBENT, 0.8, "", "superiority")]
    for c in joint:  # F5: better on a task, non-inferior on the other; every row in one family
        rows += [("F5", t, c, INCUMBENT, w, c, test) for t in ("search", "rec")
                 for w, test in ((1.0, "superiority"), (1.0 - pareto_margin, "noninferiority"))]
    constructions = [label(e, _KM) for e in JOINT if e != "multitask"] + list(joint)
    generators = sorted(s for s in have if not s.startswith("baseline/"))
    bm25 = _baseline(have, BM25)
    if bm25:
        rows += [("F6", "search", g, bm25, 1.0, g, "superiority") for g in generators]
    specialised = {"search": [b for b in (bm25, _baseline(have, [DENSE_SEARCH])) if b],
                   "rec": [b for b in [_baseline(have, SASREC), *(_baseline(have, [d]) for d in DENSE_REC)] if b]}
    for task, systems in specialised.items():
        rows += [("F7", task, c, b, 1.0, c, "superiority") for c in [INCUMBENT, *constructions] for b in systems]
    rows += [("F8", t, c, label(*SINGLE_TASK[t]), 1.0 - margin, c, "noninferiority")
             for c in [INCUMBENT, *constructions] for t in ("search", "rec")]
    return [r for r in rows if r[2] in have and r[3] in have]


def finding_pairs(hits: pd.DataFrame, *, evaluation: EvaluationConfig, known_item_cases: Sequence[str] | None = None,
                  joint: Sequence[str] = ()) -> dict[str, pd.DataFrame]:
    """Per finding, its families' tests (``statistics.family_tests`` rows plus ``finding``, ``candidate`` and
    ``rec_protocol``): one Holm family per rec protocol, "all" and "exclude_history" (the latter only when the
    finding has rec comparisons with hits under it); F5 and F8 one-sided; F6 on ``known_item_cases`` only (no
    row without them). Findings without any comparison among the run's schemes are absent. ``evaluation``: the
    run's alpha, power, level, decoding and margins."""
    ev = evaluation
    present = {label(e, q) for e, q in hits[["embedding", "quantizer"]].drop_duplicates().itertuples(index=False)}
    declared = declared_comparisons(present, joint, margin=ev.noninferiority_margin, pareto_margin=ev.pareto_margin)
    out = {}
    for finding in dict.fromkeys(r[0] for r in declared):
        comps = [(r[5] or finding, r[1], r[2], r[3], r[4], r[6]) for r in declared if r[0] == finding]
        cases = None
        if finding == "F6":
            if not known_item_cases:
                continue
            cases = list(known_item_cases)
        families = []
        for protocol in REC_PROTOCOLS:
            tests = family_tests(hits, comps, family_name(finding, protocol), protocol=protocol, decoding=ev.decoding,
                                 cases=cases, alpha=ev.alpha, power=ev.power, level=ev.level,
                                 sided="one" if finding in ONE_SIDED else "two")
            if len(tests) and (protocol == "all" or (tests.task == "rec").any()):
                families.append(tests.assign(rec_protocol=protocol))
        if families:
            tests = pd.concat(families, ignore_index=True)
            out[finding] = tests.rename(columns={"label": "candidate"}).assign(finding=finding)
    return out


def _status(pairs: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Per comparison: ``better`` / ``worse``. Two-sided families: significant after Holm in / against the declared
    direction. One-sided families: ``better`` = one-sided Holm p below alpha; ``worse`` = the one-sided upper
    bound at alpha / m below 0 (significantly below the margin, or below b for a superiority row)."""
    f = pairs.copy()
    one = f.sided.eq("one") if "sided" in f else pd.Series(False, index=f.index)
    upper = np.array([d + _t_quantile(1 - alpha / m, df) * se for d, se, df, m in zip(f["diff"], f.se, f.df, f.m)])
    f["worse"] = np.where(one, upper < 0, (f.p_holm < alpha) & (f["diff"] < 0))
    f["better"] = (f.p_holm < alpha) & (f["diff"] > 0)
    f["t"] = np.where(f.se > 0, f["diff"] / f.se.where(f.se > 0, 1.0), np.sign(f["diff"]) * np.inf)
    return f


def _test_kind(g: pd.DataFrame) -> pd.Series:
    return g["test"] if "test" in g else pd.Series("superiority", index=g.index)


def _candidate_verdict(g: pd.DataFrame, finding: str) -> tuple[str, pd.DataFrame]:
    """(verdict, the rows that decide it) of one candidate. F5: better on one task and non-inferior on the
    other; it cannot hold when a non-inferiority row is ``worse`` (Pareto-better implies non-inferior on both)."""
    if finding != "F5":
        ok, worse = bool(g.better.all()), bool(g.worse.any())
        return ("reproduces" if ok else "contradicted" if worse else "inconclusive"), g
    kind = _test_kind(g)
    sup, ni = g[kind == "superiority"], g[kind == "noninferiority"]
    for task in ("search", "rec"):
        won, held = sup[(sup.task == task) & sup.better], ni[(ni.task != task) & ni.better]
        if len(won) and len(held) and ni.task.nunique() == 2:
            return "reproduces", pd.concat([won, held])
    return ("contradicted" if ni.worse.any() else "inconclusive"), g


def _candidate_worse(g: pd.DataFrame, finding: str) -> bool:
    return bool(g[_test_kind(g) == "noninferiority"].worse.any() if finding == "F5" else g.worse.any())


def _decide(f: pd.DataFrame, finding: str) -> dict:
    """One verdict from one task's (or both tasks') comparisons of a finding, over its candidates."""
    order = {"reproduces": 0, "inconclusive": 1, "contradicted": 2}
    best = None
    for candidate, g in f.groupby("candidate", sort=False):
        verdict, deciding = _candidate_verdict(g, finding)
        weakest = deciding.loc[deciding.t.idxmin()]
        key = (order[verdict], -float(weakest.t))
        if best is None or key < best[0]:
            best = (key, verdict, weakest)
    _, verdict, w = best
    several = f.candidate.nunique() > 1
    all_worse = all(_candidate_worse(g, finding) for _, g in f.groupby("candidate", sort=False))
    if several and verdict != "reproduces" and all_worse:
        verdict = "contradicted"
    elif several and verdict == "contradicted":
        verdict = "inconclusive"
    weight = f" x {w.weight:g}" if w.weight != 1 else ""
    return {"verdict": verdict, "diff": float(w["diff"]), "detectable": float(w.detectable),
            "comparison": f"{w.a} vs{weight} {w.b} ({w.task})", "p_holm": float(w.p_holm),
            "sided": w.get("sided", "two"), "m": int(w.m), "candidate": w.candidate if several else ""}


def verdicts(pairs: dict[str, pd.DataFrame] | pd.DataFrame, *, alpha: float) -> pd.DataFrame:
    """``results/verdicts.csv``: one row per (finding, rec protocol, task) of the findings that were run (F5 and
    F8: task "both"; under "exclude_history" only the rows that read rec), with ``verdict`` in reproduces /
    contradicted / inconclusive, the deciding comparison's ``diff``, ``detectable`` (80% power at alpha / m),
    Holm p (``sided``: one- or two-sided) and the rule; ``pairs`` is ``finding_pairs``' output."""
    frames = pairs.values() if isinstance(pairs, dict) else [g for _, g in pairs.groupby("finding", sort=False)]
    rows = []
    for frame in frames:
        if frame.empty:
            continue
        finding = str(frame.finding.iloc[0])
        frame = frame if "rec_protocol" in frame else frame.assign(rec_protocol="all")
        for protocol, f in frame.groupby("rec_protocol", sort=False):
            f = _status(f, alpha)
            groups = [("both", f)] if finding in ONE_SIDED else list(f.groupby("task", sort=False))
            for task, g in groups:
                if protocol != "all" and task == "search":
                    continue  # search reads "all" in every family: its verdict is the "all" family's
                rows.append({"finding": finding, "family": family_name(finding, protocol), "task": task,
                             "rec_protocol": protocol, **_decide(g, finding), "rule": RULES[finding]})
    return pd.DataFrame(rows, columns=VERDICT_COLUMNS)


def pairs_file(tests: pd.DataFrame) -> pd.DataFrame:
    """A finding's tests in the columns of ``results/pairs_<finding>.csv``: a, b, task, diff, ci_low, ci_high,
    p_value, p_holm, detectable (p and detectable of the ``sided`` test), sided, rec_protocol, then the rest."""
    first = ["a", "b", "task", "diff", "ci_low", "ci_high", "p_value", "p_holm", "detectable", "sided",
             "rec_protocol"]
    first = [c for c in first if c in tests]
    return tests[first + [c for c in tests.columns if c not in first]]
