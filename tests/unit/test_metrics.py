"""Recall@k through ranx (the paper's k=30, and another k), per-seed bootstrap intervals, baselines on toy cases
(tests over seeds: test_statistics)."""

import numpy as np
import pandas as pd
import pytest

from jointsid_utils.errors import StudyInputError

from jointsid_utils.evaluation.baselines import bm25, dense, most_popular, random_baseline
from jointsid_utils.metrics import (append_results, bootstrap_ci, head_items, per_case_recall, query_segments,
                                    recall_column, recall_column_in, recall_rows, result_columns, results_file,
                                    save_predictions, score_and_save)


def frame(targets, ranked, task="search", **cols):
    return pd.DataFrame({"case_id": [f"c{i}" for i in range(len(targets))], "task": task, "target": targets,
                         "ranked": ranked, **cols})


def test_recall_on_a_constructed_case():
    f = frame([1, 2, 3, 4], [[1, 9], [9, 8], list(range(100, 130)) + [3], []])
    np.testing.assert_array_equal(per_case_recall(f, k=30), [1, 0, 0, 0])  # item at rank 31 does not count
    rows = recall_rows(f, embedding="e", quantizer="q", k=30)
    assert list(rows.columns[:8]) == result_columns(30)
    assert result_columns(30)[3] == "recall_at_30" and results_file(30) == "recall_at_30.csv"  # as in STUDY.md §4
    assert rows.loc[0, "recall_at_30"] == 0.25 and rows.loc[0, "n_cases"] == 4


def test_another_k_flows_through_scores_columns_and_files(runs_dir):
    """k=5: the lists are cut at 5, the column and the results file carry 5, and readers find the column."""
    f = frame([1, 2, 3, 4], [[1, 9], [9, 8, 7, 6, 2], [9, 8, 7, 6, 5, 3], []])
    np.testing.assert_array_equal(per_case_recall(f, k=5), [1, 1, 0, 0])  # item at rank 6 does not count at 5
    np.testing.assert_array_equal(per_case_recall(f, k=30), [1, 1, 1, 0])
    rows = recall_rows(f, embedding="e", quantizer="q", k=5)
    assert list(rows.columns[:8]) == result_columns(5) and recall_column(5) == "recall_at_5"
    assert "recall_at_30" not in rows and rows.loc[0, "recall_at_5"] == 0.5 and recall_column_in(rows) == "recall_at_5"
    inter = pd.DataFrame({"item_id": np.arange(20), "split": "train"})
    scored = score_and_save(f.assign(seed=0), "smoke", "e", "q", inter, k=5)
    results = runs_dir / "smoke" / "results"
    assert (results / "recall_at_5.csv").exists() and not (results / "recall_at_30.csv").exists()
    pd.testing.assert_series_equal(pd.read_csv(results / "recall_at_5.csv")["recall_at_5"], scored["recall_at_5"])
    from jointsid_utils.evaluation.results import load_hits

    hits5, hits30 = (load_hits("smoke", [("e", "q")], k=k) for k in (5, 30))  # one hits cache entry per k
    assert hits5.hit.tolist() == [1, 1, 0, 0] and hits30.hit.tolist() == [1, 1, 1, 0]
    with pytest.raises(StudyInputError, match="one recall_at_<k> column"):
        recall_column_in(rows.assign(recall_at_30=0.0))


def test_search_is_also_scored_per_query_kind_and_on_known_items():
    queries = pd.DataFrame({"query_id": [10, 11, 12, 13], "kind": ["vague", "vague", "title_typo", "plot"],
                            "n_matching_max": pd.array([3, 1, 1, pd.NA], dtype="Int64")})
    segments = query_segments(queries)
    assert segments[10] == ["kind: vague"] and segments[11] == ["kind: vague", "known item"]
    assert segments[13] == ["kind: plot"]  # unknown n_matching_max is not a known item
    f = frame([1, 2, 3, 4], [[1], [9], [3], [4]], query_id=[10, 11, 12, 13])
    seg = recall_rows(f, embedding="e", quantizer="q", k=30, segments_of_query=segments).set_index("segment")
    assert seg.loc["all", "recall_at_30"] == 0.75
    assert seg.loc["kind: vague", "recall_at_30"] == 0.5 and seg.loc["kind: vague", "n_cases"] == 2
    assert seg.loc["known item", "recall_at_30"] == 0.5 and seg.loc["known item", "n_cases"] == 2
    assert query_segments(queries.drop(columns="kind")) == {}


