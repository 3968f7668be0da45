"""Recall@30 over training seeds *and* test cases: intervals, paired tests, Holm families, power.

The unit of evidence is a (case, seed) hit: 1 when the case's target is in the top 30 of the list that
the generator trained with that seed returned. Cases are crossed with seeds (every seed scores the same
test cases, ``generator_test_cases``) and with schemes, so one table of hits per scheme, seeds x cases,
holds everything; a case repeated over three seeds is one case, not three.

* **Interval** (``bootstrap_means``): the two-way ("pigeonhole", Owen 2007) bootstrap for crossed
  factors. Each replicate draws the seeds with replacement and, independently, the cases with
  replacement, and averages the hits of every (drawn seed, drawn case) pair. One case draw serves every
  seed because a case's difficulty is shared by all seeds; drawing cases anew inside each seed would
  treat them as nested and understate the case variance. The spread carries the training noise (seed
  to seed) and the test sampling (case to case). With one seed it *is* the case bootstrap of
  ``metrics.bootstrap_ci`` (same draws, same numbers), and the tables say "1 seed".
* **Paired test** (``paired_test``): the same bootstrap on the per-(case, seed) differences of two
  schemes, drawn with the same indices for both, so the pairing is kept at both levels. p is the
  two-sided percentile-bootstrap p (twice the share of replicates on the far side of 0, +1 corrected):
  it rejects at alpha exactly when the (1 - alpha) interval excludes 0, so the table cannot disagree
  with itself. Chosen over a sign-flip test over cases because that one holds the three trained models
  fixed; this one lets them vary, which is the question ("does the scheme, not this training run, do
  better"). Its resolution is 2 / (n_boot + 1).
* **Families** (``family_tests``): Holm-Bonferroni inside each family (all pairs of joint schemes per
  task; the comparisons README's findings F1-F4 rest on).
* **Power** (``minimum_detectable_difference``, ``power_statement``): the smallest difference a paired
  comparison detects with 80% power at the design's standard error.

Limit: three seeds estimate the seed variance from three values (and the bootstrap's plug-in shrinks
it by 2/3), so intervals are approximate; the paper averaged five.
"""

from __future__ import annotations

from statistics import NormalDist
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from jointsid_utils.errors import StudyInputError
from jointsid_utils.metrics import K, per_case_recall
from jointsid_utils.reproducibility import rng

N_BOOT = 2000
LEVEL = 0.95
# The joint constructions (Table A's rows that serve both tasks from one ID set or one ID pair), RQ-KMeans.
JOINT = ("separate", "prefix_share", "fused_concat", "fused_svd", "multitask")
HIT_COLUMNS = ["embedding", "quantizer", "task", "protocol", "decoding", "seed", "case_id", "query_id", "target",
               "hit", "list_length"]
_KM = "rq_kmeans"
# (finding, task, a, b): the comparisons README's findings rest on, each once (rec: protocol "all").
FINDING_COMPARISONS: tuple[tuple[str, str, str, str], ...] = (
    *(("F1", "search", "search/rq_kmeans", f"{e}/rq_kmeans") for e in ("content", "rec")),
    *(("F1", "rec", "rec/rq_kmeans", f"{e}/rq_kmeans") for e in ("content", "search")),
    *(("F2", t, "multitask/rq_kmeans", f"{e}/rq_kmeans") for t in ("search", "rec")
      for e in ("separate", "prefix_share", "fused_concat", "fused_svd")),
    *(("F3, F4" if q == "rq_vae_fixed" else "F3", t, "multitask/rq_kmeans", f"multitask/{q}")
      for t in ("search", "rec") for q in ("rq_vae", "rq_vae_fixed", "residual_lfq", "dict_learning")),
    *(("F4", t, "multitask/rq_vae_fixed", "multitask/rq_vae") for t in ("search", "rec")),
)


def label(embedding: str, quantizer: str) -> str:
    """A scheme's name in the test tables: ``embedding/quantizer``."""
    return f"{embedding}/{quantizer}"


