"""The generic catalogue (docs/DATA.md): the MovieLens round trip and the ingestion policy's counted repairs.

Inputs the policy refuses are in tests/unit/test_bad_input.py, beside every other bad input.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from jointsid_utils.config import load_config
from jointsid_utils.data import catalogue as cat
from jointsid_utils.data import dataset as data
from jointsid_utils.data.movielens import ml100k_catalogue
from jointsid_utils.data.summary import repairs_table

FIXTURE = Path(__file__).parents[1] / "fixtures" / "ml_csv"


def small_items(n: int = 40) -> str:
    return "item_id,title,text,year,categories\n" + "".join(
        f'{i},Film {i},"Title: Film {i}. A story, number {i}.",{1990 + i % 20},Drama|Comedy\n' for i in range(1, n + 1))


def small_interactions(users: int = 30, per_user: int = 6) -> str:
    return "user_id,item_id,timestamp,rating\n" + "".join(
        f"{u},{(u * 7 + k) % 40 + 1},{1000 * u + k},4.0\n" for u in range(1, users + 1) for k in range(per_user))


def write(folder: Path, items: str | bytes, interactions: str | bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in (("items.csv", items), ("interactions.csv", interactions)):
        (folder / name).write_bytes(body if isinstance(body, bytes) else body.encode())
    return folder


def catalogue_cfg(path: Path, profile: str = "default", **extra):
    return load_config(profile, {"data.source": "catalogue", "data.path": str(path), **extra})


def repairs(items: pd.DataFrame) -> dict[str, int]:
    """The repairs that happened (the table also lists the policy's zero counts)."""
    return {k: v for k, v in items.attrs["repairs"].items() if v}


# ---------------------------------------------------------------------------------- round trip


def test_catalogue_without_attributes_or_year(tmp_path, runs_dir):
    """Titles and categories only (the acceptance run): year and the attributes stay empty, text is the user's."""
    body = ml100k_catalogue()
    items = body.items[["item_id", "title", "genres"]].assign(text=lambda f: "About " + f["title"])
    path = tmp_path / "cat"
    cat.write_catalogue(items, body.interactions, path)
    loaded, inter = data.prepare_data(catalogue_cfg(path, "smoke"))
    assert list(loaded.columns) == data.ITEM_COLUMNS and len(loaded) == 200 and inter["user_id"].nunique() == 150
    assert loaded["year"].isna().all() and loaded["runtime_min"].isna().all() and loaded["plot"].isna().all()
    assert (loaded["text"] == "About " + loaded["title"]).all()  # no enrichment: the catalogue brings its text
    assert loaded.set_index("source_id").loc["1", "genres"] == ["Animation", "Children's", "Comedy"]


# ---------------------------------------------------------------------------------- counted repairs


def test_clean_catalogue_needs_no_repair(tmp_path, runs_dir):
    items, inter = data.prepare_data(catalogue_cfg(write(tmp_path / "c", small_items(), small_interactions())))
    assert len(items) == 40 and len(inter) == 180 and repairs(items) == {}
    table = repairs_table(items)
    assert table["count"].sum() == 0 and cat.DUPLICATE_INTERACTIONS in table.index  # zeros are shown too


def test_exact_duplicates_are_dropped_and_counted(tmp_path, runs_dir):
    items_csv = small_items() + small_items().splitlines(keepends=True)[3]
    inter_csv = small_interactions() + "1,8,1000,4.0\n" * 2  # user 1's first row, twice more
    items, inter = data.prepare_data(catalogue_cfg(write(tmp_path / "c", items_csv, inter_csv)))
    assert repairs(items) == {cat.DUPLICATE_ITEMS: 1, cat.DUPLICATE_INTERACTIONS: 2}
    assert len(items) == 40 and len(inter) == 180
    assert repairs_table(items).loc[cat.DUPLICATE_INTERACTIONS, "count"] == 2


@pytest.mark.parametrize("mode, rows, label", [("keep", 181, cat.REPEATS["keep"]), ("last", 180, cat.REPEATS["last"])])
def test_repeat_consumption(tmp_path, runs_dir, mode, rows, label):
    inter_csv = small_interactions() + "1,8,99999,5.0\n"  # user 1 returns to item 8, last of all
    items, inter = data.prepare_data(catalogue_cfg(write(tmp_path / "c", small_items(), inter_csv),
                                                   **{"data.repeat_consumption": mode}))
    assert len(inter) == rows and repairs(items) == {label: 1}
    item8 = int(items.loc[items["source_id"] == "8", "item_id"].iloc[0])
    user1 = inter[inter["user_id"] == 0]
    kept = user1[user1["item_id"] == item8]
    assert list(kept["timestamp"]) == ([1000, 99999] if mode == "keep" else [99999])
    assert user1["split"].iloc[-1] == "test" and user1["item_id"].iloc[-1] == item8


def test_items_without_title_or_text_under_the_share_are_dropped(tmp_path, runs_dir):
    items_csv = small_items() + "41,,Text of a film without title,2000,Drama\n"
    inter_csv = small_interactions() + "1,41,5,3.0\n2,41,6,3.0\n"
    items, inter = data.prepare_data(catalogue_cfg(write(tmp_path / "c", items_csv, inter_csv)))
    assert repairs(items) == {cat.UNUSABLE_ITEMS: 1, cat.THEIR_INTERACTIONS: 2}
    assert "41" not in set(items["source_id"]) and len(inter) == 180
    blank_text = small_items() + "41,Film 41,   ,2000,Drama\n"
    items, _ = data.prepare_data(catalogue_cfg(write(tmp_path / "d", blank_text, small_interactions())))
    assert repairs(items) == {cat.UNUSABLE_ITEMS: 1}


def test_interactions_of_unknown_items_are_dropped_and_counted(tmp_path, runs_dir):
    inter_csv = small_interactions() + "1,999,5,4.0\n2,998,6,4.0\n"
    items, inter = data.prepare_data(catalogue_cfg(write(tmp_path / "c", small_items(), inter_csv)))
    assert repairs(items) == {cat.UNKNOWN_ITEMS: 2} and len(inter) == 180


def test_a_truncated_last_line_is_dropped_and_counted(tmp_path, runs_dir):
    items, inter = data.prepare_data(catalogue_cfg(write(tmp_path / "c", small_items(), small_interactions() + "5,3")))
    assert list(repairs(items).values()) == [1] and "interactions.csv" in next(iter(repairs(items)))
    assert len(inter) == 180


@pytest.mark.parametrize("sep, name", [(";", "';'"), ("\t", "tab")])
def test_separator_and_bom_are_detected(tmp_path, runs_dir, sep, name):
    plain = data.prepare_data(catalogue_cfg(write(tmp_path / "plain", small_items(), small_interactions())))
    bom = b"\xef\xbb\xbf"
    items_csv = bom + small_items().replace(",", sep).replace(f"{sep} number", ", number").encode()
    inter_csv = bom + small_interactions().replace(",", sep).encode()
    items, inter = data.prepare_data(catalogue_cfg(write(tmp_path / "other", items_csv, inter_csv)))
    assert repairs(items) == {"UTF-8 byte-order marks removed": 2, f"files read with separator {name}": 2}
    pd.testing.assert_frame_equal(items, plain[0], check_flags=False)
    pd.testing.assert_frame_equal(inter, plain[1])


def test_iso_timestamps_and_no_rating(tmp_path, runs_dir):
    seconds = pd.read_csv(pd.io.common.StringIO(small_interactions()))
    iso = seconds.assign(timestamp=pd.to_datetime(seconds["timestamp"], unit="s", utc=True)
                         .dt.strftime("%Y-%m-%dT%H:%M:%SZ")).drop(columns="rating")
    items, inter = data.prepare_data(catalogue_cfg(write(tmp_path / "c", small_items(), iso.to_csv(index=False))))
    assert sorted(inter["timestamp"]) == sorted(seconds["timestamp"]) and (inter["rating"] == 1.0).all()


def test_extra_columns_are_read_but_unused(tmp_path, runs_dir):
    items_csv = small_items().replace("categories\n", "categories,pages\n").replace("Comedy\n", "Comedy,300\n")
    items, _ = data.prepare_data(catalogue_cfg(write(tmp_path / "c", items_csv, small_interactions())))
    assert list(items.columns) == data.ITEM_COLUMNS and repairs(items) == {}


def test_movielens_export_gets_the_same_policy(tmp_path, runs_dir):
    """The issue's MovieLens export: a ';' movies.csv with a BOM, 1 untitled movie of 26, a duplicate rating."""
    cfg = {"data.source": "movielens-csv", "data.enrich": False}
    clean_items, clean_inter = data.load_dataset(load_config("default", {**cfg, "data.path": str(FIXTURE)}))
    movies = pd.read_csv(FIXTURE / "movies.csv", dtype=str)
    extra = pd.DataFrame({"movieId": [str(9000 + i) for i in range(16)], "genres": "Drama",
                          "title": [f"Extra Film {i} (2000)" for i in range(15)] + ["(2001)"]})  # the last: no title
    folder = tmp_path / "ml"
    folder.mkdir()
    (folder / "tags.csv").write_text((FIXTURE / "tags.csv").read_text())
    semicolons = pd.concat([movies, extra])[["movieId", "title", "genres"]].to_csv(sep=";", index=False)
    (folder / "movies.csv").write_bytes(b"\xef\xbb\xbf" + semicolons.encode())
    ratings = (FIXTURE / "ratings.csv").read_text()
    (folder / "ratings.csv").write_text(ratings + ratings.splitlines(keepends=True)[1] + "1,9015,3.0,1100001500\n")
    items, inter = data.load_dataset(load_config("default", {**cfg, "data.path": str(folder)}))
    assert repairs(items) == {"UTF-8 byte-order marks removed": 1, "files read with separator ';'": 1,
                              cat.UNUSABLE_ITEMS: 1, cat.THEIR_INTERACTIONS: 1, cat.DUPLICATE_INTERACTIONS: 1}
    pd.testing.assert_frame_equal(items, clean_items, check_flags=False)
    pd.testing.assert_frame_equal(inter, clean_inter)
