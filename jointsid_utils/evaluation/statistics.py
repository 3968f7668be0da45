"""Recall@k (``evaluation.k``, the paper's 30) over training seeds *and* test cases: the variance model,
intervals, paired tests, Holm, power.

The unit of evidence is a (seed, case) hit: 1 when the case's target is in the top k of the list that the
generator trained with that seed returned. Every seed scores the same test cases (``generator_test_cases``),
so one scheme's hits are a seeds x cases table. Search cases fall on items (several test queries per item),
rec cases on users (one case per user).

**Variance model** (``variance_parts``). The mean over seeds and cases has two sources of error, estimated
from two margins of the table and added:

* seeds: ``s2_seed / S``, from the S per-seed means (of the scheme, or of the paired difference), with
  S - 1 degrees of freedom. Every seed scores the same cases, so the case sampling is common to all seed
  means and cancels in their spread: this term holds training noise only, and a t with S - 1 df keeps
  three seeds honest (t_2 = 4.30, not 1.96).
* cases: ``SE2_cases`` of the seed-averaged per-case values, clustered by the case's target item for
  search (the cluster-robust "sandwich" variance, Liang and Zeger 1986, the analytic counterpart of
  resampling items rather than cases) with G - 1 df for G items; for rec every case is its own cluster.
  Seed-averaging removes the seed effect from this term.
* The two are added into one standard error, read with a t whose df are Welch-Satterthwaite's
  (Satterthwaite 1946) with the seed term at its one-sided 98% upper confidence bound
  (``variance.degrees_of_freedom``): plain Satterthwaite df, the rule before, move with the 2-df seed
  estimate at three seeds and put the type I error at a Holm level at several times nominal
  (docs/STATISTICS.md, measured by ``evaluation.type_one_error``). Intervals are t intervals and p-values
  analytic, with no resampling floor.

Double counting: the seed-by-case interaction (a case that one seed finds and another misses) enters both
margins, as sigma2_e / (n S) each, where it belongs once. It is subtracted once, with the residual mean
square MS_e of the two-way table (the crossed random-effects ANOVA estimate of Var(mean) =
(MS_seed + MS_case - MS_e) / (n S), with the case term item-clustered). Without the subtraction an
interval over three seeds is about twice too wide when the seeds disagree case by case; the coverage test in
tests/unit/test_statistics.py and the type I error tests (tests/unit/test_type_one_error.py,
tests/integration/test_verdict_simulations.py) measure the result.

**Unpaired comparisons** (``unpaired_test``): a baseline trained with its own seeds (SASRec) shares the
cases with the generator but none of its training, so seed s of one is not paired with seed s of the other:
the difference of means gets both seed terms plus the case term of the per-case difference of seed averages
(less both interactions), with the smaller side's S - 1 df. A single-run baseline (BM25, dense retrieval) has
no seed term and is paired case by case with every seed of the generator.

* **Families** (``family_tests``): Holm-Bonferroni (Holm 1979) inside each family, on two-sided p or, for a
  family whose findings are one-sided (``sided="one"``: non-inferiority, Pareto-better), on one-sided p.
* **Detectable difference** (``minimum_detectable_difference``): (t_{df, 1 - a/2} + t_{df, power}) x SE at
  the model's df, with a = alpha / m for a family of m comparisons (Holm's first, strictest step:
  conservative for the later steps); one-sided families use t_{df, 1 - a}.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from jointsid_utils.config import EvaluationConfig
from jointsid_utils.errors import StudyInputError
from jointsid_utils.metrics import per_case_recall, recall_column, with_run_columns
from jointsid_utils.study import BASE_QUANTIZER, INCUMBENT, JOINT
from jointsid_utils.variance import (_t_quantile, _t_two_sided_p, _t_upper_p, interval, unpaired_parts,
                                     variance_parts)

HIT_COLUMNS = ["embedding", "quantizer", "task", "protocol", "decoding", "seed", "case_id", "query_id", "target",
               "hit", "list_length"]
_KM = BASE_QUANTIZER


def label(embedding: str, quantizer: str) -> str:
    """A scheme's name in the test tables: ``embedding/quantizer``."""
    return f"{embedding}/{quantizer}"


SIDES = ("two", "one")


