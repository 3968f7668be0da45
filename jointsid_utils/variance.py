"""The variance model of a seeds x cases table of per-case scores: standard error, degrees of freedom, t interval.

Below ``metrics`` so that one run's interval (``metrics.case_interval``) and the tables over seeds
(``evaluation.statistics``) share one implementation; the model is described in that module's docstring.

Degrees of freedom (``degrees_of_freedom``, rule ``DF_RULE``): the seed term is estimated from S seed means,
with S - 1 df. Welch-Satterthwaite df (rule "satterthwaite", the rule before) move with that 2-df estimate at
three seeds: a seed estimate that is small by chance shrinks the SE *and* raises the df, and the type I error
at a Holm level reaches several times nominal. Rule "seed_bound" computes the Satterthwaite df with each seed
term at its one-sided (1 - ``SEED_BOUND``) upper confidence bound, so a seed term that may be large keeps the
df near S - 1 while a seed term that is surely small leaves the case term's df; rule "seeds" uses S - 1
whenever a seed term is non-zero (valid, and the least powerful). docs/STATISTICS.md gives the simulated type
I error and detectable difference of each rule. The terms are computed on batches of tables at once
(``table_terms``) so that the simulation runs the same code as the study.
"""

from __future__ import annotations

from statistics import NormalDist
from typing import Sequence

import numpy as np
import pandas as pd

from jointsid_utils.errors import StudyInputError

DF_RULES = ("seed_bound", "seeds", "satterthwaite")
DF_RULE = "seed_bound"
SEED_BOUND = 0.02  # the seed term's upper bound in the df: chosen by simulation (docs/STATISTICS.md)


def satterthwaite(parts: Sequence[tuple[float, float]], total: float | None = None) -> float:
    """Welch-Satterthwaite degrees of freedom (Satterthwaite 1946) of a signed sum of variance terms
    ``(term, df)``, whose value is ``total`` (default: the sum); inf when every term is 0 (a point interval)."""
    used = [(v, d) for v, d in parts if v != 0 and d > 0]
    if not used:
        return float("inf")
    total = sum(v for v, _ in used) if total is None else total
    floor = min((d for v, d in used if v > 0), default=1.0)  # a subtracted term must not push df below its parts'
    return float(max(total ** 2 / sum(v * v / d for v, d in used), floor))


def cluster_variance(values: np.ndarray, clusters: Sequence | None = None) -> tuple[float, int]:
    """(variance of the mean of ``values``, number of clusters): the cluster-robust estimate with the G / (G - 1)
    small-sample factor (Liang and Zeger 1986); without ``clusters`` every value is its own cluster, s^2 / n."""
    x = np.asarray(values, dtype=float)
    var, g = _cluster_variance(x - x.mean(), _codes(clusters, len(x)))
    return float(var), g


def _codes(clusters: Sequence | None, n: int) -> np.ndarray | None:
    if clusters is None:
        return None
    codes = pd.factorize(np.asarray(clusters))[0]
    if len(codes) != n:
        raise StudyInputError(f"The variance model got {len(codes)} cluster labels for {n} cases; pass one per case.")
    return codes


def _cluster_variance(resid: np.ndarray, codes: np.ndarray | None) -> tuple[np.ndarray, int]:
    """Batched ``cluster_variance`` of centred values (last axis: cases)."""
    n = resid.shape[-1]
    if codes is None:
        totals = resid
    else:
        order = np.argsort(codes, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(codes[order]) != 0])
        totals = np.add.reduceat(resid[..., order], starts, axis=-1)
    g = totals.shape[-1]
    if g < 2:
        return np.zeros(resid.shape[:-1]), g
    return g / (g - 1) * np.sum(totals ** 2, axis=-1) / n ** 2, g


