"""The generic catalogue schema (docs/DATA.md): one representation that every source becomes.

A user's catalogue is two tables, CSV or Parquet, in a folder or a zip:

- ``items``: ``item_id`` (integer), ``title``, ``text`` (what the encoders embed); optional ``year``,
  ``categories`` (``|``-separated; the study's genres) and attribute columns: ``tags`` (``|``-separated),
  ``runtime_min``, ``imdb_rating``, ``mpaa``, ``plot`` fill the study's columns of those names; any other
  column is reported and not used (put what the encoder should see into ``text``).
- ``interactions``: ``user_id``, ``item_id`` (integers), ``timestamp`` (Unix seconds or ISO 8601);
  optional ``rating`` (1.0 when absent: the study treats every interaction as implicit feedback).

``read_catalogue`` reads them into a ``Catalogue``, the MovieLens loaders (``movielens``) build the same
from their files, and ``clean`` applies the one ingestion policy to any of them, counting each repair.
``write_catalogue`` writes a catalogue in the schema (how the round-trip test and the docs' example
convert MovieLens).
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from jointsid_utils.cache import save_parquet, write_bytes
from jointsid_utils.config import DataConfig
from jointsid_utils.data.ingest import TableSource
from jointsid_utils.errors import StudyInputError

log = logging.getLogger(__name__)

ITEM_REQUIRED = ("item_id", "title", "text")
ATTRIBUTES = {"runtime_min": "int", "imdb_rating": "float", "mpaa": "str", "plot": "str"}  # the study's columns
ITEM_KINDS = {"item_id": "int", "title": "str", "text": "str", "year": "int", "categories": "list",
              "tags": "list", **ATTRIBUTES}
INTERACTION_REQUIRED = ("user_id", "item_id", "timestamp")
INTERACTION_KINDS = {"user_id": "int", "item_id": "int", "timestamp": "time", "rating": "float"}
WHAT = "the catalogue folder or zip (items and interactions tables, docs/DATA.md)"
HINT = " (the generic schema of docs/DATA.md)"

# The policy's repairs, as the log line and notebook 01's table name them (always listed, 0 included).
DUPLICATE_ITEMS = "exact duplicate item rows, dropped"
UNUSABLE_ITEMS = "items without a title or text, dropped"
THEIR_INTERACTIONS = "interactions of those items, dropped"
DUPLICATE_INTERACTIONS = "exact duplicate interaction rows, dropped"
UNKNOWN_ITEMS = "interactions with items missing from the items table, dropped"
REPEATS = {"keep": "repeated (user, item) interactions, kept (data.repeat_consumption=keep)",
           "last": "repeated (user, item) interactions, collapsed to the latest (data.repeat_consumption=last)"}

# Internal column names and dtypes: the study's (``categories`` is ``genres`` here, as downstream).
SCHEMA_ITEM_COLUMNS = ["item_id", "title", "text", "year", "genres", "tags", *ATTRIBUTES]
EMPTY_ATTRIBUTE = {"runtime_min": "Int64", "imdb_rating": "float64", "mpaa": object, "plot": object}


@dataclass
class Catalogue:
    """Items and interactions of one source in source ids, before slicing.

    ``items``: ``SCHEMA_ITEM_COLUMNS`` (``text`` None where the study builds it from the attributes: MovieLens);
    ``interactions``: ``user_id``, ``item_id``, ``timestamp`` (int64), ``rating`` (float32).
    ``attributes`` names the attribute columns the source filled; ``repairs`` counts what was repaired;
    the nouns and the id column are the source's own, for its messages ("movie", "rating", "movieId").
    """

    items: pd.DataFrame
    interactions: pd.DataFrame
    items_where: str
    interactions_where: str
    text_given: bool
    attributes: tuple[str, ...] = ()
    repairs: Counter = field(default_factory=Counter)
    item_noun: str = "item"
    interaction_noun: str = "interaction"
    item_id_column: str = "item_id"


def empty_attributes(n: int) -> dict[str, pd.Series]:
    """The attribute columns of ``n`` items with nothing known."""
    return {col: pd.Series([None] * n, dtype=dtype) for col, dtype in EMPTY_ATTRIBUTE.items()}


# ---------------------------------------------------------------------------------- reading


def catalogue_files(path: str | None) -> tuple[TableSource, str, str]:
    """The catalogue's source and its items and interactions file names, with their headers checked."""
    if not path:
        raise StudyInputError("data.source 'catalogue' needs data.path; pass -p data.path /path/to/folder-or-zip "
                              "(with items and interactions tables, docs/DATA.md).")
    source = TableSource(path, WHAT)
    hint = "give items.csv (or .parquet) and interactions.csv (or .parquet), docs/DATA.md"
    items_file = source.require("items", hint)
    inter_file = source.require("interactions", hint)
    source.header(items_file, ITEM_REQUIRED, tuple(ITEM_KINDS), HINT)
    source.header(inter_file, INTERACTION_REQUIRED, tuple(INTERACTION_KINDS), HINT)
    return source, items_file, inter_file