def _test_row(v: dict, *, level: float, sided: str, n_units: int) -> dict[str, float]:
    """A test's row from a variance model's mean, SE and df: the two-sided t interval at ``level`` and the p of
    the ``sided`` test ("one": H1 mean > 0), analytic, no floor."""
    if sided not in SIDES:
        raise StudyInputError(f"A test is sided 'two' or 'one' (H1: a - w b > 0), got {sided!r}.")
    mean, se, df = v["mean"], v["se"], v["df"]
    half = _t_quantile(1 - (1 - level) / 2, df) * se if se > 0 else 0.0
    if se > 0:
        p = _t_two_sided_p(mean / se, df) if sided == "two" else _t_upper_p(mean / se, df)
    else:
        p = float(mean == 0) if sided == "two" else float(mean <= 0)
    return {"diff": mean, "ci_low": mean - half, "ci_high": mean + half, "p_value": p, "se": se, "df": df,
            "cohens_d": mean / v["case_sd"] if v["case_sd"] > 0 else 0.0, "n_cases": v["n_cases"],
            "n_seeds": v["n_seeds"], "n_items": v["n_items"], "n_units": n_units}


def paired_test(a: np.ndarray, b: np.ndarray, clusters: Sequence | None = None, *, weight: float = 1.0,
                level: float, sided: str = "two") -> dict[str, float]:
    """a - weight x b on the same (seed, case) grid (``weight`` 0.8 tests a >= 0.8 b): the mean difference,
    its t interval, the analytic p (two-sided, or one-sided for H1: a - w b > 0), its SE and df, Cohen's d_z
    (mean over the sd of the seed-averaged case differences) and the design's size."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 2:
        raise StudyInputError(f"paired_test needs two (seeds, cases) arrays of one shape, got {a.shape} and {b.shape}.")
    return _test_row(variance_parts(a - weight * b, clusters), level=level, sided=sided, n_units=a.size)


def unpaired_test(a: np.ndarray, b: np.ndarray, clusters: Sequence | None = None, *, weight: float = 1.0,
                  level: float, sided: str = "two") -> dict[str, float]:
    """``paired_test``'s row for mean(a) - weight x mean(b) when a's and b's seeds are independent (each
    (seeds, cases), same cases, any numbers of seeds): ``variance.unpaired_parts``."""
    return _test_row(unpaired_parts(a, b, clusters, weight=weight), level=level, sided=sided,
                     n_units=np.asarray(a).size + np.asarray(b).size)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (Holm 1979), in the input order (step-down, monotone, capped at 1)."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    m = len(p)
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order]) if m else p
    out = np.empty(m)
    out[order] = np.minimum(1.0, stepped)
    return out


def minimum_detectable_difference(sd: float, n_units: int = 1, *, alpha: float, power: float,
                                  df: float = float("inf"), sided: str = "two") -> float:
    """Smallest true difference a test of level ``alpha`` detects with ``power``:
    (t_{df, 1-alpha/2} + t_{df, power}) * sd / sqrt(n), t_{df, 1-alpha} for a one-sided test (the normal
    quantiles when df is infinite). With a comparison's standard error call it with ``sd=se``, ``n_units=1``
    and the model's df; for a family of m comparisons pass ``alpha / m``."""
    if n_units < 1 or not 0 < alpha < 1 or not 0 < power < 1 or sided not in SIDES:
        raise StudyInputError(f"minimum_detectable_difference needs n_units >= 1, alpha and power in (0, 1) and "
                              f"sided 'two' or 'one', got {n_units}, {alpha}, {power}, {sided!r}.")
    tail = alpha / 2 if sided == "two" else alpha
    return (_t_quantile(1 - tail, df) + _t_quantile(power, df)) * float(sd) / np.sqrt(n_units)


def case_clusters(hits: pd.DataFrame, cases: Sequence[str]) -> np.ndarray | None:
    """The clusters of ``cases`` (one scheme and task's hit rows): the target item for search, where several
    test queries share an item; None for rec, whose cases are distinct users."""
    if hits.empty or hits["task"].iloc[0] != "search":
        return None
    return hits.drop_duplicates("case_id").set_index("case_id")["target"].reindex(list(cases)).to_numpy()


# ----------------------------------------------------------------------------- frames

def hit_rows(predictions: pd.DataFrame, *, embedding: str, quantizer: str, k: int) -> pd.DataFrame:
    """One row per (task, protocol, decoding, seed, case) of a predictions frame: ``hit`` in {0, 1} (ranx) and
    ``list_length``, the distinct items among the first ``k`` (below ``k`` when diverse beam groups collide)."""
    f = with_run_columns(predictions)
    if "query_id" not in f:
        f["query_id"] = np.nan
    parts = []
    for _, g in f.groupby(["task", "protocol", "decoding", "seed"], sort=True):
        lengths = [len(set(list(r)[:k])) for r in g["ranked"]]
        parts.append(g.assign(hit=per_case_recall(g, k=k), list_length=lengths, embedding=embedding,
                              quantizer=quantizer))
    if not parts:
        return pd.DataFrame(columns=HIT_COLUMNS)
    return pd.concat(parts, ignore_index=True)[HIT_COLUMNS]


