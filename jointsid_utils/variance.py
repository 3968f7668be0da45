"""The variance model of a seeds x cases table of per-case scores: standard error, degrees of freedom, t interval.

Below ``metrics`` so that one run's interval (``metrics.case_interval``) and the tables over seeds
(``evaluation.statistics``) share one implementation; the model is described in that module's docstring.
"""

from __future__ import annotations

from statistics import NormalDist
from typing import Sequence

import numpy as np
import pandas as pd

from jointsid_utils.errors import StudyInputError


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
    resid = x - x.mean()
    if clusters is None:
        totals = resid
    else:
        codes = pd.factorize(np.asarray(clusters))[0]
        totals = np.bincount(codes, weights=resid)
    g = len(totals)
    if g < 2:
        return 0.0, g
    return float(g / (g - 1) * np.sum(totals ** 2) / len(x) ** 2), g


def variance_parts(hits: np.ndarray, clusters: Sequence | None = None) -> dict[str, float]:
    """The variance model of a seeds x cases table (a scheme's hits or a paired difference): the mean, the seed
    and case terms of its standard error, their Satterthwaite df, the seed SD (of the seed means), the case SD
    (of the seed-averaged values), the item-cluster design effect and the design's size."""
    x = np.asarray(hits, dtype=float)
    if x.ndim != 2 or 0 in x.shape:
        raise StudyInputError(f"The variance model needs hits shaped (seeds, cases) with one of each, got {x.shape}.")
    n_seeds, n_cases = x.shape
    seed_means, case_means = x.mean(axis=1), x.mean(axis=0)
    seed_sd = float(seed_means.std(ddof=1)) if n_seeds > 1 else 0.0
    case_sd = float(case_means.std(ddof=1)) if n_cases > 1 else 0.0
    var_seed = seed_sd ** 2 / n_seeds
    var_case, n_items = cluster_variance(case_means, clusters)
    var_e, df_e = _interaction(x, seed_means, case_means)
    var = max(var_seed + var_case - var_e, var_e)  # never below the interaction's own share
    plain = case_sd ** 2 / n_cases
    return {"mean": float(x.mean()), "se": float(np.sqrt(var)),
            "df": satterthwaite([(var_seed, n_seeds - 1), (var_case, n_items - 1), (-var_e, df_e)], var),
            "se_seed": float(np.sqrt(var_seed)), "se_case": float(np.sqrt(var_case)), "seed_sd": seed_sd,
            "case_sd": case_sd, "design_effect": float(var_case / plain) if plain > 0 else 1.0,
            "n_seeds": n_seeds, "n_cases": n_cases, "n_items": n_items}


def _interaction(x: np.ndarray, seed_means: np.ndarray, case_means: np.ndarray) -> tuple[float, int]:
    """(MS_e / (n S), its df): the seed-by-case residual's share of Var(mean), which both margins contain."""
    n_seeds, n_cases = x.shape
    df = (n_seeds - 1) * (n_cases - 1)
    if df == 0:
        return 0.0, 0
    resid = x - seed_means[:, None] - case_means[None, :] + x.mean()
    return float(np.sum(resid ** 2) / df / x.size), df


def _t_quantile(q: float, df: float) -> float:
    from scipy.stats import t as student

    return float(NormalDist().inv_cdf(q)) if not np.isfinite(df) else float(student.ppf(q, df))


def _t_two_sided_p(stat: float, df: float) -> float:
    from scipy.stats import t as student

    if not np.isfinite(df):
        return float(2 * (1 - NormalDist().cdf(abs(stat))))
    return float(2 * student.sf(abs(stat), df))


def interval(hits: np.ndarray, clusters: Sequence | None = None, *, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): the mean over seeds and cases with its t interval at the Satterthwaite df."""
    v = variance_parts(hits, clusters)
    half = _t_quantile(1 - (1 - level) / 2, v["df"]) * v["se"] if v["se"] > 0 else 0.0
    return v["mean"], v["mean"] - half, v["mean"] + half
