"""Recall@30 over seeds and cases: the two-way bootstrap, paired tests, Holm, power, per-kind breakdowns."""

import zlib

import numpy as np
import pandas as pd
import pytest

from jointsid_utils.errors import StudyInputError
from jointsid_utils.evaluation import report as ev
from jointsid_utils.evaluation import results as results_io
from jointsid_utils.evaluation import statistics as stats
from jointsid_utils.metrics import bootstrap_ci


def predictions(targets, hit_rates, *, task="search", seed=0, gen=None, decoding="beam", length=30):
    """A generator-like predictions frame: case i's target is ranked first with probability hit_rates[i]."""
    gen = gen or np.random.default_rng(seed)
    ranked = []
    for t, rate in zip(targets, hit_rates):
        others = [int(x) for x in gen.permutation(1000) if x != t][:length]
        ranked.append(([int(t)] + others[:length - 1]) if gen.random() < rate else others)
    frame = pd.DataFrame({"case_id": [f"q{i}" for i in range(len(targets))], "task": task, "protocol": "all",
                          "decoding": decoding, "seed": seed, "query_id": np.arange(len(targets)),
                          "target": targets, "ranked": ranked})
    return frame


def scheme_hits(embedding, rates_per_seed, targets, quantizer="rq_kmeans", task="search"):
    parts = [stats.hit_rows(predictions(targets, rates, task=task, seed=s,
                                        gen=np.random.default_rng([zlib.crc32(embedding.encode()), s])),
                            embedding=embedding, quantizer=quantizer)
             for s, rates in enumerate(rates_per_seed)]
    return pd.concat(parts, ignore_index=True)


def test_one_seed_is_exactly_the_case_bootstrap():
    values = (np.random.default_rng(3).random(400) < 0.2).astype(float)
    mean, lo, hi = stats.interval(values[None, :], seed=7)
    assert mean == values.mean() and (lo, hi) == bootstrap_ci(values, n_boot=stats.N_BOOT, seed=7)
    # seeds that agree case by case add no seed variance: the same interval again
    assert stats.interval(np.repeat(values[None, :], 3, axis=0), seed=7) == (mean, lo, hi)


def test_interval_widens_when_seeds_disagree():
    gen = np.random.default_rng(0)
    difficulty = gen.random(600)
    agree = np.stack([(difficulty < 0.3) for _ in range(3)]).astype(float)
    # same overall rate, but each training seed lands at another level: seed variance
    disagree = np.stack([(gen.random(600) < rate) for rate in (0.1, 0.3, 0.5)]).astype(float)
    _, lo_a, hi_a = stats.interval(agree)
    m_d, lo_d, hi_d = stats.interval(disagree)
    assert hi_d - lo_d > 2 * (hi_a - lo_a)
    assert lo_d < m_d < hi_d
    assert stats.interval(disagree, seed=1) == stats.interval(disagree, seed=1)  # seeded