def hit_array(hits: pd.DataFrame, *, cases: Sequence[str] | None = None,
              seeds: Sequence[int] | None = None) -> tuple[np.ndarray, list[int], list[str]]:
    """(seeds x cases array, seeds, case ids) of one scheme, task, protocol and decoding; ``cases`` and
    ``seeds`` pick (and order) a subset. Every chosen seed must have scored every chosen case."""
    keys = hits[["embedding", "quantizer", "task", "protocol", "decoding"]].drop_duplicates()
    if len(keys) != 1:
        raise StudyInputError(f"hit_array needs the hits of one scheme, task, protocol and decoding, got {len(keys)}.")
    wide = hits.pivot_table(index="seed", columns="case_id", values="hit", aggfunc="mean")
    wide = wide.reindex(index=list(seeds) if seeds is not None else wide.index,
                        columns=list(cases) if cases is not None else wide.columns)
    if wide.isna().any().any() or wide.size == 0:
        k = keys.iloc[0]
        raise StudyInputError(f"{k.embedding}/{k.quantizer} ({k.task}, {k.protocol}, {k.decoding}) lacks some of "
                              f"the requested seeds or cases; score every seed on the same test cases.")
    return wide.to_numpy(), [int(s) for s in wide.index], [str(c) for c in wide.columns]


def _segments(g: pd.DataFrame, cases: list[str], head: np.ndarray | None) -> dict[str, np.ndarray]:
    """Case masks of one scheme and task: "all", and for rec with ``head`` the head and torso targets."""
    segments = {"all": np.ones(len(cases), dtype=bool)}
    if head is not None and g["task"].iloc[0] == "rec":
        target = g.drop_duplicates("case_id").set_index("case_id").target.reindex(cases).to_numpy()
        in_head = np.isin(target, head)
        segments.update(head=in_head, torso=~in_head)
    return segments


def seed_level_table(hits: pd.DataFrame, head: np.ndarray | None = None, *, level: float, k: int) -> pd.DataFrame:
    """Recall@k as the mean over seeds and cases with its interval (``interval``: seed and item-clustered
    case terms), one row per (scheme, task, protocol, decoding, segment): ``recall_at_<k>``, ``ci_low``,
    ``ci_high``, ``n_cases``, ``n_seeds``, ``interval`` ("seeds x cases", or "cases (1 seed)"). With ``head``
    (item ids), rec rows also come per segment (head, torso); ``report.scheme_table`` reads this frame."""
    rows = []
    groups = ["embedding", "quantizer", "task", "protocol", "decoding"]
    for (emb, quant, task, protocol, decoding), g in hits.groupby(groups, sort=False):
        array, seeds, cases = hit_array(g)
        clusters = case_clusters(g, cases)
        for segment, mask in _segments(g, cases, head).items():
            sub = None if clusters is None else clusters[mask]
            r, lo, hi = interval(array[:, mask], sub, level=level) if mask.any() else (np.nan,) * 3
            rows.append({"embedding": emb, "quantizer": quant, "task": task, "protocol": protocol,
                         "decoding": decoding, "segment": segment, recall_column(k): r, "ci_low": lo, "ci_high": hi,
                         "n_cases": int(mask.sum()), "n_seeds": len(seeds),
                         "interval": "seeds x cases" if len(seeds) > 1 else "cases (1 seed)"})
    return pd.DataFrame(rows)


def variance_table(hits: pd.DataFrame, *, k: int) -> pd.DataFrame:
    """``results/variance.csv``: per (scheme, task, protocol, decoding) the seed SD (of the seed means), the case SD
    (of the seed-averaged hits), the item-cluster design effect, the seed and case terms of the standard error,
    the df (``variance.degrees_of_freedom``) and the design's size, so the next run can choose between more seeds
    and more cases."""
    rows = []
    groups = ["embedding", "quantizer", "task", "protocol", "decoding"]
    for (emb, quant, task, protocol, decoding), g in hits.groupby(groups, sort=False):
        array, _, cases = hit_array(g)
        v = variance_parts(array, case_clusters(g, cases))
        rows.append({"embedding": emb, "quantizer": quant, "task": task, "protocol": protocol, "decoding": decoding,
                     recall_column(k): v.pop("mean"), **v})
    return pd.DataFrame(rows)


