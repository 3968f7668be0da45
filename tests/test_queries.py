"""The offline template query generator: determinism, distinctness, split, kinds, no title copying."""

from __future__ import annotations

import pandas as pd
import pytest
from queries_fixture import make_items

from jointsid_utils.config import load_config
from jointsid_utils.errors import StudyInputError
from jointsid_utils.queries.common import QUERY_COLUMNS, exact_title_share
from jointsid_utils.queries.stage import generate_queries, prepare_queries, query_report
from jointsid_utils.queries.templates import KINDS, template_queries


@pytest.fixture(scope="module")
def items() -> pd.DataFrame:
    return make_items()


@pytest.fixture(scope="module")
def queries(items) -> pd.DataFrame:
    return generate_queries(items, load_config("default"))


def test_schema_and_stable_ids(queries, items):
    assert list(queries.columns) == QUERY_COLUMNS
    assert queries["query_id"].dtype == "int64" and queries["item_id"].dtype == "int64"
    assert queries["query_id"].tolist() == list(range(len(queries)))
    assert queries["item_id"].is_monotonic_increasing
    assert set(queries["source"]) == {"template"}
    assert len(queries) == 20 * len(items)


def test_same_seed_same_frame_other_seed_differs(items, queries):
    pd.testing.assert_frame_equal(queries, generate_queries(items, load_config("default")))
    other = generate_queries(items, load_config("default", {"seed": 1}))
    assert (other["query"] != queries["query"]).mean() > 0.5


def test_slicing_the_catalogue_keeps_each_items_queries(items, queries):
    # per-item seeds: a slice keeps every item's queries, except that plot keywords use the idf of the
    # catalogue's plots, so items with a plot may change
    part = template_queries(items.iloc[5:16], load_config("default"))
    no_plot = items.loc[items["plot"].isna(), "item_id"]
    cols = ["item_id", "query", "kind", "split"]
    assert part[part["item_id"].isin(no_plot)][cols].values.tolist() == \
        queries[queries["item_id"].between(5, 15) & queries["item_id"].isin(no_plot)][cols].values.tolist()


def test_twenty_distinct_nonempty_queries_per_item(queries):
    assert queries["query"].notna().all()
    assert (queries["query"].str.strip().str.len() > 0).all()
    per_item = queries.groupby("item_id")["query"]
    assert (per_item.size() == 20).all()
    assert (per_item.nunique() == 20).all()
    normalised = queries["query"].str.lower().str.replace(r"[^a-z0-9]+", " ", regex=True).str.strip()
    assert (normalised.groupby(queries["item_id"]).nunique() == 20).all()


def test_exactly_ten_train_ten_test_with_kinds_in_both(queries):
    counts = queries.groupby(["item_id", "split"]).size().unstack()
    assert (counts["train"] == 10).all() and (counts["test"] == 10).all()
    # stratified: a kind with at least 2 queries in an item appears in both of its splits
    per_kind = queries.groupby(["item_id", "kind"])["split"].agg(["size", "nunique"])
    assert (per_kind.loc[per_kind["size"] >= 2, "nunique"] == 2).all()


def test_every_kind_present_and_mixed_per_item(queries, items):
    assert set(queries["kind"]) == set(KINDS)
    with_metadata = queries[queries["item_id"].isin(items.loc[items["year"].notna(), "item_id"])]
    assert (with_metadata.groupby("item_id")["kind"].nunique() >= 3).all()


def test_exact_title_share_below_ten_percent(queries, items):
    share = exact_title_share(queries, items)
    assert share < 0.10
    report = query_report(queries, items)
    assert report["exact_title_share"] == round(share, 4)
    assert report["min_distinct_per_item"] == 20


def test_attribute_and_plot_kinds_only_where_known(queries, items):
    kinds = queries.groupby("item_id")["kind"].agg(set)
    meta = items.set_index("item_id")
    for item_id, present in kinds.items():
        row = meta.loc[item_id]
        assert ("runtime" in present) <= pd.notna(row["runtime_min"])
        assert ("rating" in present) <= pd.notna(row["imdb_rating"])
        assert ("certificate" in present) <= pd.notna(row["mpaa"])
        assert ("plot" in present) <= pd.notna(row["plot"])
        assert ("tag" in present) <= (len(row["tags"]) > 0)
        assert ("title_partial" in present) <= (len(row["title"].split()) > 1)


def test_partial_titles_never_whole_and_typos_differ(queries, items):
    titles = items.set_index("item_id")["title"]
    for kind in ("title_partial", "title_typo"):
        rows = queries[queries["kind"] == kind]
        assert not any(titles[i].lower() in q.lower() for i, q in zip(rows["item_id"], rows["query"]))


def test_split_sizes_follow_config(items):
    cfg = load_config("default", {"queries.per_item": 8, "queries.train_per_item": 3})
    q = template_queries(items.iloc[:4], cfg)
    assert (q.groupby("item_id").size() == 8).all()
    assert (q[q["split"] == "train"].groupby("item_id").size() == 3).all()


def test_bad_inputs_fail_with_one_sentence(items):
    with pytest.raises(StudyInputError, match="title"):
        generate_queries(items.drop(columns=["title"]), load_config("default"))
    with pytest.raises(StudyInputError, match="train_per_item"):
        generate_queries(items, load_config("default", {"queries.train_per_item": 30}))
    with pytest.raises(StudyInputError, match="backend"):
        generate_queries(items, load_config("default", {"queries.backend": "gpt"}))


def test_prepare_queries_caches_and_rebuilds_on_change(items, tmp_path):
    cfg = load_config("default")
    first = prepare_queries(items, cfg, tmp_path)
    path = tmp_path / "queries.parquet"
    stamp = path.stat().st_mtime_ns
    again = prepare_queries(items, cfg, tmp_path)
    assert path.stat().st_mtime_ns == stamp
    pd.testing.assert_frame_equal(first, again)
    changed = items.copy()
    changed.loc[0, "title"] = "Toy Story 2"
    rebuilt = prepare_queries(changed, cfg, tmp_path)
    assert path.stat().st_mtime_ns != stamp
    assert not rebuilt[rebuilt["item_id"] == 0]["query"].equals(first[first["item_id"] == 0]["query"])
