"""Recall@30 over seeds and cases: the two-way bootstrap, paired tests, Holm, power, per-kind breakdowns."""

import zlib

import numpy as np
import pandas as pd
import pytest

from jointsid_utils.config import EvaluationConfig
from jointsid_utils.errors import StudyInputError
from jointsid_utils.evaluation import report as ev
from jointsid_utils.evaluation import results as results_io
from jointsid_utils.evaluation import statistics as stats
from jointsid_utils.metrics import case_interval, set_relevance_recall
from finding_hits import finding_hits

EV = EvaluationConfig()  # the profiles' evaluation settings, passed explicitly as the notebooks pass the run's
POWER = {"alpha": EV.alpha, "power": EV.power}
SETTINGS = {**POWER, "level": EV.level, "decoding": EV.decoding}


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
                            embedding=embedding, quantizer=quantizer, k=EV.k)
             for s, rates in enumerate(rates_per_seed)]
    return pd.concat(parts, ignore_index=True)


def test_one_seed_is_the_case_interval_and_agreeing_seeds_add_nothing():
    values = (np.random.default_rng(3).random(400) < 0.2).astype(float)
    mean, lo, hi = stats.interval(values[None, :])
    assert mean == values.mean() and (lo, hi) == case_interval(values)
    half = 1.959964 * values.std(ddof=1) / np.sqrt(400)  # one seed, independent cases: the plain t (df 399 ~ z)
    assert hi - mean == pytest.approx(half, rel=0.01)
    # seeds that agree case by case add no seed variance: the same interval again
    m3, lo3, hi3 = stats.interval(np.repeat(values[None, :], 3, axis=0))
    assert m3 == pytest.approx(mean) and lo3 == pytest.approx(lo) and hi3 == pytest.approx(hi)


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


def test_item_clusters_widen_the_case_term():
    gen = np.random.default_rng(1)
    items = np.repeat(np.arange(100), 5)  # five queries per item, all as easy as their item
    hits = (gen.random(100) < 0.4)[items][None, :].astype(float)
    plain, clustered = stats.variance_parts(hits), stats.variance_parts(hits, items)
    assert clustered["n_items"] == 100 and plain["n_items"] == 500
    assert clustered["design_effect"] == pytest.approx(5 * 100 / 99 * 499 / 500, rel=0.02)
    assert clustered["se"] > 2 * plain["se"]


def _simulate(gen, n_seeds=3, n_items=300, seed_sd=0.3, item_sd=1.5):
    """Hits of a logistic model with a seed effect, an item effect shared by the item's 1-4 queries and a
    Bernoulli draw per (seed, case); the true mean is the population mean of the hit probability."""
    items = np.repeat(np.arange(n_items), gen.integers(1, 5, n_items))
    u = gen.normal(0, item_sd, n_items)[items] + gen.normal(0, 0.5, len(items))
    a = gen.normal(0, seed_sd, n_seeds)
    p = 1 / (1 + np.exp(-(-0.8 + a[:, None] + u[None, :])))
    return (gen.random(p.shape) < p).astype(float), items


def test_interval_covers_the_true_mean_about_95_percent():
    gen = np.random.default_rng(11)
    # seed, item and query effects sum to one normal on the logit scale
    truth = float(np.mean([np.mean(1 / (1 + np.exp(-(-0.8 + gen.normal(0, np.sqrt(0.09 + 2.25 + 0.25), 200_000)))))
                           for _ in range(5)]))
    covered, plain_covered, sims = 0, 0, 200
    for _ in range(sims):
        hits, items = _simulate(gen)
        _, lo, hi = stats.interval(hits, items)
        covered += lo <= truth <= hi
        flat = hits.ravel()  # the old view: every (seed, case) an independent case
        half = 1.96 * flat.std(ddof=1) / np.sqrt(flat.size)
        plain_covered += abs(flat.mean() - truth) <= half
    # a small seed share: the S - 1 df rule is conservative here (docs/STATISTICS.md), never below 95%
    assert covered / sims >= 0.93, covered / sims
    print(f"coverage {covered / sims:.3f}, plain case interval {plain_covered / sims:.3f}")
    assert plain_covered / sims < 0.85, plain_covered / sims