def test_holm_on_a_known_example():
    np.testing.assert_allclose(stats.holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(stats.holm([0.5, 0.6]), [1.0, 1.0])  # capped at 1, monotone
    assert len(stats.holm([])) == 0


def test_paired_test_identical_and_clearly_different():
    gen = np.random.default_rng(1)
    a = (gen.random((3, 400)) < 0.3).astype(float)
    same = stats.paired_test(a, a.copy())
    assert same["p_value"] == 1.0 and same["diff"] == 0.0 and same["cohens_d"] == 0.0
    assert same["n_units"] == 1200 and same["n_cases"] == 400 and same["n_seeds"] == 3
    better = np.maximum(a, gen.random((3, 400)) < 0.3)
    clear = stats.paired_test(better, a)
    assert clear["p_value"] < 0.005 and 0 < clear["ci_low"] < clear["diff"] < clear["ci_high"]
    assert clear["cohens_d"] > 0.3
    with pytest.raises(StudyInputError, match="one shape"):
        stats.paired_test(a, a[:, :10])


def test_minimum_detectable_difference_known_case():
    # (z_0.975 + z_0.8) / sqrt(100) = (1.95996 + 0.84162) / 10
    assert stats.minimum_detectable_difference(1.0, 100) == pytest.approx(0.280158, abs=1e-6)
    assert stats.minimum_detectable_difference(0.02, 1) == pytest.approx(0.02 * 2.801585, rel=1e-6)
    assert stats.minimum_detectable_difference(1.0, 100, alpha=0.005) > 0.280158  # a Holm step is stricter
    with pytest.raises(StudyInputError):
        stats.minimum_detectable_difference(1.0, 0)


def test_family_tests_holm_and_power_on_prediction_frames():
    targets = np.random.default_rng(2).integers(0, 1000, 300)
    hits = pd.concat([
        scheme_hits("multitask", [np.full(300, 0.5)] * 3, targets),
        scheme_hits("separate", [np.full(300, 0.1)] * 3, targets),
        scheme_hits("fused_svd", [np.full(300, 0.12)] * 3, targets)], ignore_index=True)
    tests = stats.family_tests(hits, stats.joint_comparisons("search"), "joint schemes, search")
    assert len(tests) == 3  # pairs with an untrained scheme are left out
    np.testing.assert_allclose(tests.p_holm, stats.holm(tests.p_value))
    by_pair = tests.set_index(["a", "b"])
    clear = by_pair.loc[("separate/rq_kmeans", "multitask/rq_kmeans")]
    assert clear.significant and clear["diff"] < -0.3 and clear.n_units == 900
    assert not by_pair.loc[("separate/rq_kmeans", "fused_svd/rq_kmeans")].significant
    text, numbers = stats.power_statement(tests)
    assert "search (300 cases x 3 seeds)" in text and 0 < numbers["mde_search"] < numbers["mde_search_holm_strictest"]
    shown = ev.tests_table(tests)
    assert {"a - b [95% CI]", "Holm p", "Cohen's d_z", "MDE (80%)"} <= set(shown.columns)


def test_beyond_the_paper_family_against_the_incumbent():
    targets = np.random.default_rng(3).integers(0, 1000, 300)
    hits = pd.concat([scheme_hits("multitask", [np.full(300, 0.3)] * 3, targets),
                      scheme_hits("balanced_unique", [np.full(300, 0.6)] * 3, targets),
                      scheme_hits("multitask_cf", [np.full(300, 0.3)] * 3, targets)], ignore_index=True)
    out = stats.study_pair_tests(hits, candidates=["balanced_unique/rq_kmeans", "multitask_cf/rq_kmeans",
                                                   "shared_then_task/rq_kmeans"])
    beyond = out["beyond"].set_index("a")
    assert set(beyond.index) == {"balanced_unique/rq_kmeans", "multitask_cf/rq_kmeans"}  # untrained: left out
    assert (beyond.b == "multitask/rq_kmeans").all() and (beyond.family == "beyond the paper").all()
    assert beyond.loc["balanced_unique/rq_kmeans"].significant and not beyond.loc["multitask_cf/rq_kmeans"].significant
    assert out["power"]["significant_beyond_pairs"] == 1
    assert stats.study_pair_tests(hits)["beyond"].empty


def test_study_schemes_add_the_joint_constructions_on_request():
    from jointsid_utils.generator.orchestration import study_schemes
    from jointsid_utils.ids.joint import JOINT_SCHEMES

    assert len(study_schemes()) == 12 and not set(JOINT_SCHEMES) & set(study_schemes())
    assert study_schemes(include_joint_ids=True)[-len(JOINT_SCHEMES):] == list(JOINT_SCHEMES)


def test_finding_comparisons_cover_f1_to_f4_once():
    comps = stats.finding_comparisons()
    assert {c[0].split(",")[0] for c in comps} == {"F1", "F2", "F3", "F4"}
    assert len({c[1:] for c in comps}) == len(comps)


def test_seed_level_table_feeds_scheme_table():
    targets = np.random.default_rng(4).integers(0, 1000, 200)
    hits = pd.concat([scheme_hits("multitask", [np.full(200, r) for r in (0.2, 0.4)], targets),
                      scheme_hits("multitask", [np.full(200, r) for r in (0.2, 0.4)], targets, task="rec")],
                     ignore_index=True)
    level = stats.seed_level_table(hits, head=np.unique(targets)[:20])
    row = level[(level.task == "search") & (level.segment == "all")].iloc[0]
    assert row.n_seeds == 2 and row.interval == "seeds x cases" and row.n_cases == 200
    assert row.recall_at_30 == pytest.approx(hits[hits.task == "search"].hit.mean())
    assert set(level[level.task == "rec"].segment) == {"all", "head", "torso"}
    table = ev.scheme_table(level, [("multitask", "rq_kmeans")])
    assert table.loc[0, "seeds"] == 2 and table.loc[0, "search_lo"] == row.ci_low
    assert ev.formatted(table).loc["multitask / rq_kmeans", "seeds"] == 2


def test_search_by_kind_and_known_item():
    n = 8
    targets = np.arange(n)
    queries = pd.DataFrame({"query_id": np.arange(n), "item_id": targets, "split": "test", "query": "q",
                            "kind": ["title"] * 4 + ["vague"] * 4, "n_matching": [1, 1, 3, 3, 1, 5, 5, 5]})
    rates = np.array([1, 1, 1, 1, 0, 0, 0, 0], dtype=float)  # titles always found, vague never
    hits = pd.concat([scheme_hits("multitask", [rates, rates], targets),
                      stats.hit_rows(predictions(targets, 1 - rates, decoding="bm25"), embedding="baseline",
                                     quantizer="bm25")], ignore_index=True)
    subsets, note = stats.search_subsets(hits, queries)
    assert note == ""
    table = stats.subset_table(hits, subsets).set_index(["quantizer", "subset"])
    assert table.loc[("rq_kmeans", "kind: title"), "recall_at_30"] == 1.0
    assert table.loc[("rq_kmeans", "kind: vague"), "recall_at_30"] == 0.0
    assert table.loc[("rq_kmeans", "known item"), "recall_at_30"] == pytest.approx(2 / 3)
    assert table.loc[("rq_kmeans", "known item"), "n_cases"] == 3
    assert table.loc[("bm25", "all"), "n_seeds"] == 1 and table.loc[("rq_kmeans", "all"), "n_seeds"] == 2
    assert table.loc[("bm25", "known item"), "recall_at_30"] == pytest.approx(1 / 3)
    wide = ev.subset_wide(table.reset_index())
    assert "known item (n=3)" in wide.columns and len(wide) == 2

    subsets, note = stats.search_subsets(hits, queries.drop(columns="n_matching"))
    assert "skipped" in note and "known item" not in set(subsets.subset)


def test_list_length_in_decoding_table():
    targets = np.random.default_rng(5).integers(0, 1000, 50)
    beam = predictions(targets, np.full(50, 0.5))
    diverse = predictions(targets, np.full(50, 0.5), decoding="diverse", length=30)
    diverse["ranked"] = [r[:12] + r[:12] for r in diverse.ranked]  # colliding groups: 12 distinct items
    hits = pd.concat([stats.hit_rows(f, embedding="multitask", quantizer="rq_kmeans") for f in (beam, diverse)])
    results = pd.DataFrame([{"embedding": "multitask", "quantizer": "rq_kmeans", "segment": "all", "seed": 0,
                             "task": "search", "protocol": "all", "decoding": d, "recall_at_30": 0.1}
                            for d in ("beam", "diverse")])
    table = results_io.decoding_table(results, ("multitask", "rq_kmeans"), 0, hits=hits)
    assert table.loc[("search", "all"), "beam list length"] == 30
    assert table.loc[("search", "all"), "diverse list length"] == 12


def test_hit_array_refuses_missing_cases():
    targets = np.arange(20)
    hits = scheme_hits("multitask", [np.full(20, 0.5)] * 2, targets)
    hits = hits[~((hits.seed == 1) & (hits.case_id == "q3"))]
    with pytest.raises(StudyInputError, match="same test cases"):
        stats.hit_array(hits)
