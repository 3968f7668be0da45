"""Every bad input of issue 8 fails at its entry point with one StudyInputError sentence naming it and the fix.

Some cases also have a test beside their module (tests/unit/test_data.py: unreadable CSV files;
tests/unit/test_quantizers.py: NaN, infinite and too-small matrices into each quantizer; tests/unit/test_config.py
and tests/unit/test_runner.py: wrong override types). This file is the one list of them all: each case here
goes through the entry point a notebook calls (``prepare_data``, ``prepare_queries``,
``prepare_embeddings``, ``prepare_ids`` / ``build_ids``, ``notebook.setup``, the CLI) and checks that
the error is raised there, before anything is written, not deep inside pandas, faiss or torch.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from jointsid_utils import notebook
from jointsid_utils.data import dataset as data
from jointsid_utils.ids import schemes as sid
from jointsid_utils.config import load_config
from jointsid_utils.embeddings import prepare_embeddings
from jointsid_utils.errors import StudyInputError
from jointsid_utils.ids.build import build_ids
from jointsid_utils.queries.stage import generate_queries, prepare_queries
from run_outputs import nothing_published
from bad_catalogues import CAT_INTER, CAT_ITEMS, catalogue_dir

FIXTURE = Path(__file__).parents[1] / "fixtures" / "ml_csv"
MOVIES = (FIXTURE / "movies.csv").read_text()
RATINGS = (FIXTURE / "ratings.csv").read_text()
RATINGS_HEADER = "userId,movieId,rating,timestamp\n"


def one_sentence(excinfo: pytest.ExceptionInfo, *needles: str) -> str:
    """The message is one line and one sentence, mentions each needle, and was raised in this package."""
    msg = str(excinfo.value)
    assert "\n" not in msg and "Traceback" not in msg and msg.endswith("."), msg
    assert not re.search(r"[.!?] +[A-Z]", msg), f"more than one sentence: {msg}"
    for needle in needles:
        assert re.search(needle, msg), f"{needle!r} not in {msg!r}"
    raised_in = str(excinfo.traceback[-1].path)
    assert "jointsid_utils" in raised_in and "site-packages" not in raised_in, raised_in
    return msg


def csv_dir(tmp_path: Path, movies: str = MOVIES, ratings: str = RATINGS) -> Path:
    out = tmp_path / "ml"
    out.mkdir()
    (out / "movies.csv").write_text(movies)
    (out / "ratings.csv").write_text(ratings)
    return out


def csv_cfg(path: Path, **extra):
    return load_config("default", {"data.source": "movielens-csv", "data.path": str(path), "data.enrich": False,
                                   **extra})


def prepare_data_fails(cfg, runs: Path, *needles: str) -> str:
    with pytest.raises(StudyInputError) as err:
        data.prepare_data(cfg)
    assert nothing_published(runs)
    return one_sentence(err, *needles)


@pytest.fixture(scope="module")
def frames():
    """The fixture catalogue (9 items, 7 users) with its template queries."""
    items, inter = data.load_dataset(csv_cfg(FIXTURE))
    return items, inter, generate_queries(items, csv_cfg(FIXTURE))


def vectors(n: int = 20, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {m: rng.normal(size=(n, 8)).astype(np.float32) for m in ("content", "search", "rec")}


IDS = {"ids.codebook_size": 4}


# ---------------------------------------------------------------------------------- catalogue

@pytest.mark.parametrize("case, needles", [
    ("no movies", ("movies.csv", "lists no movies")),
    ("no ratings", ("ratings.csv", "has no ratings")),
    ("ratings of other movies", ("None of the 2 ratings", "same export")),
    ("max_items 0", (r"data\.max_items=0", "at least 2")),
])
def test_empty_catalogue(tmp_path, runs_dir, case, needles):
    cfg = {"no movies": lambda: csv_cfg(csv_dir(tmp_path, movies="movieId,title,genres\n")),
           "no ratings": lambda: csv_cfg(csv_dir(tmp_path, ratings=RATINGS_HEADER)),
           "ratings of other movies": lambda: csv_cfg(csv_dir(tmp_path, ratings=RATINGS_HEADER + "1,999,4.0,1\n"
                                                                                           "2,998,4.0,2\n")),
           "max_items 0": lambda: load_config("smoke", {"data.max_items": 0})}[case]()
    prepare_data_fails(cfg, runs_dir, *needles)


def test_empty_items_frame_at_the_later_entry_points(frames, runs_dir):
    items, inter, queries = frames
    with pytest.raises(StudyInputError) as err:
        prepare_queries(items.iloc[:0], load_config("smoke"), runs_dir)
    one_sentence(err, "items frame is empty")
    with pytest.raises(StudyInputError) as err:
        prepare_embeddings(load_config("smoke"), items.iloc[:0], inter.iloc[:0], queries.iloc[:0], methods=["content"])
    one_sentence(err, "0 item", "at least 2")
    assert nothing_published(runs_dir)


def test_one_item_catalogue(tmp_path, runs_dir, frames):
    # one movie that every user rated three times: enough interactions per user, one item
    ratings = RATINGS_HEADER + "".join(f"{u},1,4.0,{1000 * u + t}\n" for u in range(1, 5) for t in range(3))
    prepare_data_fails(csv_cfg(csv_dir(tmp_path, ratings=ratings)), runs_dir, "catalogue has 1 item", "at least 2")
    prepare_data_fails(load_config("smoke", {"data.max_items": 1}), runs_dir, r"data\.max_items=1")
    items, inter, queries = frames
    with pytest.raises(StudyInputError) as err:
        prepare_embeddings(load_config("smoke"), items.iloc[:1], inter[inter.item_id == 0],
                           queries[queries.item_id == 0], methods=["content"])
    one_sentence(err, "1 item", "at least 2")
    with pytest.raises(StudyInputError) as err:  # one vector: any codebook of 2+ codes is too large
        sid.prepare_ids(load_config("smoke", IDS), vectors(n=1), [("content", "rq_kmeans")], progress=False)
    one_sentence(err, r"ids\.codebook_size=4 is larger than the 1 items")
    assert nothing_published(runs_dir)


# ---------------------------------------------------------------------------------- item text

def test_items_without_text(tmp_path, runs_dir, frames):
    movies = MOVIES.replace("Jumanji (1995)", "(1995)")  # a title that is only a year: nothing to embed
    prepare_data_fails(csv_cfg(csv_dir(tmp_path, movies=movies)), runs_dir, "have no title", "id 2", "movies.csv")
    items, inter, queries = frames
    for blank in (np.nan, "", "   "):
        bad = items.copy()
        bad.loc[3, "text"] = blank
        with pytest.raises(StudyInputError) as err:
            prepare_embeddings(load_config("smoke"), bad, inter, queries, methods=["content"])
        one_sentence(err, r"items\.text is missing or empty for 1 item", "row 3")
        bad = items.copy()
        bad.loc[3, "title"] = blank
        with pytest.raises(StudyInputError) as err:
            prepare_queries(bad, load_config("smoke"), runs_dir)
        one_sentence(err, "no title", "item_id 3")
    assert nothing_published(runs_dir)


# ---------------------------------------------------------------------------------- users

def test_users_with_one_interaction_are_dropped(tmp_path, runs_dir):
    """Users below data.min_interactions (3) cannot give train, validation and test items: they are left out."""
    singles = "".join(f"{u},1,4.0,{u}\n" for u in (90, 91, 92))
    items, inter = data.prepare_data(csv_cfg(csv_dir(tmp_path, ratings=RATINGS + singles)))
    assert inter.user_id.nunique() == 7  # the fixture's 7 users, none of the three single-interaction ones
    assert (inter.groupby("user_id").size() >= 3).all()


def test_only_users_with_one_interaction(tmp_path, runs_dir):
    ratings = RATINGS_HEADER + "".join(f"{u},{m},4.0,{u}\n" for u, m in ((1, 1), (2, 2), (3, 6), (4, 50)))
    prepare_data_fails(csv_cfg(csv_dir(tmp_path, ratings=ratings)), runs_dir, "No user has 3\\+ interactions",
                       "min_interactions")


@pytest.mark.parametrize("value", [0, 1, 2])
def test_min_interactions_below_three(runs_dir, value):
    prepare_data_fails(csv_cfg(FIXTURE, **{"data.min_interactions": value}), runs_dir,
                       rf"data\.min_interactions={value}", "use 3 or more")


# ---------------------------------------------------------------------------------- duplicate ids

def test_duplicate_item_ids(tmp_path, runs_dir, frames):
    movies = MOVIES + "50,Usual Suspects 2 (2001),Crime\n"
    prepare_data_fails(csv_cfg(csv_dir(tmp_path, movies=movies)), runs_dir, "movieId 50 more than once",
                       "one row per movie")
    items, inter, queries = frames
    dup = items.assign(item_id=items.item_id.where(items.item_id != 1, 0))
    with pytest.raises(StudyInputError) as err:
        prepare_queries(dup, load_config("smoke"), runs_dir)
    one_sentence(err, "duplicate item_id")
    with pytest.raises(StudyInputError) as err:
        prepare_embeddings(load_config("smoke"), dup, inter, queries, methods=["content"])
    one_sentence(err, r"item_id must be 0\.\.n-1")
    assert nothing_published(runs_dir)


# ---------------------------------------------------------------------------------- codebook size

@pytest.mark.parametrize("scheme, overrides, key", [
    (("content", "rq_kmeans"), {"ids.codebook_size": 32}, "ids.codebook_size"),
    (("separate", "rq_kmeans"), {"ids.codebook_size": 32}, "ids.codebook_size"),
    (("prefix_share", "rq_kmeans"), {"ids.prefix_share_codebook_size": 64}, "ids.prefix_share_codebook_size"),
    (("content", "rq_vae"), {"ids.codebook_size": 21}, "ids.codebook_size"),
])
def test_codebook_larger_than_catalogue(runs_dir, scheme, overrides, key):
    cfg = load_config("smoke", overrides)
    with pytest.raises(StudyInputError) as err:
        # a valid scheme first: the check runs for every scheme before the first fit
        sid.prepare_ids(cfg, vectors(), [("content", "dict_learning"), scheme], progress=False)
    one_sentence(err, rf"{re.escape(key)}=\d+ is larger than the 20 items", rf"pass -p {re.escape(key)} 2")
    assert nothing_published(runs_dir)


def test_codebook_larger_than_catalogue_in_build_ids(tmp_path):
    with pytest.raises(StudyInputError) as err:
        build_ids("content", "rq_kmeans", vectors()["content"], tmp_path, codebook_size=32)
    one_sentence(err, "codebook size 32 is larger than the 20 items", "use at most 20")
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------------------------- non-finite embeddings

@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("scheme, bad_matrix", [
    (("content", "rq_kmeans"), "content"), (("content", "rq_vae"), "content"),
    (("separate", "rq_kmeans"), "rec"), (("prefix_share", "rq_kmeans"), "search"),
])
def test_non_finite_embeddings_into_semantic_ids(runs_dir, bad_value, scheme, bad_matrix):
    vecs = vectors()
    vecs[bad_matrix][[2, 7], 3] = bad_value
    with pytest.raises(StudyInputError) as err:
        sid.prepare_ids(load_config("smoke", IDS), vecs, [scheme], progress=False)
    one_sentence(err, f"The '{bad_matrix}' embedding has NaN or infinite values in 2 row", "notebook 02")
    assert nothing_published(runs_dir)


@pytest.mark.parametrize("embedding", ["content", "separate"])
def test_non_finite_embeddings_into_build_ids(tmp_path, embedding):
    X = vectors()["content"]
    X[5, 0] = np.nan
    arg = (X, vectors()["rec"]) if embedding == "separate" else X
    with pytest.raises(StudyInputError) as err:
        build_ids(embedding, "rq_kmeans", arg, tmp_path, codebook_size=4)
    one_sentence(err, "NaN or infinite values in 1 rows")
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------------------------- notebook parameters

@pytest.mark.parametrize("args, kwargs, needles", [
    ((1,), {}, ("Unknown profile 1", "choose one of: smoke, default, paper")),
    (("smoke", "seed=1"), {}, ("overrides must be a dict", "got str")),
    (("smoke", [("seed", 1)]), {}, ("overrides must be a dict", "got list")),
    (("smoke", 5), {}, ("overrides must be a dict", "got int")),
    (("smoke", {"ids.codebook_size": "8"}), {}, (r"Parameter 'ids\.codebook_size' expects int, got str",
                                                   r"-p ids\.codebook_size 8")),
    (("smoke", {"seed": 1.5}), {}, ("Parameter 'seed' expects int",)),
    (("smoke", {"data.enrich": "no"}), {}, (r"Parameter 'data\.enrich' expects bool",)),
    (("smoke", {"ids.codebook": 8}), {}, (r"Unknown parameter 'ids\.codebook'", r"ids\.codebook_size")),
    (("smoke", {}), {"threads": "2"}, ("threads must be a non-negative int",)),
])
def test_notebook_setup_rejects_wrong_parameter_types(runs_dir, args, kwargs, needles):
    with pytest.raises(StudyInputError) as err:
        notebook.setup(*args, **kwargs)
    one_sentence(err, *needles)
    assert nothing_published(runs_dir)  # not even config.json


# ---------------------------------------------------------------------------------- generic catalogue (issue 17)


def catalogue_cfg(path: Path | None, **extra):
    return load_config("default", {"data.source": "catalogue", "data.path": None if path is None else str(path),
                                   **extra})


@pytest.mark.parametrize("case, needles", [
    ("no path", (r"data\.source 'catalogue' needs data\.path", "-p data.path")),
    ("missing path", ("does not exist", "catalogue folder or zip")),
    ("no interactions table", ("has no interactions.csv or interactions.parquet",)),
    ("empty file", ("items.csv", "is empty", "header line")),
    ("binary garbage", ("items.csv", "is binary", "zero byte")),
    ("latin-1", ("items.csv", "is not UTF-8 text", "save it as UTF-8")),
    ("parquet named csv", ("Parquet file with a .csv name", "rename it")),
    ("broken parquet", ("items.parquet", "not a readable Parquet file")),
    ("missing column", ("lacks the column", "text", "separator ';'", "item_id, title, text")),
    ("non-numeric user id", ("interactions.csv", "non-numeric user_id", "'alice'", "data row 181", "integers")),
    ("non-integer item id", ("non-integer item_id", "'3.5'")),
    ("dates mixed with seconds", ("non-numeric timestamp", "ISO 8601")),
    ("line with a field more", ("cannot be split into its columns", "Expected 4 fields in line 9, saw 5")),
    ("every line a field more", ("more fields on its lines than in its header",)),
    ("unterminated quote", ("items.csv", "EOF inside string")),
    ("many truncated lines", ("20 of the 200 rows", r"data\.max_dropped_share=0\.05")),
    ("untitled over the share", ("3 of the 40 items", "have no title or text", "first: id 1",
                                 r"raise data\.max_dropped_share")),
    ("conflicting item rows", ("lists item_id 1 more than once with different values", "one row per item")),
    ("header only", ("items.csv", "lists no items")),
    ("all items unknown", ("None of the 1 interactions", "same export")),
    ("unknown repeat option", (r"Unknown data\.repeat_consumption 'first'", "keep, last")),
    ("share out of range", (r"data\.max_dropped_share=1\.5", r"\[0, 1\)")),
])
def test_catalogue_inputs_refused_in_one_sentence(tmp_path, runs_dir, case, needles):
    untitled = CAT_ITEMS.replace("Film 1,", ",").replace("Film 2,", ",").replace("Film 3,", ",")
    build = {
        "no path": lambda: catalogue_cfg(None),
        "missing path": lambda: catalogue_cfg(tmp_path / "nowhere"),
        "no interactions table": lambda: catalogue_cfg(
            (lambda d: ((d / "interactions.csv").unlink(), d)[1])(catalogue_dir(tmp_path))),
        "empty file": lambda: catalogue_cfg(catalogue_dir(tmp_path, items="")),
        "binary garbage": lambda: catalogue_cfg(catalogue_dir(tmp_path, items=bytes(range(256)) * 8)),
        "latin-1": lambda: catalogue_cfg(catalogue_dir(tmp_path, items=(CAT_ITEMS + "41,Amélie,Amélie,2001,Comedy\n")
                                                       .encode("latin-1"))),
        "parquet named csv": lambda: catalogue_cfg(catalogue_dir(tmp_path, items=b"PAR1 not really")),
        "broken parquet": lambda: catalogue_cfg(catalogue_dir(tmp_path, items=b"PAR1 garbage PAR1",
                                                              items_name="items.parquet")),
        "missing column": lambda: catalogue_cfg(catalogue_dir(tmp_path, items=b"\xef\xbb\xbf" + CAT_ITEMS.replace(
            ",", ";").replace("; number", ", number").replace("text", "body").encode())),
        "non-numeric user id": lambda: catalogue_cfg(catalogue_dir(tmp_path, inter=CAT_INTER + "alice,3,5,4.0\n")),
        "non-integer item id": lambda: catalogue_cfg(catalogue_dir(tmp_path, inter=CAT_INTER + "3,3.5,5,4.0\n")),
        "dates mixed with seconds": lambda: catalogue_cfg(catalogue_dir(
            tmp_path, inter=CAT_INTER.replace(",1000,", ",2021-03-04T10:00:00,"))),
        "line with a field more": lambda: catalogue_cfg(catalogue_dir(
            tmp_path, inter=CAT_INTER.replace("2,16,2001,4.0", "2,16,2001,4.0,9"))),
        "every line a field more": lambda: catalogue_cfg(catalogue_dir(
            tmp_path, inter=CAT_INTER.replace("\n", ",x\n").replace("rating,x", "rating"))),
        "unterminated quote": lambda: catalogue_cfg(catalogue_dir(tmp_path, items=CAT_ITEMS + '41,"Film 41,text\n')),
        "many truncated lines": lambda: catalogue_cfg(catalogue_dir(tmp_path, inter=CAT_INTER + "5,3\n" * 20)),
        "untitled over the share": lambda: catalogue_cfg(catalogue_dir(tmp_path, items=untitled)),
        "conflicting item rows": lambda: catalogue_cfg(catalogue_dir(tmp_path, items=CAT_ITEMS + "1,Other,Other,2000,\n")),
        "header only": lambda: catalogue_cfg(catalogue_dir(tmp_path, items="item_id,title,text\n")),
        "all items unknown": lambda: catalogue_cfg(catalogue_dir(tmp_path, inter="user_id,item_id,timestamp\n1,999,5\n")),
        "unknown repeat option": lambda: catalogue_cfg(catalogue_dir(tmp_path), **{"data.repeat_consumption": "first"}),
        "share out of range": lambda: catalogue_cfg(catalogue_dir(tmp_path), **{"data.max_dropped_share": 1.5}),
    }
    prepare_data_fails(build[case](), runs_dir, *needles)