# ----------------------------------------------------------------------------- arrays

def _counts(draws: np.ndarray, n: int) -> np.ndarray:
    """How often each of ``n`` indices appears in each row of ``draws`` (rows x n)."""
    rows = draws.shape[0]
    flat = (draws + n * np.arange(rows)[:, None]).ravel()
    return np.bincount(flat, minlength=rows * n).reshape(rows, n).astype(float)


def bootstrap_means(hits: np.ndarray, *, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """Two-way bootstrap replicates of the mean of ``hits`` (..., n_seeds, n_cases): shape (..., n_boot).

    Leading axes (schemes) share the draws, so differences between them are paired. The case draws are
    those of ``metrics.bootstrap_ci`` with the same ``seed``, the seed draws a separate seeded stream.
    """
    hits = np.asarray(hits, dtype=float)
    if hits.ndim < 2 or hits.shape[-1] == 0 or hits.shape[-2] == 0:
        raise StudyInputError(f"bootstrap_means needs hits shaped (..., seeds, cases) with at least one of each, "
                              f"got {hits.shape}.")
    n_seeds, n_cases = hits.shape[-2:]
    case_counts = _counts(rng(seed, "bootstrap").integers(0, n_cases, size=(n_boot, n_cases)), n_cases)
    per_seed = hits @ case_counts.T / n_cases  # (..., seeds, n_boot)
    if n_seeds == 1:
        return per_seed[..., 0, :]
    seed_counts = _counts(rng(seed, "bootstrap", "seeds").integers(0, n_seeds, size=(n_boot, n_seeds)), n_seeds)
    return np.einsum("...sb,bs->...b", per_seed, seed_counts) / n_seeds


def interval(hits: np.ndarray, *, level: float = LEVEL, n_boot: int = N_BOOT,
             seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high): the mean over seeds and cases with its two-way percentile-bootstrap interval."""
    means = bootstrap_means(hits, n_boot=n_boot, seed=seed)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(np.mean(hits)), float(lo), float(hi)


def paired_test(a: np.ndarray, b: np.ndarray, *, level: float = LEVEL, n_boot: int = N_BOOT,
                seed: int = 0) -> dict[str, float]:
    """Scheme a minus scheme b on the same (seed, case) grid: the mean difference, its interval, the
    two-sided bootstrap p, the bootstrap standard error, Cohen's d_z (mean / sd of the case-level
    differences averaged over seeds) and the design's size."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 2:
        raise StudyInputError(f"paired_test needs two (seeds, cases) arrays of one shape, got {a.shape} and {b.shape}.")
    diff = a - b
    boot = bootstrap_means(diff, n_boot=n_boot, seed=seed)
    lo, hi = np.quantile(boot, [(1 - level) / 2, 1 - (1 - level) / 2])
    tail = min(int((boot <= 0).sum()), int((boot >= 0).sum()))
    by_case = diff.mean(axis=0)
    sd = float(by_case.std(ddof=1)) if len(by_case) > 1 else 0.0
    mean = float(diff.mean())
    return {"diff": mean, "ci_low": float(lo), "ci_high": float(hi),
            "p_value": min(1.0, 2 * (tail + 1) / (n_boot + 1)), "se": float(boot.std(ddof=1)),
            "cohens_d": mean / sd if sd > 0 else 0.0, "n_cases": a.shape[1], "n_seeds": a.shape[0],
            "n_units": a.size}


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values, in the input order (step-down, monotone, capped at 1)."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    m = len(p)
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order]) if m else p
    out = np.empty(m)
    out[order] = np.minimum(1.0, stepped)
    return out


