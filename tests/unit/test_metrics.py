"""Recall@30 through ranx, per-seed bootstrap intervals, baselines on toy cases (tests over seeds: test_statistics)."""

import numpy as np
import pandas as pd
import pytest

from jointsid_utils.errors import StudyInputError

from jointsid_utils.evaluation.baselines import bm25, dense, most_popular, random_baseline
from jointsid_utils.metrics import (RESULT_COLUMNS, append_results, bootstrap_ci, head_items, per_case_recall,
                                    query_segments, recall_rows, save_predictions)


def frame(targets, ranked, task="search", **cols):
    return pd.DataFrame({"case_id": [f"c{i}" for i in range(len(targets))], "task": task, "target": targets,
                         "ranked": ranked, **cols})


def test_recall_on_a_constructed_case():
    f = frame([1, 2, 3, 4], [[1, 9], [9, 8], list(range(100, 130)) + [3], []])
    np.testing.assert_array_equal(per_case_recall(f), [1, 0, 0, 0])  # item at rank 31 does not count
    rows = recall_rows(f, embedding="e", quantizer="q")
    assert list(rows.columns[:8]) == RESULT_COLUMNS
    assert rows.loc[0, "recall_at_30"] == 0.25 and rows.loc[0, "n_cases"] == 4


def test_search_is_also_scored_per_query_kind_and_on_known_items():
    queries = pd.DataFrame({"query_id": [10, 11, 12, 13], "kind": ["vague", "vague", "title_typo", "plot"],
                            "n_matching_max": pd.array([3, 1, 1, pd.NA], dtype="Int64")})
    segments = query_segments(queries)
    assert segments[10] == ["kind: vague"] and segments[11] == ["kind: vague", "known item"]
    assert segments[13] == ["kind: plot"]  # unknown n_matching_max is not a known item
    f = frame([1, 2, 3, 4], [[1], [9], [3], [4]], query_id=[10, 11, 12, 13])
    seg = recall_rows(f, embedding="e", quantizer="q", segments_of_query=segments).set_index("segment")
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
    rows = recall_rows(f, embedding="e", quantizer="q", head=head)
    seg = rows.set_index("segment")["recall_at_30"]
    assert seg["head"] == 1.0 and seg["torso"] == 0.5
    path = append_results(rows, "smoke")
    append_results(rows, "smoke")  # a rerun replaces, not duplicates
    assert len(pd.read_csv(path)) == len(rows)
    paths = save_predictions(f.assign(seed=0, decoding="beam"), "smoke", "e", "q")
    assert paths[0].name == "e__q__rec.parquet" and len(pd.read_parquet(paths[0])) == 3


def test_baselines_are_sane():
    n = 200
    items = pd.DataFrame({"item_id": np.arange(n), "text": [f"movie number{i} about topic{i % 7}" for i in range(n)]})
    cases = pd.DataFrame({"case_id": [f"q{i}" for i in range(50)], "query": [f"number{i}" for i in range(50)],
                          "target": np.arange(50)})
    assert per_case_recall(bm25(cases, items)).mean() == 1.0
    rnd = random_baseline(cases, "search", n, seed=0)
    assert all(len(set(r)) == 30 for r in rnd["ranked"])
    assert 0.05 < per_case_recall(rnd).mean() < 0.3  # about 30 / 200
    inter = pd.DataFrame({"item_id": np.repeat(np.arange(40), np.arange(40, 0, -1)), "split": "train"})
    rec = pd.DataFrame({"case_id": ["u0", "u1"], "user_id": [0, 1], "target": [0, 35],
                        "history": [np.array([1, 2]), np.arange(0, 30)]})
    mp = most_popular(rec, inter)
    allp = mp[mp.protocol == "all"]["ranked"].tolist()
    excl = mp[mp.protocol == "exclude_history"]["ranked"].tolist()
    assert allp[0] == list(range(30))
    assert excl[1] == list(range(30, 40)) and 1 not in excl[0]


def test_dense_baseline_on_the_given_cases():
    gen = np.random.default_rng(0)
    items = gen.normal(size=(100, 16)).astype(np.float32)
    cases = pd.DataFrame({"case_id": [f"q{i}" for i in range(10)], "query": "x", "target": np.arange(10)})
    search = dense(cases, "search", items, query_vectors=items[:10])
    assert per_case_recall(search).mean() == 1.0 and set(search.decoding) == {"dense"}
    rec = pd.DataFrame({"case_id": ["u0", "u1"], "user_id": [0, 1], "target": [5, 6],
                        "history": [np.array([5]), np.array([6, 7])]})
    out = dense(rec, "rec", items, history_k=1)
    allp, excl = out[out.protocol == "all"], out[out.protocol == "exclude_history"]
    assert per_case_recall(allp).tolist() == [1.0, 0.0]  # u0's mean-of-history is the target's own vector
    assert 5 not in excl.ranked.iloc[0] and 7 not in excl.ranked.iloc[1]
    with pytest.raises(StudyInputError, match="query vector"):
        dense(cases, "search", items)
