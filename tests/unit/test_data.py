"""Loaders, slicing, enrichment and the leave-last-out split (STUDY.md §4 schema)."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jointsid_utils.config import load_config
from jointsid_utils.data import dataset as data
from jointsid_utils.data.split import INTERACTION_COLUMNS, split_leave_last_out
from jointsid_utils.data.titles import move_article, normalise_title, split_title_year
from jointsid_utils.errors import StudyInputError
from run_outputs import nothing_published

FIXTURE = Path(__file__).parents[1] / "fixtures" / "ml_csv"


def csv_cfg(path, **extra):
    overrides = {"data.source": "movielens-csv", "data.path": str(path), "data.enrich": False}
    overrides.update(extra)
    return load_config("default", overrides)


@pytest.fixture(scope="module")
def ml100k():
    return data.load_dataset(load_config("default"))


def check_schema(items: pd.DataFrame, inter: pd.DataFrame) -> None:
    assert list(items.columns) == data.ITEM_COLUMNS
    assert list(inter.columns) == INTERACTION_COLUMNS
    assert items["item_id"].dtype == np.int64
    assert (items["item_id"].to_numpy() == np.arange(len(items))).all()
    assert str(items["year"].dtype) == "Int64" and str(items["runtime_min"].dtype) == "Int64"
    assert all(isinstance(g, list) for g in items["genres"]) and all(isinstance(t, list) for t in items["tags"])
    assert items["text"].str.startswith("Title: ").all()
    assert inter["user_id"].dtype == np.int64 and inter["item_id"].dtype == np.int64
    assert inter["timestamp"].dtype == np.int64 and inter["rating"].dtype == np.float32
    users = np.sort(inter["user_id"].unique())
    assert (users == np.arange(len(users))).all()
    assert set(inter["item_id"]) == set(items["item_id"])  # no item without interactions
    assert set(inter["split"]) <= {"train", "validation", "test"}
    key = inter[["user_id", "timestamp"]]  # time order; ties keep a seeded order, not item id
    assert key.equals(key.sort_values(["user_id", "timestamp"]).reset_index(drop=True))
    per_user = inter.groupby("user_id")["split"].value_counts().unstack(fill_value=0)
    assert (per_user["test"] == 1).all() and (per_user["validation"] == 1).all()
    # test is each user's last interaction, validation the one before
    last = inter.groupby("user_id").tail(2)
    assert (last.groupby("user_id")["split"].agg(list) == pd.Series([["validation", "test"]] * len(users))).all()


def test_ml100k_loads_whole(ml100k):
    items, inter = ml100k
    check_schema(items, inter)
    assert len(items) == 1682 and inter["user_id"].nunique() == 943 and len(inter) == 100_000
    assert (inter["split"] == "test").sum() == 943
    toy = items.iloc[0]
    assert toy["source_id"] == "1" and toy["title"] == "Toy Story" and toy["year"] == 1995
    assert toy["genres"] == ["Animation", "Children's", "Comedy"]
    assert "The Usual Suspects" in set(items["title"])  # article moved to the front
    assert items["title"].str.contains(r"\(\d{4}\)$").sum() == 0  # no year left in a title


def test_ml100k_enrichment_counts(ml100k):
    items, _ = ml100k
    counts = items.attrs["counts"]
    # docs/ASSETS.md: about 1,400 ggplot2movies matches and about 120 plot summaries.
    assert 1350 <= counts["ggplot2movies_matched"] <= 1600
    assert 90 <= counts["plots_matched"] <= 160
    vertigo = items[items["title"] == "Vertigo"].iloc[0]
    assert vertigo["runtime_min"] == 129 and "Hitchcock" in vertigo["plot"] and "Plot: " in vertigo["text"]
    heat = items[items["title"] == "Heat"].iloc[0]
    assert heat["plot"] is None  # the summaries' "Heat" is about thermodynamics


@pytest.mark.parametrize("as_zip", [False, True])
def test_csv_loader_dir_and_zip(tmp_path, as_zip):
    path = FIXTURE
    if as_zip:
        path = tmp_path / "ml-25m.zip"
        with zipfile.ZipFile(path, "w") as zf:
            for f in FIXTURE.iterdir():
                zf.write(f, f"ml-25m/{f.name}")
    items, inter = data.load_dataset(csv_cfg(path))
    check_schema(items, inter)
    assert len(items) == 9  # 140956 has no ratings
    assert inter["user_id"].nunique() == 7  # user 6 has 2 ratings, below min_interactions
    by_source = items.set_index("source_id")
    assert by_source.loc["50", "title"] == "The Usual Suspects" and by_source.loc["50", "year"] == 1995
    assert by_source.loc["2571", "title"] == "The Matrix"
    assert by_source.loc["1090", "title"].startswith("The Good, the Bad and the Ugly (")
    assert by_source.loc["1", "tags"] == ["pixar", "animation"]  # counted case-insensitively
    assert by_source.loc["260", "tags"][0] == "classic"
    assert "philosophy, reality" in by_source.loc["2571", "tags"]
    assert "Tags: pixar, animation." in by_source.loc["1", "text"]


def test_split_keeps_a_time_tie_at_the_end_of_the_fixture_user():
    items, inter = data.load_dataset(csv_cfg(FIXTURE))
    src = dict(zip(items["item_id"], items["source_id"]))
    user4 = inter[inter["user_id"] == 3]  # source user 4 (user 6 dropped later in order: 4 -> 3)
    assert {src[i] for i in user4["item_id"].tail(2)} == {"32", "260"}  # both rated at 1100004050
    assert list(user4["split"].tail(2)) == ["validation", "test"]


def test_split_on_handmade_frame():
    inter = pd.DataFrame({"user_id": [0, 0, 0, 0, 1, 1, 1], "item_id": [3, 1, 2, 0, 5, 4, 6],
                          "timestamp": [4, 1, 2, 3, 7, 7, 9], "rating": np.ones(7, dtype="float32")})
    out = split_leave_last_out(inter, seed=0)
    assert list(out["item_id"][:4]) == [1, 2, 0, 3] and out["item_id"].iloc[6] == 6
    assert set(out["item_id"][4:6]) == {4, 5}  # a time tie: either order
    assert list(out["split"]) == ["train", "train", "validation", "test", "train", "validation", "test"]


def tied_users(n_users: int = 400, tie: int = 4) -> pd.DataFrame:
    """Each user: one item at time 0, then ``tie`` items (ids in increasing order) at time 1."""
    users = np.repeat(np.arange(n_users), tie + 1)
    items = np.tile(np.arange(tie + 1), n_users)
    times = np.tile(np.r_[0, np.ones(tie, dtype=int)], n_users)
    return pd.DataFrame({"user_id": users, "item_id": items, "timestamp": times,
                         "rating": np.ones(len(users), dtype="float32")})


def test_split_orders_time_ties_by_a_seeded_key_not_the_item_id():
    inter = tied_users()
    a = split_leave_last_out(inter, seed=0)
    pd.testing.assert_frame_equal(a, split_leave_last_out(inter, seed=0))
    shuffled = inter.sample(frac=1.0, random_state=3)  # the input's row order does not matter
    pd.testing.assert_frame_equal(a, split_leave_last_out(shuffled, seed=0))
    b = split_leave_last_out(inter, seed=1)
    assert not a["item_id"].equals(b["item_id"])
    for out in (a, b):
        assert (out.groupby("user_id")["item_id"].first() == 0).all()  # time still comes first
        test = out.loc[out["split"] == "test", "item_id"]
        validation = out.loc[out["split"] == "validation", "item_id"]
        assert 0 not in set(test) | set(validation)
        # a uniform order makes the highest id of the 4 tied items the test item 1 time in 4; id order always
        assert 0.15 < np.mean(test == 4) < 0.35 and 0.15 < np.mean(validation == 3) < 0.35


def test_ml100k_test_item_is_not_the_highest_id_of_its_tie(ml100k):
    _, inter = ml100k
    same_time = inter.merge(inter.loc[inter["split"] == "test", ["user_id", "timestamp"]])
    groups = same_time.groupby("user_id")["item_id"]
    sizes = groups.size()
    tied = sizes[sizes > 1].index  # users whose test item shares its timestamp with another item
    test_item = inter[inter["split"] == "test"].set_index("user_id")["item_id"]
    is_max = test_item.loc[tied] == groups.max().loc[tied]
    assert len(tied) > 300
    # by item id this share was 1; a fair order gives about the mean of 1 / group size
    assert abs(is_max.mean() - (1 / sizes.loc[tied]).mean()) < 0.08


def test_slicing_is_deterministic_and_seeded():
    cfg = load_config("smoke", {"data.enrich": False})
    a_items, a_inter = data.load_dataset(cfg)
    b_items, b_inter = data.load_dataset(cfg)
    pd.testing.assert_frame_equal(a_items, b_items)
    pd.testing.assert_frame_equal(a_inter, b_inter)
    check_schema(a_items, a_inter)
    assert len(a_items) <= 200 and a_inter["user_id"].nunique() <= 150
    other = data.load_dataset(load_config("smoke", {"data.enrich": False, "seed": 1}))[1]
    assert not other.equals(a_inter)  # another seed samples other users
    whole = load_config("default", {"data.enrich": False, "data.target_interactions": 5000})
    n = len(data.load_dataset(whole)[1])
    assert 5000 <= n < 5000 + 800  # sampled users until about the target (ML-100K max is 737 per user)


def test_max_items_keeps_most_rated():
    items, inter = data.load_dataset(load_config("default", {"data.enrich": False, "data.max_items": 10}))
    assert len(items) == 10
    assert "50" in set(items["source_id"])  # Star Wars, the most rated movie of ML-100K


def test_prepare_data_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("JOINTSID_RUNS_DIR", str(tmp_path))
    cfg = csv_cfg(FIXTURE)
    items, inter = data.prepare_data(cfg)
    out = tmp_path / cfg.folder / "data"
    mtime = (out / "items.parquet").stat().st_mtime_ns
    assert all(isinstance(g, list) for g in items["genres"])
    items2, inter2 = data.prepare_data(cfg)
    assert (out / "items.parquet").stat().st_mtime_ns == mtime  # loaded, not rebuilt
    pd.testing.assert_frame_equal(inter, inter2)
    check_schema(items2, inter2)
    other = load_config("default", {"data.source": "movielens-csv", "data.path": str(FIXTURE),
                                    "data.enrich": False, "seed": 3})
    data.prepare_data(other)  # a new key builds into its own run folder and leaves this one as it was
    assert (tmp_path / other.folder / "data" / "items.parquet").exists() and other.folder != cfg.folder
    assert (out / "items.parquet").stat().st_mtime_ns == mtime


# ----------------------------------------------------------------------------- bad inputs

def _copy(tmp_path):
    dst = tmp_path / "ml"
    shutil.copytree(FIXTURE, dst)
    return dst


@pytest.mark.parametrize("case, match", [
    ("missing_path", "does not exist"),
    ("no_path", "needs data.path"),
    ("no_ratings", "has no ratings.csv"),
    ("no_movies", "has no movies.csv"),
    ("zip_without_ratings", "has no ratings.csv"),
    ("bad_zip", "not a readable zip"),
    ("missing_columns", "lacks the column\\(s\\) rating, timestamp"),
    ("text_user_id", "ratings.csv .* non-numeric userId"),
    ("text_movie_id", "movies.csv .* non-numeric movieId"),
    ("empty_after_filter", "No user has 50\\+ interactions"),
    ("unknown_source", "Unknown data.source 'netflix'; choose one of: ml-100k, movielens-csv"),
])
def test_bad_inputs_fail_in_one_sentence(tmp_path, monkeypatch, case, match):
    runs = tmp_path / "runs"
    monkeypatch.setenv("JOINTSID_RUNS_DIR", str(runs))
    path, extra = _copy(tmp_path), {}
    if case == "missing_path":
        path = tmp_path / "nowhere"
    elif case == "no_ratings":
        (path / "ratings.csv").unlink()
    elif case == "no_movies":
        (path / "movies.csv").unlink()
    elif case == "zip_without_ratings":
        zpath = tmp_path / "ml.zip"
        with zipfile.ZipFile(zpath, "w") as zf:
            zf.write(path / "movies.csv", "ml-25m/movies.csv")
        path = zpath
    elif case == "bad_zip":
        path = tmp_path / "ml.zip"
        path.write_bytes(b"not a zip")
    elif case == "missing_columns":
        (path / "ratings.csv").write_text("userId,movieId\n1,1\n")
    elif case == "text_user_id":
        with open(path / "ratings.csv", "a") as fh:
            fh.write("alice,1,4.0,1100009000\n")
    elif case == "text_movie_id":
        with open(path / "movies.csv", "a") as fh:
            fh.write("tt123,Some Film (2001),Drama\n")
    elif case == "empty_after_filter":
        extra = {"data.min_interactions": 50}
    cfg = csv_cfg(path, **extra)
    if case == "no_path":
        cfg = load_config("default", {"data.source": "movielens-csv"})
    if case == "unknown_source":
        cfg = load_config("default", {"data.source": "netflix"})
    with pytest.raises(StudyInputError, match=match) as err:
        data.prepare_data(cfg)
    assert str(err.value).count(". ") == 0 or str(err.value).count("; ") >= 1  # one sentence
    assert nothing_published(runs)


def test_title_helpers():
    assert split_title_year("Usual Suspects, The (1995)") == ("The Usual Suspects", 1995)
    assert split_title_year("Ready Player One") == ("Ready Player One", None)
    assert move_article("Eye of Vichy, The (Oeil de Vichy, L')") == "The Eye of Vichy (L'Oeil de Vichy)"
    assert normalise_title("Usual Suspects, The") == normalise_title("The Usual Suspects!")
    assert normalise_title("Amélie") == "amelie"


def test_repairs_survive_the_cache(tmp_path, monkeypatch):
    """Notebook 01's repairs table reads items.attrs, so a cached reload must keep them (issue 17)."""
    monkeypatch.setenv("JOINTSID_RUNS_DIR", str(tmp_path / "runs"))
    folder = _copy(tmp_path)
    ratings = (folder / "ratings.csv").read_text()
    (folder / "ratings.csv").write_text(ratings + ratings.splitlines(keepends=True)[1])  # one duplicate rating
    first, _ = data.prepare_data(csv_cfg(folder))
    items_file = tmp_path / "runs" / csv_cfg(folder).folder / "data" / "items.parquet"
    mtime = items_file.stat().st_mtime_ns
    again, _ = data.prepare_data(csv_cfg(folder))
    assert items_file.stat().st_mtime_ns == mtime  # from the cache
    assert again.attrs["repairs"] == first.attrs["repairs"]
    assert again.attrs["repairs"]["exact duplicate interaction rows, dropped"] == 1