def read_catalogue(data: DataConfig) -> Catalogue:
    """The items and interactions tables at ``data.path``, converted and in source ids (not yet cleaned)."""
    source, items_file, inter_file = catalogue_files(data.path)
    # Untitled or textless items are the policy's (``clean``), so only a missing id drops a row here.
    raw_items = source.read(items_file, ITEM_KINDS, ITEM_REQUIRED, hint=HINT, drop_blank=("item_id",),
                            max_dropped_share=data.max_dropped_share)
    extra = [c for c in source.header(items_file, ITEM_REQUIRED)[0] if c not in ITEM_KINDS]
    if extra:
        log.info("%s: columns %s are not used by the study (put them into text to embed them)",
                 source.where(items_file), ", ".join(extra))
    n = len(raw_items)
    items = pd.DataFrame({
        "item_id": raw_items["item_id"].astype("int64"),
        "title": raw_items["title"],
        "text": raw_items["text"],
        "year": raw_items["year"].astype("Int64") if "year" in raw_items else pd.array([None] * n, dtype="Int64"),
        "genres": raw_items["categories"] if "categories" in raw_items else [[] for _ in range(n)],
        "tags": raw_items["tags"] if "tags" in raw_items else [[] for _ in range(n)],
    })
    for col, series in empty_attributes(n).items():
        items[col] = (raw_items[col].astype(EMPTY_ATTRIBUTE[col]) if col in raw_items else series).set_axis(items.index)
    raw_inter = source.read(inter_file, INTERACTION_KINDS, INTERACTION_REQUIRED, hint=HINT,
                            drop_blank=tuple(INTERACTION_KINDS), max_dropped_share=data.max_dropped_share)
    interactions = pd.DataFrame({
        "user_id": raw_inter["user_id"].astype("int64"),
        "item_id": raw_inter["item_id"].astype("int64"),
        "timestamp": raw_inter["timestamp"].astype("int64"),
        "rating": (raw_inter["rating"] if "rating" in raw_inter else pd.Series(1.0, index=raw_inter.index))
        .astype("float32"),
    })
    return Catalogue(items, interactions, source.where(items_file), source.where(inter_file), text_given=True,
                     attributes=tuple(c for c in ATTRIBUTES if c in raw_items), repairs=source.repairs)


# ---------------------------------------------------------------------------------- the policy


def clean(cat: Catalogue, data: DataConfig) -> Catalogue:
    """The ingestion policy (docs/DATA.md), every repair counted in ``cat.repairs`` and one log line.

    Exact duplicate rows are dropped; an item id listed twice with different values fails. Items without
    a title (or, where the source gives it, a text) are dropped with their interactions, up to
    ``data.max_dropped_share`` of the items. Interactions of items not in the items table are dropped.
    A user's repeated interactions with one item are kept or collapsed to the latest by
    ``data.repeat_consumption``.
    """
    items, inter, repairs = cat.items, cat.interactions, cat.repairs
    for label in (DUPLICATE_ITEMS, UNUSABLE_ITEMS, THEIR_INTERACTIONS, DUPLICATE_INTERACTIONS, UNKNOWN_ITEMS,
                  REPEATS[data.repeat_consumption]):
        repairs[label] += 0
    if items.empty:
        raise StudyInputError(f"{cat.items_where} lists no {cat.item_noun}s; give the catalogue's {cat.item_noun}s "
                              "(an empty catalogue has nothing to recommend).")
    items, n = _drop_duplicate_items(items, cat, repairs)
    unusable = _blank(items["title"]) | (_blank(items["text"]) if cat.text_given else False)
    if unusable.any():
        first = items.loc[unusable, "item_id"].iloc[0]
        if unusable.mean() > data.max_dropped_share:
            what = "a title or text" if cat.text_given else "a title"
            raise StudyInputError(f"{int(unusable.sum())} of the {n} items in {cat.items_where} have no title "
                                  f"or text (first: id {first}), more than data.max_dropped_share="
                                  f"{data.max_dropped_share:g} allows; give them {what}, or raise "
                                  "data.max_dropped_share to drop them with their interactions.")
        dropped = items.loc[unusable, "item_id"].to_numpy()
        repairs[UNUSABLE_ITEMS] += int(unusable.sum())
        of_dropped = inter["item_id"].isin(dropped)
        repairs[THEIR_INTERACTIONS] += int(of_dropped.sum())
        inter = inter[~of_dropped]
        items = items[~unusable]
    if inter.empty:
        raise StudyInputError(f"{cat.interactions_where} has no {cat.interaction_noun}s; give the catalogue's "
                              f"{cat.interaction_noun}s (the study needs interactions).")
    dup = inter.duplicated()
    if dup.any():
        repairs[DUPLICATE_INTERACTIONS] += int(dup.sum())
        inter = inter[~dup]
    unknown = ~inter["item_id"].isin(items["item_id"].to_numpy())
    if unknown.all():
        raise StudyInputError(f"None of the {len(inter)} {cat.interaction_noun}s in {cat.interactions_where} names "
                              f"an id of {cat.items_where}; give both files from the same export.")
    if unknown.any():
        repairs[UNKNOWN_ITEMS] += int(unknown.sum())
        inter = inter[~unknown]
    inter = _repeat_consumption(inter, data.repeat_consumption, repairs)
    line = ", ".join(f"{what}: {count}" for what, count in repairs.items() if count) or "nothing to repair"
    (log.warning if any(repairs.values()) else log.info)("ingest %s: %s", cat.interactions_where, line)
    return dataclasses.replace(cat, items=items.reset_index(drop=True), interactions=inter.reset_index(drop=True))


