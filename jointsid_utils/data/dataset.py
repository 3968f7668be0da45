"""Items and interactions in one schema (STUDY.md §4): the data stage of notebook 01.

``load_dataset(cfg)`` returns two frames:

- items: ``item_id`` (int64, 0..n-1, row i = item i), ``source_id`` (str), ``title`` (no year,
  leading article restored), ``year`` (Int64), ``genres`` (list of str), ``runtime_min`` (Int64),
  ``imdb_rating`` (float), ``mpaa`` (str), ``plot`` (str), ``tags`` (list of str), ``text`` (str, the
  encoder input; only the fields present).
- interactions: ``user_id`` (int64, 0..m-1), ``item_id``, ``timestamp`` (int64), ``rating`` (float32),
  ``split`` ("train" | "validation" | "test"), sorted by user, time, item. Every rating counts as an
  interaction (implicit feedback, as the paper).

``prepare_data(cfg)`` caches both under ``runs/<profile>/data/`` keyed by the data section and seed.
The steps live in ``movielens`` (raw loaders), ``split`` (slicing, ids, the split), ``enrich``
(attributes, plots, item text) and ``titles`` (title parsing).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from jointsid_utils.cache import cached, is_fresh, run_dir, save_parquet
from jointsid_utils.config import StudyConfig, as_dict, stable_hash
from jointsid_utils.data.enrich import enrich_items, item_text
from jointsid_utils.data.movielens import raw_ml100k, raw_movielens_csv
from jointsid_utils.data.split import reindex, slice_interactions, split_leave_last_out
from jointsid_utils.errors import StudyInputError

log = logging.getLogger(__name__)

SOURCES = ("ml-100k", "movielens-csv")
SCHEMA_VERSION = 1  # bump when the output schema or text template changes, so caches rebuild
ITEM_COLUMNS = ["item_id", "source_id", "title", "year", "genres", "runtime_min", "imdb_rating", "mpaa",
                "plot", "tags", "text"]


def load_dataset(cfg: StudyConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Items and split interactions for ``cfg.data`` (see the module docstring for the schema)."""
    data = cfg.data
    _check_data_config(cfg)
    if data.source == "ml-100k":
        items, ratings = raw_ml100k()
    elif data.source == "movielens-csv":
        items, ratings = raw_movielens_csv(data.path)
    else:
        raise StudyInputError(f"Unknown data.source {data.source!r}; choose one of: {', '.join(SOURCES)}.")
    ratings = slice_interactions(ratings, cfg)
    items, interactions = reindex(items, ratings)
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
