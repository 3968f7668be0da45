"""Items and interactions in one schema (STUDY.md §4): loaders, slicing, enrichment, leave-last-out split.

``load_dataset(cfg)`` returns two frames:

- items: ``item_id`` (int64, 0..n-1, row i = item i), ``source_id`` (str), ``title`` (no year,
  leading article restored), ``year`` (Int64), ``genres`` (list of str), ``runtime_min`` (Int64),
  ``imdb_rating`` (float), ``mpaa`` (str), ``plot`` (str), ``tags`` (list of str), ``text`` (str, the
  encoder input; only the fields present).
- interactions: ``user_id`` (int64, 0..m-1), ``item_id``, ``timestamp`` (int64), ``rating`` (float32),
  ``split`` ("train" | "validation" | "test"), sorted by user, time, item. Every rating counts as an
  interaction (implicit feedback, as the paper).

``prepare_data(cfg)`` caches both under ``runs/<profile>/data/`` keyed by the data section and seed.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import re
import unicodedata
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from jointsid_utils import assets
from jointsid_utils.cache import cached, is_fresh, run_dir, save_parquet
from jointsid_utils.config import StudyConfig, as_dict, stable_hash
from jointsid_utils.errors import StudyInputError
from jointsid_utils.reproducibility import rng

log = logging.getLogger(__name__)

SOURCES = ("ml-100k", "movielens-csv")
SCHEMA_VERSION = 1  # bump when the output schema or text template changes, so caches rebuild
RATING_COLUMNS = ("userId", "movieId", "rating", "timestamp")
MAX_TAGS = 10  # most frequent tags per movie kept from tags.csv
PLOT_CHARS_IN_TEXT = 600  # the encoders truncate at 256-384 tokens; the full plot stays in `plot`
ITEM_COLUMNS = ["item_id", "source_id", "title", "year", "genres", "runtime_min", "imdb_rating", "mpaa",
                "plot", "tags", "text"]
INTERACTION_COLUMNS = ["user_id", "item_id", "timestamp", "rating", "split"]
# Articles MovieLens and IMDb move to the end ("Matrix, The"; "Bonheur, Le"; "Oeil de Vichy, L'").
ARTICLES = ("The", "A", "An", "La", "Le", "Les", "L'", "Il", "El", "Los", "Las", "Lo", "Das", "Der", "Die",
            "Det", "Den", "Un", "Une", "Una", "Gli", "I")
_ARTICLE_RE = re.compile(r"^(?P<body>.+?), (?P<art>" + "|".join(re.escape(a) for a in ARTICLES) + r")$")
_YEAR_RE = re.compile(r"\s*\((?P<year>\d{4})(?:\s*[-–]\s*\d{0,4})?\s*\)\s*$")


# ============================================================================ entry points

def load_dataset(cfg: StudyConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Items and split interactions for ``cfg.data`` (see the module docstring for the schema)."""
    data = cfg.data
    _check_data_config(cfg)
    if data.source == "ml-100k":
        items, ratings = _raw_ml100k()
    elif data.source == "movielens-csv":
        items, ratings = _raw_movielens_csv(data.path)
    else:
        raise StudyInputError(f"Unknown data.source {data.source!r}; choose one of: {', '.join(SOURCES)}.")
    ratings = slice_interactions(ratings, cfg)
    items, interactions = _reindex(items, ratings)
    _check_catalogue(items, data.source)
    counts: dict[str, int] = {"items": len(items), "users": int(interactions["user_id"].nunique()),
                              "interactions": len(interactions)}
    if data.enrich:
        items, matched = enrich_items(items)
        counts.update(matched)
    items["text"] = [item_text(row) for row in items.itertuples(index=False)]
    items = items[ITEM_COLUMNS]
    items.attrs["counts"] = counts
    log.info("data %s: %s", data.source, counts)
    return items, split_leave_last_out(interactions)


def save_dataset(items: pd.DataFrame, interactions: pd.DataFrame, out_dir: Path | str) -> tuple[Path, Path]:
    """Write ``items.parquet`` and ``interactions.parquet`` atomically."""
    out_dir = Path(out_dir)
    return (save_parquet(out_dir / "items.parquet", items),
            save_parquet(out_dir / "interactions.parquet", interactions))