def test_case_interval_contains_point_and_clusters_widen_it():
    values = (np.random.default_rng(0).random(500) < 0.3).astype(float)
    lo, hi = bootstrap_ci(values)
    assert lo < values.mean() < hi and hi - lo < 0.12
    items = np.repeat(np.arange(100), 5)
    shared = np.repeat(values[:100], 5)  # five queries per item, found or missed together
    plain, clustered = bootstrap_ci(shared), bootstrap_ci(shared, items)
    assert clustered[1] - clustered[0] > 2 * (plain[1] - plain[0])


def test_head_torso_split_and_results_file(runs_dir):
    inter = pd.DataFrame({"item_id": [0] * 50 + list(range(1, 100)), "split": "train"})
    head = head_items(inter)
    assert list(head) == [0]
    f = frame([0, 5, 6], [[0], [5], [1]], task="rec", protocol="all")
    rows = recall_rows(f, embedding="e", quantizer="q", k=30, head=head)
    seg = rows.set_index("segment")["recall_at_30"]
    assert seg["head"] == 1.0 and seg["torso"] == 0.5
    path = append_results(rows, "smoke", k=30)
    append_results(rows, "smoke", k=30)  # a rerun replaces, not duplicates
    assert path.name == "recall_at_30.csv"
    assert len(pd.read_csv(path)) == len(rows)
    paths = save_predictions(f.assign(seed=0, decoding="beam"), "smoke", "e", "q")
    assert paths[0].name == "e__q__rec.parquet" and len(pd.read_parquet(paths[0])) == 3


def test_baselines_are_sane():
    n = 200
    items = pd.DataFrame({"item_id": np.arange(n), "text": [f"movie number{i} about topic{i % 7}" for i in range(n)]})
    cases = pd.DataFrame({"case_id": [f"q{i}" for i in range(50)], "query": [f"number{i}" for i in range(50)],
                          "target": np.arange(50)})
    assert per_case_recall(bm25(cases, items, k=30), k=30).mean() == 1.0
    rnd = random_baseline(cases, "search", n, k=30, seed=0)
    assert all(len(set(r)) == 30 for r in rnd["ranked"])
    assert 0.05 < per_case_recall(rnd, k=30).mean() < 0.3  # about 30 / 200
    assert all(len(set(r)) == 5 for r in random_baseline(cases, "search", n, k=5, seed=0)["ranked"])
    inter = pd.DataFrame({"item_id": np.repeat(np.arange(40), np.arange(40, 0, -1)), "split": "train"})
    rec = pd.DataFrame({"case_id": ["u0", "u1"], "user_id": [0, 1], "target": [0, 35],
                        "history": [np.array([1, 2]), np.arange(0, 30)]})
    mp = most_popular(rec, inter, k=30)
    allp = mp[mp.protocol == "all"]["ranked"].tolist()
    excl = mp[mp.protocol == "exclude_history"]["ranked"].tolist()
    assert allp[0] == list(range(30))
    assert excl[1] == list(range(30, 40)) and 1 not in excl[0]


def test_dense_baseline_on_the_given_cases():
    gen = np.random.default_rng(0)
    items = gen.normal(size=(100, 16)).astype(np.float32)
    cases = pd.DataFrame({"case_id": [f"q{i}" for i in range(10)], "query": "x", "target": np.arange(10)})
    search = dense(cases, "search", items, query_vectors=items[:10], k=30)
    assert per_case_recall(search, k=30).mean() == 1.0 and set(search.decoding) == {"dense"}
    rec = pd.DataFrame({"case_id": ["u0", "u1"], "user_id": [0, 1], "target": [5, 6],
                        "history": [np.array([5]), np.array([6, 7])]})
    out = dense(rec, "rec", items, history_k=1, k=30)
    allp, excl = out[out.protocol == "all"], out[out.protocol == "exclude_history"]
    assert per_case_recall(allp, k=30).tolist() == [1.0, 0.0]  # u0's mean-of-history is the target's own vector
    assert 5 not in excl.ranked.iloc[0] and 7 not in excl.ranked.iloc[1]
    with pytest.raises(StudyInputError, match="query vector"):
        dense(cases, "search", items, k=30)
