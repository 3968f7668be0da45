"""The offline template query generator: determinism, distinctness, the equal-mix split, kinds, no title
copying, the ``n_matching_min/max`` interval, and no text shared between items."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from queries_fixture import make_items

from jointsid_utils.config import load_config
from jointsid_utils.errors import StudyInputError
from jointsid_utils.queries.common import QUERY_COLUMNS, exact_title_share
from jointsid_utils.queries.matching import (Catalogue, Constraint, matching_item_sets, normalise_query,
                                             parse_constraint, title_key)
from jointsid_utils.queries.splits import SPLITS, assign_splits, strata
from jointsid_utils.queries.stage import generate_queries, kind_table, prepare_queries, query_report, split_balance
from jointsid_utils.queries.templates import KINDS, catalogue_kinds, template_queries


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


def test_n_matching_interval_recounts_from_the_saved_constraint_and_counts_the_own_item(items, queries):
    catalogue = Catalogue(items)
    for item_id, constraint, low, high in zip(queries["item_id"], queries["constraint"], queries["n_matching_min"],
                                              queries["n_matching_max"]):
        sure, maybe = (catalogue.matches(parse_constraint(constraint), maybe=m) for m in (False, True))
        assert item_id in sure and sure <= maybe and (len(sure), len(maybe)) == (low, high), (item_id, constraint)
    assert (queries["n_matching_min"] >= 1).all() and (queries["n_matching_min"] <= queries["n_matching_max"]).all()
    # a sliced catalogue counts over the slice
    part = template_queries(items.iloc[5:16], load_config("default"))
    assert part["n_matching_max"].max() <= 11 and part["item_id"].between(5, 15).all()


def test_twenty_distinct_nonempty_queries_per_item(queries):
    assert queries["query"].notna().all()
    assert (queries["query"].str.strip().str.len() > 0).all()
    per_item = queries.groupby("item_id")["query"]
    assert (per_item.size() == 20).all()
    assert (per_item.nunique() == 20).all()
    normalised = queries["query"].str.lower().str.replace(r"[^a-z0-9]+", " ", regex=True).str.strip()
    assert (normalised.groupby(queries["item_id"]).nunique() == 20).all()


def test_nine_train_one_validation_ten_test_per_item(queries):
    counts = queries.groupby(["item_id", "split"]).size().unstack()
    assert list(counts.columns) == sorted(SPLITS)
    assert (counts["train"] == 9).all() and (counts["validation"] == 1).all() and (counts["test"] == 10).all()


def stratum_gaps(queries: pd.DataFrame) -> np.ndarray:
    """Per (stratum, split): the count minus the stratum's size times the split's share of all queries."""
    counts = queries.assign(stratum=strata(queries).to_numpy()).groupby(["stratum", "split"]).size().unstack()
    counts = counts.reindex(columns=list(SPLITS)).fillna(0)
    share = counts.sum(axis=0) / counts.to_numpy().sum()
    return (counts - np.outer(counts.sum(axis=1), share)).to_numpy()


def test_split_keeps_item_quotas_and_gives_every_stratum_equal_shares():
    gen = np.random.default_rng(3)
    # 300 items whose mixes differ a lot: item i leans to stratum i % 4
    items = np.repeat(np.arange(300), 20)
    lean = items % 4
    stratum = np.where(gen.random(len(items)) < 0.6, lean, gen.integers(0, 6, len(items))).astype(str)
    labels = assign_splits(items, stratum, (9, 1, 10), seed=0)
    frame = pd.DataFrame({"item": items, "stratum": stratum, "split": labels})
    per_item = frame.groupby(["item", "split"]).size().unstack()
    assert (per_item["train"] == 9).all() and (per_item["validation"] == 1).all() and (per_item["test"] == 10).all()
    counts = frame.groupby(["stratum", "split"]).size().unstack().reindex(columns=list(SPLITS)).fillna(0)
    target = np.outer(counts.sum(axis=1), [9 / 20, 1 / 20, 10 / 20])
    assert np.abs(counts.to_numpy() - target).max() <= 1.0
    np.testing.assert_array_equal(labels, assign_splits(items, stratum, (9, 1, 10), seed=0))
    assert (labels != assign_splits(items, stratum, (9, 1, 10), seed=1)).any()


def test_an_item_that_lost_queries_loses_train_ones_first():
    items = np.array([0] * 20 + [1] * 12 + [2] * 5)
    labels = assign_splits(items, np.array(["a"] * len(items)), (9, 1, 10), seed=0)
    counts = pd.crosstab(items, labels).reindex(columns=list(SPLITS), fill_value=0)
    assert counts.to_numpy().tolist() == [[9, 1, 10], [1, 1, 10], [0, 0, 5]]


def test_no_text_is_shared_by_two_queries_in_any_split(queries):
    key = queries["query"].map(normalise_query)
    assert key.is_unique
    report = query_report(queries, make_items())
    assert report["held_out_texts_shared"] == 0 and report["items_sharing_a_query"] == 0


def test_hand_checked_n_matching():
    items = pd.DataFrame({
        "item_id": [0, 1, 2, 3, 4], "title": ["Heat", "Heat Wave", "The Heat", "Sabrina", "Sabrina"],
        "year": [1995, 1995, 1987, 1954, 1995],
        "genres": [["Action", "Crime"], ["Action"], ["Comedy"], ["Comedy", "Romance"], ["Comedy", "Romance"]],
        "runtime_min": [170, 95, None, 113, 127], "imdb_rating": [8.3, 5.0, 6.1, 7.6, 6.3],
        "mpaa": ["R", None, "R", None, "PG"],
        "text": ["Heat. thieves and a detective", "Heat Wave. a summer", "The Heat", "Sabrina. chauffeur", "x"]})
    c = Catalogue(items)
    assert c.count(Constraint()) == 5
    assert c.count(Constraint(genres=frozenset({"Action"}), years=(1990, 1999))) == 2  # "a 90s action movie"
    assert c.count(Constraint(genres=frozenset({"Action", "Crime"}), years=(1990, 1999))) == 1
    assert c.count(Constraint(genres=frozenset({"Comedy"}), years=(1950, 1959))) == 1
    assert c.count(Constraint(title_words=frozenset({"heat"}))) == 3
    assert c.count(Constraint(title=title_key("Sabrina"))) == 2  # "sabrnia movie": both Sabrinas
    assert c.count(Constraint(title=title_key("Heat"))) == 2  # "The Heat" drops its article
    assert c.count(Constraint(runtime=(90, 126))) == 2  # 95 and 113; unknown runtime never fits
    assert c.count(Constraint(rating=(7.0, 10.01))) == 2 and c.count(Constraint(certificate="R")) == 2
    assert c.count(Constraint(text_words=frozenset({"thieves", "detective"}))) == 1
    assert c.count(Constraint(genres=frozenset({"Comedy"}), rating=(6.0, 7.0), years=(1994, 1996))) == 1
    # n_matching_max: an unknown attribute may match (Heat Wave has no certificate, The Heat no runtime)
    assert c.count_max(Constraint(runtime=(90, 126))) == 3 and c.count_max(Constraint(certificate="R")) == 4
    assert c.count_max(Constraint(genres=frozenset({"Action"}), certificate="R")) == 2
    assert c.count_max(Constraint(genres=frozenset({"Comedy"}), rating=(6.0, 7.0), years=(1994, 1996))) == 1
    assert c.count_max(Constraint(text_words=frozenset({"thieves", "detective"}))) == 1  # no plot column: text known
    # a placeholder item with nothing known (MovieLens's "unknown") may not fit every description
    blank = pd.DataFrame({"item_id": [5], "title": ["unknown"], "year": [None], "genres": [["unknown"]],
                          "runtime_min": [None], "imdb_rating": [None], "mpaa": [None], "text": ["unknown"]})
    assert Catalogue(pd.concat([items, blank], ignore_index=True)).count_max(Constraint(certificate="R")) == 4
    queries = pd.DataFrame({"query_id": [10, 11, 12, 13], "item_id": [0, 3, 1, 2],
                            "constraint": ["genres=Action; years=1990..1999", "title=sabrina", "", "any item"]})
    sets = matching_item_sets(queries, items)
    assert list(sets.index) == [10, 11, 12, 13] and all(v.dtype == np.int64 for v in sets)
    assert [v.tolist() for v in sets] == [[0, 1], [3, 4], [1], [2]]


@pytest.fixture(scope="module")
def smoke_queries() -> pd.DataFrame:
    from jointsid_utils.data.dataset import load_dataset
    cfg = load_config("smoke")
    items, _ = load_dataset(cfg)
    return template_queries(items, cfg)


def test_equal_mix_across_the_three_splits_on_smoke_data(smoke_queries):
    queries = smoke_queries
    assert np.abs(stratum_gaps(queries)).max() <= 1.0  # every stratum within one query of its share per split
    table, p_values = split_balance(queries)
    assert (p_values.drop("all strata") > 0.05).all() and p_values["all strata"] > 0.05
    shares = table.xs("share", axis=1, level=1)
    assert list(shares.columns) == list(SPLITS) and (shares.max(axis=1) - shares.min(axis=1)).max() < 0.01
    assert {"broad", "known-item"} <= set(table.index.get_level_values("breadth"))
    per_item = queries.groupby(["item_id", "split"]).size().unstack()
    assert (per_item["test"] == 10).all() and (per_item["validation"] == 1).all()
    assert queries["query"].map(normalise_query).is_unique
    known_item = queries["n_matching_max"].eq(1).mean()
    assert 0.2 < known_item < 0.9  # most slots are narrowed until no other item may fit them
    table = kind_table(queries)
    assert list(table.columns.get_level_values(0).unique()) == list(SPLITS)


def test_kinds_from_whatever_the_catalogue_has(items, caplog):
    bare = items[["item_id", "title", "year", "genres", "text"]]
    kinds, skipped = catalogue_kinds(bare)
    assert set(skipped) == {"runtime", "rating", "certificate", "tag"} and "no runtime_min column" in skipped["runtime"]
    with caplog.at_level("INFO", logger="jointsid_utils"):
        queries = template_queries(bare, load_config("default"))
    assert "kinds skipped" in caplog.text and "certificate (no mpaa column)" in caplog.text
    assert set(queries["kind"]) <= set(kinds) and {"title_partial", "title_typo", "genre_era"} <= set(queries["kind"])
    assert (queries.groupby("item_id").size() == 20).all()
    assert query_report(queries, bare)["skipped_kinds"] == skipped
    unknown_runtime = items.assign(runtime_min=pd.array([None] * len(items), dtype="Int64"))
    assert catalogue_kinds(unknown_runtime)[1] == {"runtime": "no known runtime_min value"}


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
    test = queries.loc[queries.split == "test", "n_matching_max"]
    assert report["broad_share"]["test"] == round(float((test > 1).mean()), 4)


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
    assert (q[q["split"] == "test"].groupby("item_id").size() == 4).all()


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