def table_terms(x: np.ndarray, clusters: Sequence | None = None) -> dict[str, np.ndarray]:
    """The variance terms of one or a batch of seeds x cases tables (shape (..., S, n)): mean, seed term
    s2_seed / S, item-clustered case term, the interaction MS_e / (n S) that both contain, the seed and case
    SDs and the plain (unclustered) case term; with the sizes (S, n, G) and the interaction's df."""
    x = np.asarray(x, dtype=float)
    n_seeds, n_cases = x.shape[-2:]
    seed_means, case_means = x.mean(axis=-1), x.mean(axis=-2)
    grand = seed_means.mean(axis=-1)
    seed_var = seed_means.var(axis=-1, ddof=1) if n_seeds > 1 else np.zeros_like(grand)
    case_var = case_means.var(axis=-1, ddof=1) if n_cases > 1 else np.zeros_like(grand)
    var_case, n_items = _cluster_variance(case_means - grand[..., None], _codes(clusters, n_cases))
    df_e = (n_seeds - 1) * (n_cases - 1)
    if df_e:  # SS_e = SS_total - SS_seed - SS_case of the two-way table
        ss_total = np.sum((x - grand[..., None, None]) ** 2, axis=(-2, -1))
        ss_e = ss_total - n_cases * (n_seeds - 1) * seed_var - n_seeds * (n_cases - 1) * case_var
        var_e = np.maximum(ss_e, 0.0) / df_e / (n_seeds * n_cases)
    else:
        var_e = np.zeros_like(grand)
    return {"mean": grand, "var_seed": seed_var / n_seeds, "seed_terms": [(seed_var / n_seeds, n_seeds - 1)],
            "var_case": var_case, "var_e": var_e,
            "seed_sd": np.sqrt(seed_var), "case_sd": np.sqrt(case_var), "plain": case_var / n_cases,
            "n_seeds": n_seeds, "n_cases": n_cases, "n_items": n_items, "df_e": df_e}


def combined_variance(t: dict) -> np.ndarray:
    """Var(mean) = seed term + case term - interaction (counted in both), never below the interaction's share."""
    return np.maximum(t["var_seed"] + t["var_case"] - t["var_e"], t["var_e"])


def degrees_of_freedom(t: dict, rule: str = DF_RULE, *, bound: float = SEED_BOUND) -> np.ndarray:
    """The t reference's df of ``table_terms`` or ``unpaired_terms`` (scalar or batch) under ``rule``: see the
    module docstring. Every rule gives the case term's G - 1 when no seed term is non-zero (one seed, or
    seeds that agree case by case), inf for a point estimate."""
    if rule not in DF_RULES:
        raise StudyInputError(f"Unknown df rule {rule!r}; use one of {DF_RULES}.")
    var_case, var_e = (np.asarray(t[k], dtype=float) for k in ("var_case", "var_e"))
    seeds = [(np.asarray(v, dtype=float), d) for v, d in t["seed_terms"] if d > 0]
    g = t["n_items"]
    if rule == "satterthwaite":
        return _satterthwaite_batch([*seeds, (var_case, g - 1), (-var_e, t["df_e"])], combined_variance(t))
    if rule == "seeds":
        case_df = np.where(var_case > 0, float(g - 1) if g > 1 else np.inf, np.inf)
        smallest = np.full(np.shape(var_case), np.inf)
        for v, d in seeds:
            smallest = np.where(v > 0, np.minimum(smallest, d), smallest)
        return np.where(np.isfinite(smallest), smallest, case_df)
    from scipy.stats import chi2

    bounded = [(v * d / chi2.ppf(bound, d), d) for v, d in seeds]
    return _satterthwaite_batch([*bounded, (var_case, g - 1)], sum(v for v, _ in bounded) + var_case)