def joint_comparisons(task: str, joint: Iterable[str] = JOINT) -> list[tuple[str, str, str, str]]:
    """Every pair of joint schemes (RQ-KMeans) on one task, as (family, task, a, b)."""
    names = [label(e, _KM) for e in joint]
    return [(f"joint schemes, {task}", task, a, b) for i, a in enumerate(names) for b in names[i + 1:]]


def _common_seeds(ha: pd.DataFrame, hb: pd.DataFrame) -> tuple[list[int], list[int]]:
    """The seeds a and b are compared on: the shared seeds, or, when one side is a single run (a deterministic
    baseline), that run repeated against every seed of the other."""
    sa, sb = sorted(set(ha.seed)), sorted(set(hb.seed))
    if len(sb) == 1 and len(sa) > 1:
        return sa, sb * len(sa)
    if len(sa) == 1 and len(sb) > 1:
        return sa * len(sb), sb
    both = sorted(set(sa) & set(sb))
    return both, both


def independent_seeds(ha: pd.DataFrame, hb: pd.DataFrame) -> bool:
    """True when a baseline with several seeds of its own (SASRec) meets another multi-seed system: its seed s
    shares nothing with the other's seed s, so the two are compared unpaired (``unpaired_test``)."""
    several = [h.seed.nunique() > 1 for h in (ha, hb)]
    baseline = [(h.embedding == "baseline").any() for h in (ha, hb)]
    return any(several) and ((baseline[0] and several[0]) or (baseline[1] and several[1]))


def _shared_cases(ha: pd.DataFrame, hb: pd.DataFrame, cases: Sequence[str] | None) -> list[str]:
    shared = sorted(set(ha.case_id) & set(hb.case_id))
    if len(shared) != ha.case_id.nunique() or len(shared) != hb.case_id.nunique():
        raise StudyInputError("Two schemes were not scored on the same test cases; rerun notebook 05 with one "
                              "generator config.")
    return shared if cases is None else [c for c in shared if c in set(cases)]