def load_saved(out_dir: Path | str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read what ``save_dataset`` wrote, with list columns back as Python lists."""
    out_dir = Path(out_dir)
    items = pd.read_parquet(out_dir / "items.parquet")
    for col in ("genres", "tags"):
        items[col] = [list(v) if v is not None else [] for v in items[col]]
    return items, pd.read_parquet(out_dir / "interactions.parquet")


def prepare_data(cfg: StudyConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``load_dataset`` cached in ``runs/<profile>/data/``; reloads while the data section and seed match."""
    key = {"data": as_dict(cfg.data), "schema": SCHEMA_VERSION, "source_stat": _source_stat(cfg)}
    out = run_dir(cfg.name, "data")
    paths = (out / "items.parquet", out / "interactions.parquet")
    full_key = stable_hash({"key": key, "inputs": {}, "seed": cfg.seed})  # what cache.cached computes
    if all(is_fresh(p, full_key) for p in paths):
        return load_saved(out)
    items, interactions = load_dataset(cfg)  # raises before anything is written
    cached(paths[0], key, lambda tmp: items.to_parquet(tmp, index=False), seed=cfg.seed)
    cached(paths[1], key, lambda tmp: interactions.to_parquet(tmp, index=False), seed=cfg.seed)
    return load_saved(out)


def _check_data_config(cfg: StudyConfig) -> None:
    """Limits that cannot give a usable catalogue fail before any file is read."""
    data = cfg.data
    if data.min_interactions < 3:
        raise StudyInputError(f"data.min_interactions={data.min_interactions} would keep users with fewer than 3 "
                              "interactions, who cannot give a train, a validation and a test item; use 3 or more.")
    if data.max_items is not None and data.max_items < 2:
        raise StudyInputError(f"data.max_items={data.max_items} leaves fewer than 2 items to tell apart; "
                              "use at least 2 (smoke uses 200) or None for the whole catalogue.")
    if data.max_users is not None and data.max_users < 1:
        raise StudyInputError(f"data.max_users={data.max_users} keeps no user; use at least 1 (smoke uses 150) "
                              "or None for every user.")


def _check_catalogue(items: pd.DataFrame, source: str) -> None:
    """The sliced catalogue needs two or more items, each with a title (the encoder and query input)."""
    if len(items) < 2:
        raise StudyInputError(f"The {source} catalogue has {len(items)} item(s) with interactions after slicing; "
                              "the study needs at least 2, so use a larger dataset or raise data.max_items.")
    blank = items["title"].isna() | (items["title"].astype(str).str.strip() == "")
    if blank.any():
        first = items.loc[blank, "source_id"].iloc[0]
        raise StudyInputError(f"{int(blank.sum())} item(s) of {source} have no title (first: id {first}), so they "
                              "would have no text to embed or query; give every movie a title in movies.csv.")


def _source_stat(cfg: StudyConfig) -> Any:
    """Size and mtime of a user-given source, so replacing the files invalidates the cache."""
    if cfg.data.source != "movielens-csv" or not cfg.data.path or not Path(cfg.data.path).exists():
        return None
    root = Path(cfg.data.path)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*.csv"))
    return [[str(p.relative_to(root.parent)), p.stat().st_size, int(p.stat().st_mtime)] for p in files]


# ============================================================================ raw loaders

def _raw_ml100k() -> tuple[pd.DataFrame, pd.DataFrame]:
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


def _raw_movielens_csv(path: str | None) -> tuple[pd.DataFrame, pd.DataFrame]:
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
    if tags is None or tags.empty:
        return [[] for _ in range(len(movies))]
    clean = tags.assign(tag=tags["tag"].astype(str).str.strip().str.lower())
    clean = clean[clean["tag"].ne("") & clean["tag"].ne("nan")]
    counts = clean.groupby(["movieId", "tag"]).size().rename("n").reset_index()
    counts = counts.sort_values(["movieId", "n", "tag"], ascending=[True, False, True])
    top = counts.groupby("movieId").head(MAX_TAGS).groupby("movieId")["tag"].agg(list)
    return [list(top.get(m, [])) for m in movies]


# ============================================================================ titles

def move_article(title: str) -> str:
    """"Matrix, The" -> "The Matrix"; also inside a trailing alternate title "(Oeil de Vichy, L')"."""
    main, alt = title, ""
    m = re.match(r"^(?P<main>.*?)(?P<alt>\s\([^()]*\))$", title)
    if m and m.group("main"):
        main, alt = m.group("main"), m.group("alt")
        inner = move_article(alt.strip()[1:-1])
        alt = f" ({inner})"
    m = _ARTICLE_RE.match(main)
    if m:
        art = m.group("art")
        main = f"{art}{m.group('body')}" if art.endswith("'") else f"{art} {m.group('body')}"
    return main + alt


def split_title_year(raw: str) -> tuple[str, int | None]:
    """"Usual Suspects, The (1995)" -> ("The Usual Suspects", 1995)."""
    raw = (raw or "").strip()
    m = _YEAR_RE.search(raw)
    year = int(m.group("year")) if m else None
    title = raw[: m.start()].strip() if m else raw
    return move_article(title), year


def normalise_title(title: str) -> str:
    """Lowercase, accents and punctuation stripped, article moved to the front: a matching key."""
    title = move_article(title.strip())
    title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    title = title.lower().replace("&", " and ")
    title = re.sub(r"[^a-z0-9]+", " ", title)
    return " ".join(title.split())


def _title_keys(title: str) -> list[str]:
    """The full title, the title without its parenthetical, and the parenthetical (an alternate title)."""
    keys = [normalise_title(title)]
    m = re.match(r"^(?P<main>.*?)\s*\((?P<alt>[^()]*)\)$", title)
    if m and m.group("main"):
        keys += [normalise_title(m.group("main")), normalise_title(m.group("alt"))]
    return [k for k in dict.fromkeys(keys) if k]


# ============================================================================ slicing and split

def slice_interactions(ratings: pd.DataFrame, cfg: StudyConfig) -> pd.DataFrame:
    """max_items (most rated), then a seeded user sample (max_users / target_interactions), then min_interactions."""
    data = cfg.data
    if data.max_items is not None:
        counts = ratings.groupby("movie").size().rename("n").reset_index()
        counts = counts.sort_values(["n", "movie"], ascending=[False, True], kind="mergesort")  # ties: lower id
        ratings = ratings[ratings["movie"].isin(counts["movie"].head(data.max_items).to_numpy())]
    if data.max_users is not None or data.target_interactions is not None:
        per_user = ratings.groupby("user").size().sort_index()
        order = rng(cfg.seed, "users").permutation(per_user.index.to_numpy())
        if data.max_users is not None:
            order = order[: data.max_users]
        if data.target_interactions is not None:
            # Paper: sample users until about this many interactions (1.2M of ML-25M).
            total = per_user.loc[order].cumsum().to_numpy()
            order = order[: int(np.searchsorted(total, data.target_interactions)) + 1]
        ratings = ratings[ratings["user"].isin(order)]
    per_user = ratings.groupby("user")["movie"].transform("size")
    ratings = ratings[per_user >= data.min_interactions]
    if ratings.empty:
        raise StudyInputError(f"No user has {data.min_interactions}+ interactions after slicing (max_items="
                              f"{data.max_items}, max_users={data.max_users}, target_interactions="
                              f"{data.target_interactions}); raise those limits, lower data.min_interactions "
                              "(to 3 at least) or use a dataset whose users have more interactions.")
    return ratings


def _reindex(items: pd.DataFrame, ratings: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep items with interactions; contiguous item ids in source order, user ids in user order."""
    items = items[items["movie"].isin(ratings["movie"].unique())]
    items = items.sort_values("movie").reset_index(drop=True)
    items.insert(0, "item_id", np.arange(len(items), dtype="int64"))
    item_of = pd.Series(items["item_id"].to_numpy(), index=items["movie"].to_numpy())
    items.insert(1, "source_id", items.pop("movie").astype(str))
    users = np.sort(ratings["user"].unique())
    user_of = pd.Series(np.arange(len(users), dtype="int64"), index=users)
    interactions = pd.DataFrame({
        "user_id": user_of.loc[ratings["user"].to_numpy()].to_numpy(),
        "item_id": item_of.loc[ratings["movie"].to_numpy()].to_numpy().astype("int64"),
        "timestamp": ratings["timestamp"].astype("int64").to_numpy(),
        "rating": ratings["rating"].astype("float32").to_numpy(),
    })
    for col in ("runtime_min",):
        items[col] = pd.array([None] * len(items), dtype="Int64")
    items["imdb_rating"] = np.full(len(items), np.nan)
    items["mpaa"] = pd.Series([None] * len(items), dtype=object)
    items["plot"] = pd.Series([None] * len(items), dtype=object)
    return items, interactions


def split_leave_last_out(interactions: pd.DataFrame) -> pd.DataFrame:
    """Per user, in time order (ties by item_id): last = test, second-to-last = validation, rest = train."""
    out = interactions.sort_values(["user_id", "timestamp", "item_id"], kind="mergesort").reset_index(drop=True)
    from_end = out.groupby("user_id").cumcount(ascending=False).to_numpy()
    out["split"] = np.where(from_end == 0, "test", np.where(from_end == 1, "validation", "train"))
    out["split"] = out["split"].astype(str)
    return out[INTERACTION_COLUMNS]


# ============================================================================ enrichment

def enrich_items(items: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Add runtime, IMDb rating and MPAA (ggplot2movies, title + year) and plots (Wikipedia, title)."""
    items = items.copy()
    imdb = assets.ggplot2movies()
    imdb = imdb.sort_values("votes", ascending=False)  # the most-voted film wins a (title, year) clash
    by_key: dict[tuple[str, int], Any] = {}
    for row in imdb[["title", "year", "length", "rating", "mpaa"]].itertuples(index=False):
        by_key.setdefault((normalise_title(str(row.title)), int(row.year)), row)
    runtime, rating, mpaa = [], [], []
    for title, year in zip(items["title"], items["year"]):
        hit = None
        if not pd.isna(year):
            # Release years in MovieLens and IMDb differ by one now and then; exact year first.
            for dy in (0, 1, -1):
                hit = next((by_key.get((k, int(year) + dy)) for k in _title_keys(title)
                            if (k, int(year) + dy) in by_key), None)
                if hit is not None:
                    break
        runtime.append(None if hit is None or pd.isna(hit.length) else int(hit.length))
        rating.append(np.nan if hit is None or pd.isna(hit.rating) else float(hit.rating))
        mpaa.append(None if hit is None or pd.isna(hit.mpaa) or not str(hit.mpaa).strip() else str(hit.mpaa))
    items["runtime_min"] = pd.array(runtime, dtype="Int64")
    items["imdb_rating"] = np.asarray(rating, dtype=float)
    items["mpaa"] = pd.Series(mpaa, dtype=object, index=items.index)

    summaries = assets.plot_summaries()
    by_title: dict[str, list[tuple[int | None, str]]] = {}
    for key, text in summaries.items():
        # Keys are Wikipedia titles: "Vertigo (film)", "Hamlet (1996 film)", but also "Heat" (physics).
        m = re.match(r"^(?P<title>.*?)\s*\((?P<note>[^()]*)\)$", key)
        title, note = (m.group("title"), m.group("note")) if m else (key, "")
        first = re.split(r"(?<=[a-z0-9)])\.\s", text.strip(), maxsplit=1)[0][:400]
        if "film" not in note and not re.search(r"\b(film|movie|documentary)\b", first, re.I):
            continue  # an article about the word, not the film
        year = re.search(r"\b(1[89]\d\d|20\d\d)\b", note) or re.search(r"\b(1[89]\d\d|20\d\d)\b", first)
        by_title.setdefault(normalise_title(title), []).append((int(year.group(1)) if year else None, text.strip()))
    plots = []
    for title, year in zip(items["title"], items["year"]):
        cands = [c for k in _title_keys(title) for c in by_title.get(k, [])]
        plots.append(_pick_plot(cands, None if pd.isna(year) else int(year)))
    items["plot"] = pd.Series(plots, dtype=object, index=items.index)
    counts = {"ggplot2movies_matched": int(items["runtime_min"].notna().sum()),
              "mpaa_known": int(items["mpaa"].notna().sum()),
              "plots_matched": int(items["plot"].notna().sum())}
    return items, counts


def _pick_plot(cands: list[tuple[int | None, str]], year: int | None) -> str | None:
    """The summary whose year agrees with the item's (within one); without years, only a unique one."""
    if year is None:
        return cands[0][1] if len(cands) == 1 and cands[0][0] is None else None
    agree = [text for y, text in cands if y is not None and abs(y - year) <= 1]
    return agree[0] if agree else None


# ============================================================================ item text

def item_text(row: Any) -> str:
    """"Title: Toy Story. Year: 1995. Genres: ... Runtime: 81 min. Rated: PG. IMDb rating 8.2. Tags: ... Plot: ..."

    Tags come before the plot so the encoder's token limit truncates the plot, not the tags.
    """
    parts = [f"Title: {row.title}."]
    if not pd.isna(row.year):
        parts.append(f"Year: {int(row.year)}.")
    if len(row.genres):
        parts.append(f"Genres: {', '.join(row.genres)}.")
    if not pd.isna(row.runtime_min):
        parts.append(f"Runtime: {int(row.runtime_min)} min.")
    if row.mpaa is not None and not pd.isna(row.mpaa):
        parts.append(f"Rated: {row.mpaa}.")
    if not pd.isna(row.imdb_rating):
        parts.append(f"IMDb rating {row.imdb_rating:.1f}.")
    if len(row.tags):
        parts.append(f"Tags: {', '.join(row.tags)}.")
    if row.plot is not None and not pd.isna(row.plot):
        plot = " ".join(str(row.plot).split())
        if len(plot) > PLOT_CHARS_IN_TEXT:
            plot = plot[:PLOT_CHARS_IN_TEXT].rsplit(" ", 1)[0] + " ..."
        parts.append(f"Plot: {plot}")
    return " ".join(parts)
