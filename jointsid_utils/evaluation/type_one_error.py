"""The type I error of the paired (and unpaired) t tests at a Holm level, by simulating the study's design.

Two schemes with the same distribution (the null) score the same test cases with every seed. A hit is a
threshold on a latent sum: a case effect shared by both schemes (for search, mostly its target item's, so the
cases of an item are correlated), each scheme's own case effect (the paired case term), each scheme's own
seed effect (the seed term) and a (seed, case) draw (the interaction). The intercept puts the mean hit rate at
the design's recall. A rule's type I error at alpha / m is the share of simulated tables whose test rejects at
that level; ``degrees_of_freedom``'s two rules are measured on the same tables. The variance model itself is
``variance.table_terms``: the study's code, run on a batch of tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from jointsid_utils.variance import (DF_RULE, SEED_BOUND, combined_variance, degrees_of_freedom, table_terms,
                                     unpaired_terms)

# the df rules compared: name -> (``degrees_of_freedom`` rule, its seed bound)
RULES = {"satterthwaite (before)": ("satterthwaite", SEED_BOUND), "seeds - 1": ("seeds", SEED_BOUND),
         **{f"seed bound {b:g}": ("seed_bound", b) for b in (0.01, 0.02, 0.05)}}
ADOPTED = f"seed bound {SEED_BOUND:g}" if DF_RULE == "seed_bound" else "seeds - 1"


@dataclass(frozen=True)
class Design:
    """One simulated setting: the task's case layout, the seeds, the recall and the latent effect sizes."""

    task: str  # "search": cases clustered by item; "rec": one case per user
    n_seeds: int
    seed_sd: float  # SD of each scheme's seed effect on the latent scale
    recall: float = 0.4
    n_cases: int = 2000
    n_items: int = 1190  # search only
    case_sd: float = 0.5  # SD of each scheme's own case effect (half item, half query for search)
    baseline_seeds: int = 0  # > 0: scheme b is a baseline with its own independent seeds (an unpaired test)


def case_items(design: Design, gen: np.random.Generator) -> np.ndarray | None:
    """The target item of each search case (every item at least once, the rest at random, ~1.7 cases per
    item as in the study); None for rec."""
    if design.task != "search":
        return None
    extra = gen.integers(0, design.n_items, design.n_cases - design.n_items)
    return np.sort(np.r_[np.arange(design.n_items), extra])


def _scheme_latent(design: Design, items: np.ndarray | None, reps: int, seeds: int,
                   gen: np.random.Generator) -> np.ndarray:
    """One scheme's own effects: (reps, seeds, cases) of seed effect + own case effect."""
    n = design.n_cases
    if items is None:
        own = gen.normal(0, design.case_sd, (reps, n))
    else:
        half = design.case_sd / np.sqrt(2)
        own = gen.normal(0, half, (reps, design.n_items))[:, items] + gen.normal(0, half, (reps, n))
    return own[:, None, :] + gen.normal(0, design.seed_sd, (reps, seeds, 1))


def simulate(design: Design, reps: int, gen: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(a, b, items): ``reps`` pairs of seeds x cases hit tables under the null (a and b identically distributed)."""
    items = case_items(design, gen)
    n = design.n_cases
    shared = gen.normal(0, 1.0, (reps, n)) if items is None else \
        gen.normal(0, 0.9, (reps, design.n_items))[:, items] + gen.normal(0, 0.45, (reps, n))
    latent_var = np.var(shared) + design.case_sd ** 2 + design.seed_sd ** 2 + 1.0  # + the (seed, case) draw
    mu = NormalDist().inv_cdf(design.recall) * np.sqrt(latent_var)
    seeds_b = design.baseline_seeds or design.n_seeds
    tables = []
    for seeds in (design.n_seeds, seeds_b):
        latent = mu + shared[:, None, :] + _scheme_latent(design, items, reps, seeds, gen)
        tables.append((latent + gen.standard_normal(latent.shape) > 0).astype(np.float32))
    return tables[0], tables[1], items


def _t_critical(q: float, df: np.ndarray) -> np.ndarray:
    from scipy.stats import t as student

    df = np.asarray(df, dtype=float)
    return np.where(np.isfinite(df), student.ppf(q, np.where(np.isfinite(df), df, 1.0)), NormalDist().inv_cdf(q))


def rejection_rates(design: Design, reps: int, *, alpha: float = 0.05, families: tuple[int, ...] = (4, 8, 16),
                    seed: int = 0, chunk: int = 250, rules: tuple[str, ...] = tuple(RULES), power: float = 0.8
                    ) -> dict:
    """Per df rule (``RULES``) and family size m, the share of ``reps`` null tables whose two-sided test rejects
    at alpha / m, and the mean detectable difference at alpha / m with ``power`` (the model's SE and df) in units
    of the simulated SD of the mean difference; with the measured seed share (seed term over the whole)."""
    gen = np.random.default_rng(seed)
    rejected = {(r, m): 0 for r in rules for m in families}
    detectable = {(r, m): 0.0 for r in rules for m in families}
    means = []
    seed_part, total_part, done = 0.0, 0.0, 0
    while done < reps:
        size = min(chunk, reps - done)
        a, b, items = simulate(design, size, gen)
        terms = unpaired_terms(a, b, items) if design.baseline_seeds else table_terms(a - b, items)
        var = combined_variance(terms)
        seed_part += float(np.sum(terms["var_seed"] - terms["var_e"]))
        total_part += float(np.sum(var))
        stat = np.abs(terms["mean"]) / np.sqrt(np.where(var > 0, var, np.inf))
        means.append(terms["mean"])
        for name in rules:
            rule, bound = RULES[name]
            df = degrees_of_freedom(terms, rule, bound=bound)
            for m in families:
                critical = _t_critical(1 - alpha / (2 * m), df)
                rejected[(name, m)] += int(np.sum(stat > critical))
                detectable[(name, m)] += float(np.sum((critical + _t_critical(power, df)) * np.sqrt(var)))
        done += size
    spread = float(np.std(np.concatenate(means), ddof=1))
    return {"design": design, "seed_share": seed_part / total_part if total_part > 0 else 0.0, "reps": reps,
            "rates": {key: count / reps for key, count in rejected.items()},
            "detectable": {key: total / reps / spread for key, total in detectable.items()}}


def error_table(designs: list[Design], reps: int, *, alpha: float = 0.05, families: tuple[int, ...] = (4, 8, 16),
                seed: int = 0) -> pd.DataFrame:
    """One row per (design, df rule, m): the type I error at alpha / m, its ratio to nominal, a binomial
    standard error of the rate and the mean detectable difference (80% power) over the simulated SD of the
    difference (the price of a rule: the ideal test, a z with a known SE, detects about 3.8 SDs at alpha/8)."""
    rows = []
    for i, design in enumerate(designs):
        out = rejection_rates(design, reps, alpha=alpha, families=families, seed=seed + i)
        for (rule, m), rate in out["rates"].items():
            detectable = out["detectable"][(rule, m)]
            nominal = alpha / m
            rows.append({"task": design.task, "comparison": "unpaired" if design.baseline_seeds else "paired",
                         "n_seeds": design.n_seeds, "baseline_seeds": design.baseline_seeds,
                         "recall": design.recall, "seed_sd": design.seed_sd, "seed_share": round(out["seed_share"], 3),
                         "rule": rule, "m": m, "nominal": nominal, "type_one_error": rate,
                         "ratio": rate / nominal, "rate_se": np.sqrt(nominal * (1 - nominal) / reps),
                         "detectable_in_sd": detectable, "reps": reps})
    return pd.DataFrame(rows)
