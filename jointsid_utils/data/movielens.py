"""Raw MovieLens catalogues: the embedded MovieLens-100K and a MovieLens CSV export (folder or zip).

Both loaders return ``(items, ratings)`` in source ids: items with ``movie`` (int64), ``title`` (year
removed, article restored), ``year`` (Int64), ``genres`` and ``tags`` (lists of str); ratings with
``user``, ``movie``, ``rating`` (float32) and ``timestamp`` (int64). Slicing and reindexing follow in
``split``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import zipfile
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from jointsid_utils import assets
from jointsid_utils.data.titles import split_title_year
from jointsid_utils.errors import StudyInputError

log = logging.getLogger(__name__)

RATING_COLUMNS = ("userId", "movieId", "rating", "timestamp")
MAX_TAGS = 10  # most frequent tags per movie kept from tags.csv


def raw_ml100k() -> tuple[pd.DataFrame, pd.DataFrame]:
    """MovieLens-100K from the package assets (RecBole atomic files), in source ids."""
    inter, item = assets.movielens_100k()
    ratings = pd.DataFrame({
        "user": inter["user_id:token"].astype("int64"),
        "movie": inter["item_id:token"].astype("int64"),
        "rating": inter["rating:float"].astype("float32"),
        "timestamp": inter["timestamp:float"].astype(float).astype("int64"),
    })
    titles, years = [], []
    for raw, year in zip(item["movie_title:token_seq"], item["release_year:token"]):
        raw = "unknown" if raw == "unkonwn" else raw  # the placeholder item is misspelled in the file
        title, title_year = split_title_year(raw)  # one title still carries "(1995)"
        titles.append(title)
        years.append(int(year) if year.isdigit() else title_year)
    items = pd.DataFrame({
        "movie": item["item_id:token"].astype("int64"),
        "title": titles,
        "year": pd.array(years, dtype="Int64"),
        "genres": [[g for g in s.split() if g != "unknown"] for s in item["class:token_seq"]],
    })
    items["tags"] = [[] for _ in range(len(items))]
    return items, ratings


def raw_movielens_csv(path: str | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """movies.csv, ratings.csv and (optional) tags.csv of a MovieLens export, checked and in source ids."""
    files = _CsvSource(path)
    movies = files.read("movies.csv", required=("movieId", "title", "genres"), dtype=str)
    _check_numeric(movies, "movies.csv", ("movieId",))
    if movies.empty:
        raise StudyInputError(f"movies.csv in {files.path} lists no movies; give the MovieLens export with its "
                              "movies (an empty catalogue has nothing to recommend).")
    dup = movies["movieId"].astype("int64").duplicated()
    if dup.any():
        raise StudyInputError(f"movies.csv in {files.path} lists movieId {movies['movieId'][dup].iloc[0]} more than "
                              f"once ({int(dup.sum())} duplicate row(s)); keep one row per movie.")
    ratings = files.read("ratings.csv", required=RATING_COLUMNS,
                         dtype={"userId": "int64", "movieId": "int64", "rating": "float32", "timestamp": "int64"})
    if ratings.empty:
        raise StudyInputError(f"ratings.csv in {files.path} has no ratings; give the MovieLens export with its "
                              "ratings (the study needs interactions).")
    parsed = [split_title_year(t) for t in movies["title"].fillna("")]
    items = pd.DataFrame({
        "movie": movies["movieId"].astype("int64"),
        "title": [t for t, _ in parsed],
        "year": pd.array([y for _, y in parsed], dtype="Int64"),
        "genres": [[] if g in ("", "(no genres listed)") else g.split("|") for g in movies["genres"].fillna("")],
    })
    tags = files.read("tags.csv", required=("movieId", "tag"), dtype={"movieId": "int64", "tag": str},
                      optional=True)
    items["tags"] = _top_tags(items["movie"], tags)
    ratings = pd.DataFrame({"user": ratings["userId"], "movie": ratings["movieId"],
                            "rating": ratings["rating"], "timestamp": ratings["timestamp"]})
    unknown = ~ratings["movie"].isin(items["movie"].to_numpy())
    if unknown.all():
        raise StudyInputError(f"None of the {len(ratings)} ratings in {files.path} rates a movie of movies.csv; "
                              "give ratings.csv and movies.csv from the same MovieLens export.")
    if unknown.any():
        log.warning("ratings.csv: dropped %d ratings of movies missing from movies.csv", int(unknown.sum()))
        ratings = ratings[~unknown]
    return items, ratings.reset_index(drop=True)


class _CsvSource:
    """movies.csv / ratings.csv / tags.csv in a folder or a zip, possibly under one top folder."""

    def __init__(self, path: str | None):
        if not path:
            raise StudyInputError("data.source 'movielens-csv' needs data.path; pass -p data.path "
                                  "/path/to/ml-25m (a folder or zip with movies.csv and ratings.csv).")
        self.path = Path(path).expanduser()
        if not self.path.exists():
            raise StudyInputError(f"data.path {self.path} does not exist; point it at the MovieLens folder or zip.")
        if self.path.is_file():
            try:
                with zipfile.ZipFile(self.path) as zf:
                    names = [n for n in zf.namelist() if not n.endswith("/") and "__MACOSX" not in n]
            except (zipfile.BadZipFile, OSError) as err:
                raise StudyInputError(f"data.path {self.path} is not a readable zip ({err}); give the "
                                      "MovieLens folder or its original zip.") from err
            self.members = {Path(n).name: n for n in sorted(names, key=lambda n: (n.count("/"), n), reverse=True)}
        else:
            found = sorted(self.path.glob("*.csv")) + sorted(self.path.glob("*/*.csv"))
            self.members = {p.name: p for p in reversed(found)}  # the shallowest copy wins
        for name in ("movies.csv", "ratings.csv"):
            if name not in self.members:
                raise StudyInputError(f"data.path {self.path} has no {name}; give the MovieLens folder or zip "
                                      "that holds movies.csv and ratings.csv.")

    @contextlib.contextmanager
    def _open(self, name: str) -> Iterator[io.TextIOBase]:
        if self.path.is_file():
            with zipfile.ZipFile(self.path) as zf, zf.open(self.members[name]) as raw:
                yield io.TextIOWrapper(raw, encoding="utf-8", newline="")
        else:
            with open(self.members[name], encoding="utf-8", newline="") as fh:
                yield fh

    def read(self, name: str, *, required: tuple[str, ...], dtype: Any, optional: bool = False) -> pd.DataFrame | None:
        """The ``required`` columns of ``name``; a missing column or a non-number fails naming the file and column."""
        if name not in self.members:
            if optional:
                return None
            raise StudyInputError(f"data.path {self.path} has no {name}.")
        where = f"{name} in {self.path}"
        try:
            with self._open(name) as fh:
                header = next(csv.reader(fh), [])
            missing = [c for c in required if c not in header]
            if missing:
                raise StudyInputError(f"{where} lacks the column(s) {', '.join(missing)}; it needs "
                                      f"{', '.join(required)} (the MovieLens CSV header).")
            with self._open(name) as fh:
                try:
                    return pd.read_csv(fh, usecols=list(required), dtype=dtype)
                except (ValueError, TypeError, OverflowError):
                    pass
            with self._open(name) as fh:  # find the offending column to name it
                frame = pd.read_csv(fh, usecols=list(required), dtype=str, keep_default_na=False)
            numeric = [c for c, t in (dtype.items() if isinstance(dtype, dict) else []) if t != str]
            _check_numeric(frame, where, numeric)
            raise StudyInputError(f"{where} could not be parsed; check that it is a MovieLens CSV file.")
        except (OSError, UnicodeDecodeError, pd.errors.ParserError, zipfile.BadZipFile) as err:
            raise StudyInputError(f"{where} is unreadable ({err}); re-extract the MovieLens files.") from err


def _check_numeric(frame: pd.DataFrame, where: str, columns) -> None:
    for col in columns:
        values = pd.to_numeric(frame[col].astype(str).str.strip(), errors="coerce")
        if values.isna().any():
            bad = frame.loc[values.isna(), col].iloc[0]
            raise StudyInputError(f"{where} has a non-numeric {col} ({bad!r}); ids and values must be numbers "
                                  "as in the MovieLens export.")


def _top_tags(movies: pd.Series, tags: pd.DataFrame | None) -> list[list[str]]:
    """Per movie, its ``MAX_TAGS`` most used tags (lowercased; ties alphabetical)."""
    if tags is None or tags.empty:
        return [[] for _ in range(len(movies))]
    clean = tags.assign(tag=tags["tag"].astype(str).str.strip().str.lower())
    clean = clean[clean["tag"].ne("") & clean["tag"].ne("nan")]
    counts = clean.groupby(["movieId", "tag"]).size().rename("n").reset_index()
    counts = counts.sort_values(["movieId", "n", "tag"], ascending=[True, False, True])
    top = counts.groupby("movieId").head(MAX_TAGS).groupby("movieId")["tag"].agg(list)
    return [list(top.get(m, [])) for m in movies]
