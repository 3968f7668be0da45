"""Items and interactions in one schema (STUDY.md §4): the data stage of notebook 01.

``load_dataset(cfg)`` returns two frames:

- items: ``item_id`` (int64, 0..n-1, row i = item i), ``source_id`` (str), ``title`` (no year,
  leading article restored), ``year`` (Int64), ``genres`` (list of str), ``runtime_min`` (Int64),
  ``imdb_rating`` (float), ``mpaa`` (str), ``plot`` (str), ``tags`` (list of str), ``text`` (str, the
  encoder input; only the fields present).
- interactions: ``user_id`` (int64, 0..m-1), ``item_id``, ``timestamp`` (int64), ``rating`` (float32),
  ``split`` ("train" | "validation" | "test"), sorted by user and time (ties in a seeded order). Every
  rating counts as an interaction (implicit feedback, as the paper).

``prepare_data(cfg)`` caches both under ``runs/<folder>/data/`` keyed by the data section and seed;
``items.attrs`` carries the counts and the ingestion repairs (``summary.repairs_table``).
``check_source(cfg)`` is the cheap check the runner makes before any notebook starts.
Every source becomes one ``catalogue.Catalogue`` (``movielens`` adapts the MovieLens files, ``ingest``
reads a user's tables), ``catalogue.clean`` applies the ingestion policy, then ``split`` slices,
reindexes and splits, and ``enrich`` adds attributes, plots and the item text (MovieLens sources).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from jointsid_utils.cache import run_dir, save_parquet
from jointsid_utils.config import DATA_SOURCES, DataConfig, StudyConfig, as_dict, check_data_section
from jointsid_utils.data.catalogue import Catalogue, catalogue_files, clean, read_catalogue
from jointsid_utils.data.enrich import enrich_items, item_text
from jointsid_utils.data.movielens import check_csv_files, ml100k_catalogue, movielens_csv_catalogue
from jointsid_utils.data.split import reindex, slice_interactions, split_leave_last_out
from jointsid_utils.errors import StudyInputError
from jointsid_utils.stages import Stage, Workspace, produce

log = logging.getLogger(__name__)

SOURCES = DATA_SOURCES
DATASET_FILES = ("items.parquet", "interactions.parquet")
ITEM_COLUMNS = ["item_id", "source_id", "title", "year", "genres", "runtime_min", "imdb_rating", "mpaa",
                "plot", "tags", "text"]


def load_dataset(cfg: StudyConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Items and split interactions for ``cfg.data`` (see the module docstring for the schema)."""
    data = cfg.data
    check_data_section(data)
    cat = clean(read_source(data), data)
    ratings = slice_interactions(cat.interactions.rename(columns={"user_id": "user", "item_id": "movie"}), cfg)
    given = cat.items.set_index("item_id")[list(cat.attributes)]
    items, interactions = reindex(cat.items.rename(columns={"item_id": "movie"}), ratings)
    for col in cat.attributes:  # reindex leaves the attributes empty; a catalogue may give them
        items[col] = given[col].reindex(items["source_id"].astype("int64").to_numpy()).set_axis(items.index)
    _check_catalogue(items, data.source)
    counts: dict[str, int] = {"items": len(items), "users": int(interactions["user_id"].nunique()),
                              "interactions": len(interactions)}
    if data.enrich and data.source != "catalogue":
        items, matched = enrich_items(items)
        counts.update(matched)
    if not cat.text_given:
        items["text"] = [item_text(row) for row in items.itertuples(index=False)]
    items = items[ITEM_COLUMNS]
    items.attrs["counts"] = counts
    items.attrs["repairs"] = dict(cat.repairs)
    log.info("data %s: %s", data.source, counts)
    return items, split_leave_last_out(interactions, cfg.seed)


def read_source(data: DataConfig) -> Catalogue:
    """The catalogue of ``data.source`` in source ids, before the ingestion policy."""
    if data.source == "ml-100k":
        return ml100k_catalogue()
    if data.source == "movielens-csv":
        return movielens_csv_catalogue(data)
    return read_catalogue(data)


def check_source(cfg: StudyConfig) -> None:
    """The data section and the headers of its files, checked before any notebook starts (one sentence each)."""
    check_data_section(cfg.data)
    if cfg.data.source == "movielens-csv":
        check_csv_files(cfg.data.path)
    elif cfg.data.source == "catalogue":
        catalogue_files(cfg.data.path)


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
    """``load_dataset`` as a stage, linked into ``runs/<folder>/data/``; reloads while the data section, the
    source files, the seed and the code it reaches are unchanged. A bad source fails before anything is written."""
    check_source(cfg)
    out = run_dir(cfg.folder, "data")
    stage = Stage("data", functools.partial(_build_dataset, cfg), outputs=DATASET_FILES,
                  config={"data": as_dict(cfg.data), "source_stat": source_stat(cfg)}, seed=cfg.seed)
    produce(stage, {name: out / name for name in DATASET_FILES})
    return load_saved(out)


def _build_dataset(cfg: StudyConfig, ws: Workspace) -> None:
    save_dataset(*load_dataset(cfg), ws.out)


def _check_catalogue(items: pd.DataFrame, source: str) -> None:
    """The sliced catalogue needs two or more items (``clean`` already dropped those without a title)."""
    if len(items) < 2:
        raise StudyInputError(f"The {source} catalogue has {len(items)} item(s) with interactions after slicing; "
                              "the study needs at least 2, so use a larger dataset or raise data.max_items.")


def source_stat(cfg: StudyConfig) -> Any:
    """Size and mtime of a user-given source, so replacing the files invalidates the cache."""
    if cfg.data.source == "ml-100k" or not cfg.data.path or not Path(cfg.data.path).expanduser().exists():
        return None
    root = Path(cfg.data.path).expanduser()
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.suffix in (".csv", ".parquet"))
    return [[str(p.relative_to(root.parent)), p.stat().st_size, int(p.stat().st_mtime)] for p in files]