def paired_arrays(ha: pd.DataFrame, hb: pd.DataFrame, cases: Sequence[str] | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(a, b, clusters): two schemes' seeds x cases hits on the same cases (optionally a subset) and seeds."""
    seeds_a, seeds_b = _common_seeds(ha, hb)
    if not seeds_a:
        raise StudyInputError("Two schemes share no training seed; rerun notebook 05 with one generator config.")
    shared = _shared_cases(ha, hb, cases)
    xa, _, _ = hit_array(ha, cases=shared, seeds=sorted(set(seeds_a)))
    xb, _, _ = hit_array(hb, cases=shared, seeds=sorted(set(seeds_b)))
    xa = xa[[sorted(set(seeds_a)).index(s) for s in seeds_a]]
    xb = xb[[sorted(set(seeds_b)).index(s) for s in seeds_b]]
    return xa, xb, case_clusters(ha, shared)


def unpaired_arrays(ha: pd.DataFrame, hb: pd.DataFrame, cases: Sequence[str] | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(a, b, clusters): each scheme's seeds x cases hits, every seed of each, on the same cases."""
    shared = _shared_cases(ha, hb, cases)
    return hit_array(ha, cases=shared)[0], hit_array(hb, cases=shared)[0], case_clusters(ha, shared)


def _rec_protocol_rows(hits: pd.DataFrame, protocol: str) -> pd.Series:
    """Rec rows under ``protocol``, search rows under "all" (search has no history to exclude)."""
    return pd.Series(np.where(hits.task == "rec", hits.protocol == protocol, hits.protocol == "all"), index=hits.index)


def family_tests(hits: pd.DataFrame, comparisons: Sequence[tuple], family: str, *, protocol: str = "all",
                 decoding: str, cases: Sequence[str] | None = None, alpha: float, power: float, level: float,
                 sided: str = "two") -> pd.DataFrame:
    """Tests of ``comparisons`` ((label, task, a, b[, weight[, test]]); a and b as ``embedding/quantizer``; the
    difference is a - weight x b; ``test`` names the hypothesis, "superiority" unless given), Holm-adjusted as
    one family of m on ``sided`` p; rec read under ``protocol``, search under "all". A pair is paired by seed
    and case, or unpaired when one side is a baseline with seeds of its own (``independent_seeds``); ``cases``
    restricts every test to a subset. A pair with a scheme absent from ``hits`` is left out (not counted in m).
    ``detectable``: the difference detected with ``power`` at alpha / m (Holm's strictest step) at its df."""
    # baselines decode once, under their own name, and pair with the generators' lists of ``decoding``
    hits = hits[_rec_protocol_rows(hits, protocol) & ((hits.decoding == decoding) | (hits.embedding == "baseline"))]
    by_scheme = {(label(e, q), t): g for (e, q, t), g in hits.groupby(["embedding", "quantizer", "task"], sort=False)}
    rows = []
    for name, task, a, b, *rest in comparisons:
        if (a, task) not in by_scheme or (b, task) not in by_scheme:
            continue
        weight = float(rest[0]) if rest else 1.0
        ha, hb = by_scheme[(a, task)], by_scheme[(b, task)]
        paired = not independent_seeds(ha, hb)
        xa, xb, clusters = (paired_arrays if paired else unpaired_arrays)(ha, hb, cases)
        test = (paired_test if paired else unpaired_test)(xa, xb, clusters, weight=weight, level=level, sided=sided)
        rows.append({"family": family, "label": name, "task": task, "a": a, "b": b, "weight": weight,
                     "test": rest[1] if len(rest) > 1 else "superiority", "paired": paired,
                     "recall_a": float(xa.mean()), "recall_b": float(xb.mean()), **test})
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    m = len(out)
    out.insert(out.columns.get_loc("p_value") + 1, "p_holm", holm(out.p_value))
    out.insert(out.columns.get_loc("p_holm") + 1, "significant", out.p_holm < alpha)
    out["sided"] = sided
    out["m"] = m
    out["detectable"] = [minimum_detectable_difference(se, 1, alpha=alpha / m, power=power, df=df, sided=sided)
                         for se, df in zip(out.se, out.df)]
    return out


def power_statement(tests: pd.DataFrame, *, alpha: float, power: float
                    ) -> tuple[str, dict[str, float]]:
    """A sentence for the README: per task, the difference in Recall@30 (points, x 100) that a paired comparison
    of this design detects with ``power`` at ``alpha`` and at Holm's strictest step (alpha / m, m = the tests in
    that task's families), from the median standard error and df of ``tests`` (``family_tests`` rows)."""
    if tests.empty:
        raise StudyInputError("power_statement needs at least one paired test; run family_tests first.")
    numbers, parts = {}, []
    for task, g in tests.groupby("task", sort=False):
        m = int(tests.family.isin(set(g.family)).sum())
        se, df = float(g.se.median()), float(g.df.median())
        loose = minimum_detectable_difference(se, 1, alpha=alpha, power=power, df=df)
        strict = minimum_detectable_difference(se, 1, alpha=alpha / m, power=power, df=df)
        numbers.update({f"mde_{task}": float(loose), f"mde_{task}_holm_strictest": float(strict)})
        seeds = int(g.n_seeds.min())
        parts.append(f"{task} ({int(g.n_cases.iloc[0])} cases x {seeds} seed{'s' if seeds > 1 else ''}): "
                     f"{100 * loose:.1f} points ({100 * strict:.1f} at Holm's strictest alpha {alpha:g}/{m})")
    text = ("Differences in Recall@30 under " + "; ".join(parts) + f" cannot be detected with {power:.0%} power "
            f"by a two-sided paired t test at alpha {alpha:g} (median standard error and df of the pairs: seed and "
            "item-clustered case terms, df with the seed term at its upper bound).")
    return text, numbers


def search_subsets(hits: pd.DataFrame, queries: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """(case_id -> subset labels, note): every search case is in "all" and "kind: <kind>", and in
    "known item" when no other item may match its query (``n_matching_max == 1``). Without an
    ``n_matching_max`` column the known-item subset is skipped and the note says so."""
    cases = hits[hits.task == "search"].drop_duplicates("case_id")[["case_id", "query_id"]]
    if cases.query_id.isna().any():
        raise StudyInputError("Some search predictions have no query_id; rerun notebook 05 to save it.")
    cases = cases.astype({"query_id": "int64"})
    meta = queries.set_index("query_id")
    kinds = meta["kind"].reindex(cases.query_id).to_numpy() if "kind" in meta else np.full(len(cases), None)
    rows = [(c, "all") for c in cases.case_id]
    rows += [(c, f"kind: {k}") for c, k in zip(cases.case_id, kinds) if isinstance(k, str)]
    note = ""
    if "n_matching_max" in meta:
        known = meta["n_matching_max"].reindex(cases.query_id).eq(1).fillna(False).to_numpy(bool)
        rows += [(c, "known item") for c, hit in zip(cases.case_id, known) if hit]
    else:
        note = "Known-item subset skipped: the queries have no n_matching_max column (rerun notebook 01)."
    return pd.DataFrame(rows, columns=["case_id", "subset"]), note


def subset_table(hits: pd.DataFrame, subsets: pd.DataFrame, *, level: float, k: int) -> pd.DataFrame:
    """Recall@k (or any per-case value in ``hit``; column ``recall_at_<k>``) with its interval per (scheme, subset)
    of one task, protocol and decoding per scheme (baselines are one "seed"); ``subsets`` maps case_id to subset
    labels (``search_subsets``)."""
    rows = []
    for (emb, quant), g in hits.groupby(["embedding", "quantizer"], sort=False):
        array, seeds, cases = hit_array(g)
        clusters = case_clusters(g, cases)
        position = pd.Series(np.arange(len(cases)), index=cases)
        for subset, members in subsets.groupby("subset", sort=False).case_id:
            cols = np.sort(position.reindex(members).dropna().astype(int).to_numpy())  # hit_array order
            if not len(cols):
                continue
            r, lo, hi = interval(array[:, cols], None if clusters is None else clusters[cols], level=level)
            rows.append({"embedding": emb, "quantizer": quant, "subset": subset, recall_column(k): r, "ci_low": lo,
                         "ci_high": hi, "n_cases": len(cols), "n_seeds": len(seeds)})
    return pd.DataFrame(rows)


def set_relevance_hits(predictions: pd.DataFrame, matching: pd.Series, *, embedding: str, quantizer: str,
                       k: int) -> pd.DataFrame:
    """``hit_rows``-shaped rows of the broad search cases (more than one matching item) whose ``hit`` is the
    set-relevance recall |top-k & matching| / min(k, |matching|) (``metrics.set_relevance_recall``);
    ``matching`` is ``queries.matching.matching_item_sets``."""
    from jointsid_utils.metrics import set_relevance_recall

    f = with_run_columns(predictions[predictions.task == "search"])
    sets = matching.reindex(f["query_id"].astype("int64").to_numpy()).to_numpy()
    broad = np.array([s is not None and not (isinstance(s, float)) and len(s) > 1 for s in sets])
    f, sets = f[broad], sets[broad]
    lengths = [len(set(list(r)[:k])) for r in f["ranked"]]
    out = f.assign(hit=set_relevance_recall(f["ranked"], sets, k=k), list_length=lengths, embedding=embedding,
                   quantizer=quantizer)
    return out.reindex(columns=HIT_COLUMNS).reset_index(drop=True)


def beyond_comparisons(candidates: Iterable[str], incumbent: str = label(*INCUMBENT)
                       ) -> list[tuple[str, str, str, str]]:
    """Each joint construction beyond the paper against the incumbent, on both tasks: one Holm family."""
    return [("beyond the paper", task, c, incumbent) for c in candidates for task in ("search", "rec")]


def study_pair_tests(hits: pd.DataFrame, *, candidates: Sequence[str] = (),
                     evaluation: EvaluationConfig) -> dict[str, Any]:
    """Notebook 06's descriptive families: every pair of joint schemes per task (Holm within each task) and, with
    ``candidates`` (``embedding/quantizer`` labels), each construction beyond the paper against multitask x
    RQ-KMeans (one Holm family); the power statement is that of the joint pairs. ``evaluation``: the run's
    alpha, power, level and decoding. The findings' families are ``evaluation.verdicts``'."""
    ev = evaluation
    settings = {"alpha": ev.alpha, "power": ev.power, "level": ev.level, "decoding": ev.decoding}
    joint = pd.concat([family_tests(hits, joint_comparisons(task), f"joint schemes, {task}", **settings)
                       for task in ("search", "rec")], ignore_index=True)
    beyond = family_tests(hits, beyond_comparisons(candidates), "beyond the paper", **settings) \
        if candidates else pd.DataFrame()
    text, power = power_statement(joint, alpha=ev.alpha, power=ev.power) if len(joint) \
        else ("no joint pairs trained.", {})
    counts = {"significant_joint_pairs": int(joint.significant.sum()) if len(joint) else 0,
              "significant_beyond_pairs": int(beyond.significant.sum()) if len(beyond) else 0}
    return {"joint": joint, "beyond": beyond, "power_text": text, "power": {**power, **counts}}
