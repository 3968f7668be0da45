"""The variance model's type I error at a Holm level, on a small simulation of the study's design (the larger
one is bench/bench_type_one_error.py, its table in docs/STATISTICS.md)."""

import numpy as np
import pytest

from jointsid_utils import variance
from jointsid_utils.evaluation import statistics as stats
from jointsid_utils.evaluation.type_one_error import ADOPTED, Design, rejection_rates, simulate

REPS = 4000  # at m = 4 the nominal rate 0.0125 is 50 rejections; 1.5 x nominal is 3.5 binomial SEs above


@pytest.mark.parametrize("n_seeds", [3, 5])
def test_adopted_rule_holds_the_holm_level_where_the_seed_term_dominates(n_seeds):
    # rec, 943 unclustered users, recall 0.2, the seed term ~90% of the paired variance
    out = rejection_rates(Design(task="rec", n_seeds=n_seeds, seed_sd=0.2, recall=0.2, n_cases=943), REPS,
                          families=(4,), seed=n_seeds, rules=(ADOPTED, "satterthwaite (before)"))
    nominal = 0.05 / 4
    assert 0.8 < out["seed_share"] < 0.97
    assert out["rates"][(ADOPTED, 4)] <= 1.5 * nominal, out["rates"]
    if n_seeds == 3:  # the rule before: Satterthwaite df move with a 2-df seed estimate
        assert out["rates"][("satterthwaite (before)", 4)] > 2 * nominal, out["rates"]
    # the price of the bound: a larger detectable difference than the rule before, not an unbounded one
    assert out["detectable"][("satterthwaite (before)", 4)] < out["detectable"][(ADOPTED, 4)] < 2.5 * \
        out["detectable"][("satterthwaite (before)", 4)]


def test_adopted_rule_on_clustered_search_cases_at_three_seeds():
    out = rejection_rates(Design(task="search", n_seeds=3, seed_sd=0.1, recall=0.6), 600, families=(4,), seed=1,
                          rules=(ADOPTED, "satterthwaite (before)"))
    assert 0.7 < out["seed_share"] < 0.95
    assert out["rates"][(ADOPTED, 4)] <= out["rates"][("satterthwaite (before)", 4)]
    assert out["rates"][(ADOPTED, 4)] <= 2.0 * 0.05 / 4, out["rates"]


def test_unpaired_test_against_a_baseline_with_its_own_seeds():
    out = rejection_rates(Design(task="rec", n_seeds=3, seed_sd=0.2, recall=0.2, n_cases=943, baseline_seeds=5),
                          REPS, families=(4,), seed=5, rules=(ADOPTED,))
    assert out["rates"][(ADOPTED, 4)] <= 1.5 * 0.05 / 4, out["rates"]


def test_simulated_items_and_the_batched_model_match_the_study_code():
    design = Design(task="search", n_seeds=3, seed_sd=0.1, recall=0.6)
    a, b, items = simulate(design, 2, np.random.default_rng(0))
    assert a.shape == (2, 3, 2000) and len(np.unique(items)) == 1190 and 0.5 < a.mean() < 0.7
    batch = variance.table_terms(a - b, items)
    one = variance.variance_parts((a - b)[1], items)
    assert one["se"] == pytest.approx(float(np.sqrt(variance.combined_variance(batch))[1]))
    assert one["df"] == pytest.approx(float(variance.degrees_of_freedom(batch)[1]))
    # the unpaired model on the same seeds equals the paired one when the pairing carries nothing extra
    unpaired = stats.unpaired_test(a[0], b[0], items, level=0.95)
    assert unpaired["se"] > 0 and unpaired["n_seeds"] == 3 and unpaired["n_units"] == 2 * a[0].size


def test_df_rules_on_known_tables():
    gen = np.random.default_rng(2)
    x = (gen.random((3, 500)) < 0.3).astype(float)
    agree = np.repeat(x[:1], 3, axis=0)  # seeds that agree: no seed term, the case term's df under every rule
    for rule in variance.DF_RULES:
        assert variance.variance_parts(agree, rule=rule)["df"] == 499
    spread = x + np.array([[0.0], [0.1], [0.2]])  # a large seed term: the bound keeps the df near S - 1
    assert variance.variance_parts(spread, rule="seeds")["df"] == 2
    assert 2 <= variance.variance_parts(spread, rule="seed_bound")["df"] < 2.2
    with pytest.raises(Exception, match="df rule"):
        variance.variance_parts(x, rule="welch")