def test_holm_on_a_known_example():
    np.testing.assert_allclose(stats.holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(stats.holm([0.5, 0.6]), [1.0, 1.0])  # capped at 1, monotone
    assert len(stats.holm([])) == 0


def test_paired_test_identical_and_clearly_different():
    gen = np.random.default_rng(1)
    a = (gen.random((3, 400)) < 0.3).astype(float)
    same = stats.paired_test(a, a.copy(), level=EV.level)
    assert same["p_value"] == 1.0 and same["diff"] == 0.0 and same["cohens_d"] == 0.0
    assert same["n_units"] == 1200 and same["n_cases"] == 400 and same["n_seeds"] == 3
    better = np.maximum(a, gen.random((3, 400)) < 0.3)
    clear = stats.paired_test(better, a, level=EV.level)
    assert clear["p_value"] < 0.005 and 0 < clear["ci_low"] < clear["diff"] < clear["ci_high"]
    assert clear["cohens_d"] > 0.3
    with pytest.raises(StudyInputError, match="one shape"):
        stats.paired_test(a, a[:, :10], level=EV.level)


def test_minimum_detectable_difference_known_case():
    # (z_0.975 + z_0.8) / sqrt(100) = (1.95996 + 0.84162) / 10
    assert stats.minimum_detectable_difference(1.0, 100, **POWER) == pytest.approx(0.280158, abs=1e-6)
    assert stats.minimum_detectable_difference(0.02, 1, **POWER) == pytest.approx(0.02 * 2.801585, rel=1e-6)
    assert stats.minimum_detectable_difference(1.0, 100, alpha=0.005, power=EV.power) > 0.280158  # a Holm step is stricter
    with pytest.raises(StudyInputError):
        stats.minimum_detectable_difference(1.0, 0, **POWER)


def test_family_tests_holm_and_power_on_prediction_frames():
    targets = np.random.default_rng(2).integers(0, 1000, 300)
    hits = pd.concat([
        scheme_hits("multitask", [np.full(300, 0.5)] * 3, targets),
        scheme_hits("separate", [np.full(300, 0.1)] * 3, targets),
        scheme_hits("fused_svd", [np.full(300, 0.12)] * 3, targets)], ignore_index=True)
    tests = stats.family_tests(hits, stats.joint_comparisons("search"), "joint schemes, search", **SETTINGS)
    assert len(tests) == 3  # pairs with an untrained scheme are left out
    np.testing.assert_allclose(tests.p_holm, stats.holm(tests.p_value))
    by_pair = tests.set_index(["a", "b"])
    clear = by_pair.loc[("separate/rq_kmeans", "multitask/rq_kmeans")]
    assert clear.significant and clear["diff"] < -0.3 and clear.n_units == 900 and clear.m == 3
    assert not by_pair.loc[("separate/rq_kmeans", "fused_svd/rq_kmeans")].significant
    text, numbers = stats.power_statement(tests, **POWER)
    assert "search (300 cases x 3 seeds)" in text and 0 < numbers["mde_search"] < numbers["mde_search_holm_strictest"]
    shown = ev.tests_table(tests)
    assert {"a - b [95% CI]", "Holm p", "Cohen's d_z", "detectable (80%, alpha/m)"} <= set(shown.columns)
    loose = stats.minimum_detectable_difference(clear.se, alpha=0.05, power=EV.power, df=clear.df)
    strict = stats.minimum_detectable_difference(clear.se, alpha=0.05 / 3, power=EV.power, df=clear.df)
    assert clear.detectable == pytest.approx(strict) and strict > loose


def test_beyond_the_paper_family_against_the_incumbent():
    targets = np.random.default_rng(3).integers(0, 1000, 300)
    hits = pd.concat([scheme_hits("multitask", [np.full(300, 0.3)] * 3, targets),
                      scheme_hits("balanced_unique", [np.full(300, 0.6)] * 3, targets),
                      scheme_hits("multitask_cf", [np.full(300, 0.3)] * 3, targets)], ignore_index=True)
    out = stats.study_pair_tests(hits, candidates=["balanced_unique/rq_kmeans", "multitask_cf/rq_kmeans",
                                                   "shared_then_task/rq_kmeans"], evaluation=EV)
    beyond = out["beyond"].set_index("a")
    assert set(beyond.index) == {"balanced_unique/rq_kmeans", "multitask_cf/rq_kmeans"}  # untrained: left out
    assert (beyond.b == "multitask/rq_kmeans").all() and (beyond.family == "beyond the paper").all()
    assert beyond.loc["balanced_unique/rq_kmeans"].significant and not beyond.loc["multitask_cf/rq_kmeans"].significant
    assert out["power"]["significant_beyond_pairs"] == 1
    assert stats.study_pair_tests(hits, evaluation=EV)["beyond"].empty


def test_study_schemes_add_the_joint_constructions_on_request():
    from jointsid_utils.generator.orchestration import study_schemes
    from jointsid_utils.study import JOINT_SCHEMES

    assert len(study_schemes()) == 12 and not set(JOINT_SCHEMES) & set(study_schemes())
    assert study_schemes(include_joint_ids=True)[-len(JOINT_SCHEMES):] == list(JOINT_SCHEMES)


def test_f6_uses_known_item_cases_and_a_single_run_baseline():
    from jointsid_utils.evaluation import verdicts as vd

    hits = finding_hits(0.3)
    bm25 = hits[(hits.embedding == "content") & (hits.task == "search") & (hits.seed == 0)].assign(
        embedding="baseline", quantizer="bm25_tuned", decoding="bm25", hit=0.0)
    pairs = vd.finding_pairs(pd.concat([hits, bm25]), evaluation=EV, known_item_cases=[f"c{i}" for i in range(100)])
    assert (pairs["F6"].n_cases == 100).all() and (pairs["F6"].n_seeds == 3).all()
    row = vd.verdicts(pairs, alpha=EV.alpha).set_index("finding").loc["F6"]
    assert row.verdict == "reproduces" and row.task == "search"


def test_set_relevance_recall():
    ranked = [[1, 2, 3], [9, 8, 7], [5]]
    matching = [np.array([1, 2, 4, 6]), np.array([7, 9]), np.array([5, 6])]
    np.testing.assert_allclose(set_relevance_recall(ranked, matching, k=3), [2 / 3, 1.0, 0.5])
    frame = pd.DataFrame({"case_id": ["a", "b", "c"], "task": "search", "query_id": [0, 1, 2], "target": [1, 9, 5],
                          "ranked": ranked})
    sets = pd.Series([np.array([1, 2, 4, 6]), np.array([9]), np.array([5, 6])], index=[0, 1, 2])
    rows = stats.set_relevance_hits(frame, sets, embedding="multitask", quantizer="rq_kmeans", k=3)
    assert rows.case_id.tolist() == ["a", "c"]  # the known-item query b is not broad
    np.testing.assert_allclose(rows.hit, [2 / 3, 0.5])


def test_seed_level_table_feeds_scheme_table():
    targets = np.random.default_rng(4).integers(0, 1000, 200)
    hits = pd.concat([scheme_hits("multitask", [np.full(200, r) for r in (0.2, 0.4)], targets),
                      scheme_hits("multitask", [np.full(200, r) for r in (0.2, 0.4)], targets, task="rec")],
                     ignore_index=True)
    level = stats.seed_level_table(hits, head=np.unique(targets)[:20], level=EV.level, k=EV.k)
    row = level[(level.task == "search") & (level.segment == "all")].iloc[0]
    assert row.n_seeds == 2 and row.interval == "seeds x cases" and row.n_cases == 200
    assert row.recall_at_30 == pytest.approx(hits[hits.task == "search"].hit.mean())
    assert set(level[level.task == "rec"].segment) == {"all", "head", "torso"}
    table = ev.scheme_table(level, [("multitask", "rq_kmeans")])
    assert table.loc[0, "seeds"] == 2 and table.loc[0, "search_lo"] == row.ci_low
    assert ev.formatted(table).loc["multitask / rq_kmeans", "seeds"] == 2


def test_hits_and_tables_at_another_k():
    """k=5: a target at rank 6 to 30 is a hit at 30 and a miss at 5; the tables name their column by k and the
    report reads whichever column its frame has."""
    targets = np.arange(40)
    frame = predictions(targets, np.ones(40))
    frame["ranked"] = [list(r[1:10]) + [int(t)] if i % 2 else list(r)  # odd cases: the target at rank 10
                       for i, (t, r) in enumerate(zip(targets, frame.ranked))]
    at5 = stats.hit_rows(frame, embedding="multitask", quantizer="rq_kmeans", k=5)
    at30 = stats.hit_rows(frame, embedding="multitask", quantizer="rq_kmeans", k=30)
    assert at30.hit.mean() == 1.0 and at5.hit.mean() == 0.5 and (at5.list_length == 5).all()
    level = stats.seed_level_table(at5, level=EV.level, k=5)
    assert "recall_at_5" in level and "recall_at_30" not in level
    assert ev.scheme_table(level, [("multitask", "rq_kmeans")]).loc[0, "search"] == 0.5
    assert stats.variance_table(at5, k=5).recall_at_5.tolist() == [0.5]


def test_search_by_kind_and_known_item():
    n = 8
    targets = np.arange(n)
    queries = pd.DataFrame({"query_id": np.arange(n), "item_id": targets, "split": "test", "query": "q",
                            "kind": ["title"] * 4 + ["vague"] * 4, "n_matching_max": [1, 1, 3, 3, 1, 5, 5, 5]})
    rates = np.array([1, 1, 1, 1, 0, 0, 0, 0], dtype=float)  # titles always found, vague never
    hits = pd.concat([scheme_hits("multitask", [rates, rates], targets),
                      stats.hit_rows(predictions(targets, 1 - rates, decoding="bm25"), embedding="baseline",
                                     quantizer="bm25", k=EV.k)], ignore_index=True)
    subsets, note = stats.search_subsets(hits, queries)
    assert note == ""
    table = stats.subset_table(hits, subsets, level=EV.level, k=EV.k).set_index(["quantizer", "subset"])
    assert table.loc[("rq_kmeans", "kind: title"), "recall_at_30"] == 1.0
    assert table.loc[("rq_kmeans", "kind: vague"), "recall_at_30"] == 0.0
    assert table.loc[("rq_kmeans", "known item"), "recall_at_30"] == pytest.approx(2 / 3)
    assert table.loc[("rq_kmeans", "known item"), "n_cases"] == 3
    assert table.loc[("bm25", "all"), "n_seeds"] == 1 and table.loc[("rq_kmeans", "all"), "n_seeds"] == 2
    assert table.loc[("bm25", "known item"), "recall_at_30"] == pytest.approx(1 / 3)
    wide = ev.subset_wide(table.reset_index())
    assert "known item (n=3)" in wide.columns and len(wide) == 2

    subsets, note = stats.search_subsets(hits, queries.drop(columns="n_matching_max"))
    assert "skipped" in note and "known item" not in set(subsets.subset)


def test_list_length_in_decoding_table():
    targets = np.random.default_rng(5).integers(0, 1000, 50)
    beam = predictions(targets, np.full(50, 0.5))
    diverse = predictions(targets, np.full(50, 0.5), decoding="diverse", length=30)
    diverse["ranked"] = [r[:12] + r[:12] for r in diverse.ranked]  # colliding groups: 12 distinct items
    hits = pd.concat([stats.hit_rows(f, embedding="multitask", quantizer="rq_kmeans", k=EV.k) for f in (beam, diverse)])
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


def test_rec_findings_get_a_family_per_protocol():
    from jointsid_utils.evaluation import verdicts as vd

    hits = finding_hits(0.3, n=600, excluded_rec=0.1)
    pairs = vd.finding_pairs(hits, evaluation=EV)
    f1 = pairs["F1"]
    assert set(f1.rec_protocol) == {"all", "exclude_history"}
    assert set(f1.family) == {"F1", "F1, excl. history"}
    by_protocol = f1.groupby("rec_protocol")
    assert (by_protocol.m.first() == 4).all()  # the same m: search rows read "all" in both families
    searches = f1[f1.task == "search"].groupby("rec_protocol")["diff"].apply(list)
    assert searches["all"] == searches["exclude_history"]
    table = vd.verdicts(pairs, alpha=EV.alpha)
    rows = table[table.finding == "F1"]
    assert rows[["task", "rec_protocol"]].apply(tuple, axis=1).tolist() == [("search", "all"), ("rec", "all"),
                                                                            ("rec", "exclude_history")]
    f8 = table[table.finding == "F8"]
    assert f8.family.tolist() == ["F8", "F8, excl. history"] and (f8.task == "both").all()
    from jointsid_utils.evaluation.markdown import pairs_markdown, verdicts_markdown
    text = verdicts_markdown(table)
    assert "**F1** (rec, history excluded)" in text and "one-sided Holm p" in text
    shown = pairs_markdown(f1)
    assert shown.count("| search |") == 2 and shown.count("| rec, excl. history |") == 2  # search rows once
    assert "(one-sided)" in pairs_markdown(pairs["F8"]) and "(one-sided)" not in shown


def test_f7_rec_is_unpaired_against_sasrec_and_includes_dense_rec():
    from jointsid_utils.evaluation import verdicts as vd

    hits = finding_hits(0.3)
    rec = hits[(hits.embedding == "content") & (hits.task == "rec")]
    sasrec = pd.concat([rec[rec.seed == 0].assign(seed=s) for s in range(5)]).assign(
        embedding="baseline", quantizer="sasrec", decoding="sasrec")
    sasrec["hit"] = np.random.default_rng(3).random(len(sasrec)) < 0.25
    dense = rec[rec.seed == 0].assign(embedding="baseline", quantizer="dense_rec", decoding="dense", hit=0.0)
    pairs = vd.finding_pairs(pd.concat([hits, sasrec.astype({"hit": float}), dense]), evaluation=EV)["F7"]
    against = pairs.set_index("b")
    assert set(pairs.b) == {"baseline/sasrec", "baseline/dense_rec"}
    assert not against.loc["baseline/sasrec"].paired.any() and against.loc["baseline/dense_rec"].paired.all()
    assert (against.loc["baseline/sasrec"].recall_b.round(3) == round(float(sasrec.hit.mean()), 3)).all()
