"""What every query backend shares: the frame's columns, input checks and the finish.

Both ``templates`` and ``llm`` build rows of ``item_id, query, split, source, kind`` (the templates add
``n_matching_min``, ``n_matching_max`` and ``constraint``) and hand them to ``finish_queries``, so the two
backends give frames of the same schema and order. ``n_matching_min`` counts the catalogue items that
surely fit what the query says and ``n_matching_max`` those that may, where a missing attribute could
match (``matching``); both are NA where that is unknown, as for free text from an LLM. The split itself
is ``splits.assign_splits``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from jointsid_utils.config import StudyConfig
from jointsid_utils.errors import StudyInputError

QUERY_COLUMNS = ["query_id", "item_id", "query", "split", "source", "kind", "n_matching_min", "n_matching_max",
                 "constraint"]
REQUIRED_ITEM_COLUMNS = ("item_id", "title", "year", "genres")


# ---------------------------------------------------------------------------- input checks


def check_items(items: Any) -> None:
    """Fail in one sentence unless ``items`` is a non-empty frame with unique ids and a title per item."""
    if not isinstance(items, pd.DataFrame):
        raise StudyInputError(f"Queries need the items as a pandas DataFrame, got {type(items).__name__}; "
                              "pass the frame from jointsid_utils.data.dataset.")
    missing = [c for c in REQUIRED_ITEM_COLUMNS if c not in items.columns]
    if missing:
        raise StudyInputError(f"The items frame lacks the column(s) {', '.join(missing)}; "
                              "build it with jointsid_utils.data.dataset so it has item_id, title, year and genres.")
    if items.empty:
        raise StudyInputError("The items frame is empty; check the data config (data.max_items) before generating "
                              "queries.")
    if items["item_id"].duplicated().any():
        raise StudyInputError("The items frame has duplicate item_id values; each item needs one unique integer id.")
    blank = items["title"].isna() | (items["title"].astype(str).str.strip() == "")
    if blank.any():
        raise StudyInputError(f"{int(blank.sum())} item(s) have no title (first: item_id "
                              f"{items.loc[blank, 'item_id'].iloc[0]}), and queries are written from it; "
                              "give every item a title (jointsid_utils.data.dataset does).")


def check_split_sizes(cfg: StudyConfig) -> None:
    """``queries.train_per_item`` and ``validation_per_item`` must fit in ``queries.per_item`` (test is the rest)."""
    q = cfg.queries
    if q.per_item < 1 or q.train_per_item < 0 or q.validation_per_item < 0 \
            or q.train_per_item + q.validation_per_item > q.per_item:
        raise StudyInputError(f"queries.train_per_item={q.train_per_item} plus queries.validation_per_item="
                              f"{q.validation_per_item} must be non-negative and at most queries.per_item="
                              f"{q.per_item} (which must be at least 1); fix the overrides.")


# ---------------------------------------------------------------------------- item values


def is_known(value: Any) -> bool:
    """False for None and NA scalars; lists and arrays count as known (they may be empty)."""
    if value is None:
        return False
    if isinstance(value, (list, tuple, np.ndarray)):
        return True
    try:
        return not bool(pd.isna(value))
    except (TypeError, ValueError):
        return True


def as_list(value: Any) -> list:
    """A list column's value as a list: arrays from parquet, "a|b" strings, or nothing."""
    if value is None:
        return []
    if isinstance(value, (list, tuple, np.ndarray)):
        return list(value)
    if isinstance(value, str):
        return [v for v in value.split("|") if v]
    return []


def plain_value(value: Any) -> Any:
    """A cell as plain JSON-able Python (lists, None for NA, numpy scalars unwrapped), for hashing."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return [plain_value(v) for v in value]
    if not is_known(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


# ---------------------------------------------------------------------------- the frame


def exact_title_share(queries: pd.DataFrame, items: pd.DataFrame) -> float:
    """Share of queries containing their item's full title (case-insensitive substring)."""
    titles = items.set_index("item_id")["title"].astype(str).str.lower()
    t = titles.reindex(queries["item_id"]).to_numpy()
    q = queries["query"].str.lower().to_numpy()
    return float(np.mean([ti in qi for ti, qi in zip(t, q)])) if len(q) else 0.0


def finish_queries(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The query frame from rows of ``item_id, query, split, source, kind`` (and optionally ``n_matching_min``,
    ``n_matching_max``, ``constraint``): sorted by item, numbered."""
    frame = pd.DataFrame(rows, columns=QUERY_COLUMNS[1:])
    frame = frame.sort_values("item_id", kind="stable").reset_index(drop=True)
    frame.insert(0, "query_id", np.arange(len(frame), dtype="int64"))
    return conform_queries(frame)


def conform_queries(frame: pd.DataFrame) -> pd.DataFrame:
    """``QUERY_COLUMNS`` in order with their dtypes (ids int64, the ``n_matching_*`` counts nullable Int64, text
    columns str), as parquet round-trips need."""
    frame = frame[QUERY_COLUMNS].copy()
    frame["query_id"] = frame["query_id"].astype("int64")
    frame["item_id"] = frame["item_id"].astype("int64")
    for c in ("n_matching_min", "n_matching_max"):
        frame[c] = pd.to_numeric(frame[c]).astype("Int64")
    frame["constraint"] = frame["constraint"].fillna("")
    for c in ("query", "split", "source", "kind", "constraint"):
        frame[c] = frame[c].astype(str)
    return frame.reset_index(drop=True)