def _drop_duplicate_items(items: pd.DataFrame, cat: Catalogue, repairs: Counter) -> tuple[pd.DataFrame, int]:
    """Exact duplicate item rows dropped (counted); one id with two different rows fails."""
    key = items.assign(genres=items["genres"].map(tuple), tags=items["tags"].map(tuple))
    exact = key.duplicated()
    if exact.any():
        repairs[DUPLICATE_ITEMS] += int(exact.sum())
        items, key = items[~exact], key[~exact]
    clash = items["item_id"].duplicated()
    if clash.any():
        raise StudyInputError(f"{cat.items_where} lists {cat.item_id_column} {items['item_id'][clash].iloc[0]} more "
                              f"than once with different values ({int(clash.sum())} such row(s)); keep one row per "
                              f"{cat.item_noun}.")
    return items, len(items)


def _repeat_consumption(inter: pd.DataFrame, mode: str, repairs: Counter) -> pd.DataFrame:
    """``keep``: every repeat stays (counted); ``last``: each (user, item)'s latest row (ties: the later row)."""
    repeats = inter.duplicated(["user_id", "item_id"], keep=False)
    if not repeats.any():
        return inter
    n_extra = int(inter.duplicated(["user_id", "item_id"]).sum())
    if mode == "keep":
        repairs[REPEATS["keep"]] += n_extra
        return inter
    order = np.lexsort((np.arange(len(inter)), inter["timestamp"].to_numpy()))
    latest = inter.iloc[order].drop_duplicates(["user_id", "item_id"], keep="last").index
    repairs[REPEATS["last"]] += n_extra
    return inter[inter.index.isin(latest)]


def _blank(values: pd.Series) -> pd.Series:
    return values.isna() | (values.astype(str).str.strip() == "")


# ---------------------------------------------------------------------------------- writing


def write_catalogue(items: pd.DataFrame, interactions: pd.DataFrame, out_dir: str | Path, *,
                    fmt: str = "csv") -> tuple[Path, Path]:
    """``items`` (study column names; ``genres`` becomes ``categories``) and ``interactions`` written in
    the generic schema, atomically: the columns present of ``SCHEMA_ITEM_COLUMNS`` and of the interactions'."""
    if fmt not in ("csv", "parquet"):
        raise StudyInputError(f"Unknown catalogue format {fmt!r}; choose csv or parquet.")
    out = items[[c for c in SCHEMA_ITEM_COLUMNS if c in items.columns]].rename(columns={"genres": "categories"})
    for col in ("categories", "tags"):
        if col in out:
            if any("|" in str(v) for values in out[col] for v in values):
                raise StudyInputError(f"A value of items.{col} contains '|', the list separator of the schema; "
                                      "replace it before writing the catalogue.")
            out[col] = ["|".join(map(str, values)) for values in out[col]]
    inter = interactions[[c for c in INTERACTION_KINDS if c in interactions.columns]]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        return save_parquet(out_dir / "items.parquet", out), save_parquet(out_dir / "interactions.parquet", inter)
    return (write_bytes(out_dir / "items.csv", out.to_csv(index=False).encode()),
            write_bytes(out_dir / "interactions.csv", inter.to_csv(index=False).encode()))