def minimum_detectable_difference(sd: float, n_units: int, *, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest true mean difference a two-sided paired test of level ``alpha`` detects with ``power``:
    (z_{1-alpha/2} + z_{power}) * sd / sqrt(n), the normal approximation. With the bootstrap standard
    error ``se`` of the mean difference, call it with ``sd=se`` and ``n_units=1``."""
    if n_units < 1 or not 0 < alpha < 1 or not 0 < power < 1:
        raise StudyInputError(f"minimum_detectable_difference needs n_units >= 1 and alpha, power in (0, 1), "
                              f"got {n_units}, {alpha}, {power}.")
    z = NormalDist()
    return (z.inv_cdf(1 - alpha / 2) + z.inv_cdf(power)) * float(sd) / np.sqrt(n_units)


# ----------------------------------------------------------------------------- frames

def hit_rows(predictions: pd.DataFrame, *, embedding: str, quantizer: str, k: int = K) -> pd.DataFrame:
    """One row per (task, protocol, decoding, seed, case) of a predictions frame: ``hit`` in {0, 1} (ranx) and
    ``list_length``, the distinct items among the first ``k`` (below ``k`` when diverse beam groups collide)."""
    f = predictions.copy()
    for col, default in (("protocol", "all"), ("decoding", "beam"), ("seed", 0)):
        if col not in f:
            f[col] = default
    if "query_id" not in f:
        f["query_id"] = np.nan
    parts = []
    for _, g in f.groupby(["task", "protocol", "decoding", "seed"], sort=True):
        lengths = [len(set(list(r)[:k])) for r in g["ranked"]]
        parts.append(g.assign(hit=per_case_recall(g, k), list_length=lengths, embedding=embedding, quantizer=quantizer))
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


def seed_level_table(hits: pd.DataFrame, head: np.ndarray | None = None, *, n_boot: int = N_BOOT,
                     seed: int = 0, level: float = LEVEL) -> pd.DataFrame:
    """Recall@30 as the mean over seeds and cases with its two-way interval, one row per (scheme, task,
    protocol, decoding, segment): ``recall_at_30``, ``ci_low``, ``ci_high``, ``n_cases``, ``n_seeds``,
    ``interval`` ("seeds x cases", or "cases (1 seed)"). With ``head`` (item ids), rec rows also come per
    segment (head, torso), as ``metrics.recall_rows``; ``report.scheme_table`` reads this frame."""
    rows = []
    groups = ["embedding", "quantizer", "task", "protocol", "decoding"]
    for (emb, quant, task, protocol, decoding), g in hits.groupby(groups, sort=False):
        array, seeds, cases = hit_array(g)
        segments = {"all": np.ones(len(cases), dtype=bool)}
        if head is not None and task == "rec":
            target = g.drop_duplicates("case_id").set_index("case_id").target.reindex(cases).to_numpy()
            in_head = np.isin(target, head)
            segments.update(head=in_head, torso=~in_head)
        for segment, mask in segments.items():
            r, lo, hi = interval(array[:, mask], n_boot=n_boot, seed=seed, level=level) if mask.any() else (np.nan,) * 3
            rows.append({"embedding": emb, "quantizer": quant, "task": task, "protocol": protocol,
                         "decoding": decoding, "segment": segment, "recall_at_30": r, "ci_low": lo, "ci_high": hi,
                         "n_cases": int(mask.sum()), "n_seeds": len(seeds),
                         "interval": "seeds x cases" if len(seeds) > 1 else "cases (1 seed)"})
    return pd.DataFrame(rows)


def joint_comparisons(task: str, joint: Iterable[str] = JOINT) -> list[tuple[str, str, str, str]]:
    """Every pair of joint schemes (RQ-KMeans) on one task, as (family, task, a, b)."""
    names = [label(e, _KM) for e in joint]
    return [(f"joint schemes, {task}", task, a, b) for i, a in enumerate(names) for b in names[i + 1:]]


def finding_comparisons() -> list[tuple[str, str, str, str]]:
    """The comparisons of README's findings F1-F4 as (finding, task, a, b): one family for Holm."""
    return list(FINDING_COMPARISONS)


def family_tests(hits: pd.DataFrame, comparisons: Sequence[tuple[str, str, str, str]], family: str, *,
                 protocol: str = "all", decoding: str = "beam", n_boot: int = N_BOOT, seed: int = 0,
                 alpha: float = 0.05, power: float = 0.8) -> pd.DataFrame:
    """Paired tests of ``comparisons`` ((label, task, a, b), a and b as ``embedding/quantizer``), Holm-adjusted
    as one family. Each pair uses the seeds both schemes have; a pair with a scheme absent from ``hits`` is
    left out (not counted in Holm's m). ``mde``: the difference detectable with ``power`` at ``alpha``."""
    hits = hits[(hits.protocol == protocol) & (hits.decoding == decoding)]
    by_scheme = {(label(e, q), t): g for (e, q, t), g in hits.groupby(["embedding", "quantizer", "task"], sort=False)}
    rows = []
    for name, task, a, b in comparisons:
        if (a, task) not in by_scheme or (b, task) not in by_scheme:
            continue
        ha, hb = by_scheme[(a, task)], by_scheme[(b, task)]
        seeds = sorted(set(ha.seed) & set(hb.seed))
        cases = sorted(set(ha.case_id) & set(hb.case_id))
        if not seeds or len(cases) != ha.case_id.nunique() or len(cases) != hb.case_id.nunique():
            raise StudyInputError(f"{a} and {b} were not scored on the same {task} test cases and seeds; rerun "
                                  "notebook 05 with one generator config.")
        xa, _, _ = hit_array(ha, cases=cases, seeds=seeds)
        xb, _, _ = hit_array(hb, cases=cases, seeds=seeds)
        test = paired_test(xa, xb, n_boot=n_boot, seed=seed)
        rows.append({"family": family, "label": name, "task": task, "a": a, "b": b, "recall_a": float(xa.mean()),
                     "recall_b": float(xb.mean()), **test,
                     "mde": minimum_detectable_difference(test["se"], 1, alpha=alpha, power=power)})
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out.insert(out.columns.get_loc("p_value") + 1, "p_holm", holm(out.p_value))
    out.insert(out.columns.get_loc("p_holm") + 1, "significant", out.p_holm < alpha)
    return out


def power_statement(tests: pd.DataFrame, *, alpha: float = 0.05, power: float = 0.8) -> tuple[str, dict[str, float]]:
    """A sentence for the README: per task, the difference in Recall@30 (points, x 100) that a paired
    comparison of this design detects with ``power`` at ``alpha``, and at Holm's strictest step (alpha / m,
    m = the tests in that task's families), from the median bootstrap standard error of ``tests``
    (``family_tests`` rows)."""
    if tests.empty:
        raise StudyInputError("power_statement needs at least one paired test; run family_tests first.")
    numbers, parts = {}, []
    for task, g in tests.groupby("task", sort=False):
        m = int(tests.family.isin(set(g.family)).sum())
        se = float(g.se.median())
        loose = minimum_detectable_difference(se, 1, alpha=alpha, power=power)
        strict = minimum_detectable_difference(se, 1, alpha=alpha / m, power=power)
        numbers.update({f"mde_{task}": float(loose), f"mde_{task}_holm_strictest": float(strict)})
        seeds = int(g.n_seeds.min())
        parts.append(f"{task} ({int(g.n_cases.iloc[0])} cases x {seeds} seed{'s' if seeds > 1 else ''}): "
                     f"{100 * loose:.1f} points ({100 * strict:.1f} at Holm's strictest alpha {alpha:g}/{m})")
    text = ("Differences in Recall@30 under " + "; ".join(parts) + f" cannot be detected with {power:.0%} power "
            f"by a two-sided paired test at alpha {alpha:g} (normal approximation, median bootstrap standard "
            "error of the pairs).")
    return text, numbers


def search_subsets(hits: pd.DataFrame, queries: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """(case_id -> subset labels, note): every search case is in "all" and "kind: <kind>", and in
    "known item" when exactly one item matches its query (``n_matching == 1``). Without an ``n_matching``
    column the known-item subset is skipped and the note says so."""
    cases = hits[hits.task == "search"].drop_duplicates("case_id")[["case_id", "query_id"]]
    if cases.query_id.isna().any():
        raise StudyInputError("Some search predictions have no query_id; rerun notebook 05 to save it.")
    cases = cases.astype({"query_id": "int64"})
    meta = queries.set_index("query_id")
    kinds = meta["kind"].reindex(cases.query_id).to_numpy() if "kind" in meta else np.full(len(cases), None)
    rows = [(c, "all") for c in cases.case_id]
    rows += [(c, f"kind: {k}") for c, k in zip(cases.case_id, kinds) if isinstance(k, str)]
    note = ""
    if "n_matching" in meta:
        known = meta["n_matching"].reindex(cases.query_id).to_numpy() == 1
        rows += [(c, "known item") for c, hit in zip(cases.case_id, known) if hit]
    else:
        note = "Known-item subset skipped: the queries have no n_matching column (rerun notebook 01)."
    return pd.DataFrame(rows, columns=["case_id", "subset"]), note


def subset_table(hits: pd.DataFrame, subsets: pd.DataFrame, *, n_boot: int = N_BOOT, seed: int = 0,
                 level: float = LEVEL) -> pd.DataFrame:
    """Recall@30 with its two-way interval per (scheme, subset) of one task, protocol and decoding per
    scheme (baselines are one "seed"); ``subsets`` maps case_id to subset labels (``search_subsets``)."""
    rows = []
    for (emb, quant), g in hits.groupby(["embedding", "quantizer"], sort=False):
        array, seeds, cases = hit_array(g)
        position = pd.Series(np.arange(len(cases)), index=cases)
        for subset, members in subsets.groupby("subset", sort=False).case_id:
            cols = np.sort(position.reindex(members).dropna().astype(int).to_numpy())  # hit_array order
            if not len(cols):
                continue
            r, lo, hi = interval(array[:, cols], n_boot=n_boot, seed=seed, level=level)
            rows.append({"embedding": emb, "quantizer": quant, "subset": subset, "recall_at_30": r, "ci_low": lo,
                         "ci_high": hi, "n_cases": len(cols), "n_seeds": len(seeds)})
    return pd.DataFrame(rows)


def beyond_comparisons(candidates: Iterable[str], incumbent: str = "multitask/rq_kmeans"
                       ) -> list[tuple[str, str, str, str]]:
    """Each joint construction beyond the paper against the incumbent, on both tasks: one Holm family."""
    return [("beyond the paper", task, c, incumbent) for c in candidates for task in ("search", "rec")]


def study_pair_tests(hits: pd.DataFrame, *, seed: int = 0, candidates: Sequence[str] = ()) -> dict[str, Any]:
    """Notebook 06's families: every pair of joint schemes per task (Holm within each task), the comparisons
    behind findings F1-F4 (one Holm family) and, with ``candidates`` (``embedding/quantizer`` labels), each
    construction beyond the paper against multitask x RQ-KMeans (one Holm family); the power statement is
    that of the joint pairs."""
    joint = pd.concat([family_tests(hits, joint_comparisons(task), f"joint schemes, {task}", seed=seed)
                       for task in ("search", "rec")], ignore_index=True)
    found = family_tests(hits, finding_comparisons(), "findings F1-F4", seed=seed)
    beyond = (family_tests(hits, beyond_comparisons(candidates), "beyond the paper", seed=seed) if candidates
              else pd.DataFrame())
    text, power = power_statement(joint) if len(joint) else ("no joint pairs trained.", {})
    counts = {"significant_joint_pairs": int(joint.significant.sum()) if len(joint) else 0,
              "significant_finding_pairs": int(found.significant.sum()) if len(found) else 0}
    counts["significant_beyond_pairs"] = int(beyond.significant.sum()) if len(beyond) else 0
    return {"joint": joint, "findings": found, "beyond": beyond, "power_text": text, "power": {**power, **counts}}