def _satterthwaite_batch(parts: list[tuple[np.ndarray, int]], total: np.ndarray) -> np.ndarray:
    """``satterthwaite`` over a batch of terms with fixed df (the same floor and the same inf)."""
    denominator = sum(np.where((v != 0) & (d > 0), v * v / max(d, 1), 0.0) for v, d in parts)
    floor = np.full(np.shape(total), np.inf)
    for v, d in parts:
        if d > 0:
            floor = np.where(v > 0, np.minimum(floor, d), floor)
    floor = np.where(np.isfinite(floor), floor, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = np.where(denominator > 0, np.maximum(total ** 2 / denominator, floor), np.inf)
    return df


def variance_parts(hits: np.ndarray, clusters: Sequence | None = None, *, rule: str = DF_RULE) -> dict[str, float]:
    """The variance model of a seeds x cases table (a scheme's hits or a paired difference): the mean, the seed
    and case terms of its standard error, the df of its t reference (``degrees_of_freedom``), the seed SD (of
    the seed means), the case SD (of the seed-averaged values), the item-cluster design effect and the size."""
    x = np.asarray(hits, dtype=float)
    if x.ndim != 2 or 0 in x.shape:
        raise StudyInputError(f"The variance model needs hits shaped (seeds, cases) with one of each, got {x.shape}.")
    t = table_terms(x, clusters)
    plain = float(t["plain"])
    return {"mean": float(t["mean"]), "se": float(np.sqrt(combined_variance(t))),
            "df": float(degrees_of_freedom(t, rule)), "se_seed": float(np.sqrt(t["var_seed"])),
            "se_case": float(np.sqrt(t["var_case"])), "seed_sd": float(t["seed_sd"]), "case_sd": float(t["case_sd"]),
            "design_effect": float(t["var_case"] / plain) if plain > 0 else 1.0,
            "n_seeds": t["n_seeds"], "n_cases": t["n_cases"], "n_items": t["n_items"]}


def unpaired_terms(a: np.ndarray, b: np.ndarray, clusters: Sequence | None = None, *,
                   weight: float = 1.0) -> dict[str, np.ndarray]:
    """Variance terms of mean(a) - weight x mean(b) when a's and b's seeds are independent (a baseline trained
    apart from the generator) but their cases are the same: both seed terms, the case term of the per-case
    difference of seed averages (paired by case, item-clustered) less both interactions it contains.
    Shapes (..., S_a, n) and (..., S_b, n); S_a and S_b may differ."""
    ta, tb = table_terms(a, clusters), table_terms(weight * np.asarray(b, dtype=float), clusters)
    diff = np.asarray(a, dtype=float).mean(axis=-2) - weight * np.asarray(b, dtype=float).mean(axis=-2)
    centred = diff - diff.mean(axis=-1, keepdims=True)
    var_case, n_items = _cluster_variance(centred, _codes(clusters, diff.shape[-1]))
    var_e = ta["var_e"] + tb["var_e"]
    seeded = [s for s in (ta["n_seeds"], tb["n_seeds"]) if s > 1]  # a single run (S = 1) has no seed term
    return {"mean": ta["mean"] - tb["mean"], "var_seed": ta["var_seed"] + tb["var_seed"],
            "seed_terms": ta["seed_terms"] + tb["seed_terms"], "var_case": var_case,
            "var_e": var_e, "case_sd": np.sqrt(diff.var(axis=-1, ddof=1)),
            "n_seeds": min(seeded, default=1), "n_cases": diff.shape[-1], "n_items": n_items,
            "df_e": min(ta["df_e"], tb["df_e"])}


def unpaired_parts(a: np.ndarray, b: np.ndarray, clusters: Sequence | None = None, *,
                   weight: float = 1.0) -> dict[str, float]:
    """``variance_parts`` of mean(a) - weight x mean(b) with independent seeds (``unpaired_terms``); the df
    come from ``degrees_of_freedom`` with both seed terms."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or 0 in a.shape or 0 in b.shape:
        raise StudyInputError(f"An unpaired test needs two (seeds, cases) arrays on the same cases, got {a.shape} "
                              f"and {b.shape}.")
    t = unpaired_terms(a, b, clusters, weight=weight)
    return {"mean": float(t["mean"]), "se": float(np.sqrt(combined_variance(t))),
            "df": float(degrees_of_freedom(t)), "case_sd": float(t["case_sd"]),
            "n_seeds": t["n_seeds"], "n_cases": t["n_cases"], "n_items": t["n_items"]}


def _t_quantile(q: float, df: float) -> float:
    from scipy.stats import t as student

    return float(NormalDist().inv_cdf(q)) if not np.isfinite(df) else float(student.ppf(q, df))


def _t_two_sided_p(stat: float, df: float) -> float:
    from scipy.stats import t as student

    if not np.isfinite(df):
        return float(2 * (1 - NormalDist().cdf(abs(stat))))
    return float(2 * student.sf(abs(stat), df))


def _t_upper_p(stat: float, df: float) -> float:
    """One-sided p of H1: mean > 0 (the upper tail)."""
    from scipy.stats import t as student

    return float(1 - NormalDist().cdf(stat)) if not np.isfinite(df) else float(student.sf(stat, df))


def interval(hits: np.ndarray, clusters: Sequence | None = None, *, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): the mean over seeds and cases with its t interval (``degrees_of_freedom``)."""
    v = variance_parts(hits, clusters)
    half = _t_quantile(1 - (1 - level) / 2, v["df"]) * v["se"] if v["se"] > 0 else 0.0
    return v["mean"], v["mean"] - half, v["mean"] + half
