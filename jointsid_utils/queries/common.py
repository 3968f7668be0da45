"""What every query backend shares: the frame's columns, input checks, the seeded split and the finish.

Both ``templates`` and ``llm`` build rows of ``item_id, query, split, source, kind`` (the templates add
``n_matching`` and ``constraint``) and hand them to ``finish_queries``, so the two backends give frames
of the same schema and order. ``n_matching`` is the number of catalogue items that fit what the query
says (``matching``); it is missing (NA) where that is unknown, as for free text from an LLM.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from jointsid_utils.config import StudyConfig
from jointsid_utils.errors import StudyInputError

QUERY_COLUMNS = ["query_id", "item_id", "query", "split", "source", "kind", "n_matching", "constraint"]
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
    """``queries.train_per_item`` must fit in ``queries.per_item``."""
    q = cfg.queries
    if q.per_item < 1 or not 0 <= q.train_per_item <= q.per_item:
        raise StudyInputError(f"queries.train_per_item={q.train_per_item} must lie between 0 and "
                              f"queries.per_item={q.per_item} (which must be at least 1); fix the overrides.")


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


# ---------------------------------------------------------------------------- split and frame


def split_labels(kinds: list[str], n_train: int, gen: np.random.Generator,
                 broad: list[bool] | None = None) -> list[str]:
    """Exactly ``n_train`` "train" labels: the ``broad`` queries first (a seeded subset if there are more),
    the rest stratified by kind (systematic sampling over kind-sorted queries).

    Broad queries (several items fit them) go to train because a test case on one is partly a guess.
    """
    n = len(kinds)
    labels = ["test"] * n
    broad_ids = [i for i in range(n) if broad is not None and broad[i]]
    if broad_ids:
        for i in gen.permutation(broad_ids)[:n_train]:
            labels[int(i)] = "train"
    rest = [i for i in range(n) if labels[i] == "test"]
    n_left = n_train - (n - len(rest))
    kind_rank = {k: r for r, k in enumerate(gen.permutation(sorted({kinds[i] for i in rest})))}
    order = sorted(rest, key=lambda i: (kind_rank[kinds[i]], gen.random()))
    if n_left > 0:
        step, start = len(rest) / n_left, gen.random() * len(rest) / n_left
        for j in range(n_left):
            labels[order[int(start + j * step)]] = "train"
    return labels


def exact_title_share(queries: pd.DataFrame, items: pd.DataFrame) -> float:
    """Share of queries containing their item's full title (case-insensitive substring)."""
    titles = items.set_index("item_id")["title"].astype(str).str.lower()
    t = titles.reindex(queries["item_id"]).to_numpy()
    q = queries["query"].str.lower().to_numpy()
    return float(np.mean([ti in qi for ti, qi in zip(t, q)])) if len(q) else 0.0


def finish_queries(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The query frame from rows of ``item_id, query, split, source, kind`` (and optionally ``n_matching``,
    ``constraint``): sorted by item, numbered."""
    frame = pd.DataFrame(rows, columns=QUERY_COLUMNS[1:])
    frame = frame.sort_values("item_id", kind="stable").reset_index(drop=True)
    frame.insert(0, "query_id", np.arange(len(frame), dtype="int64"))
    return conform_queries(frame)


def conform_queries(frame: pd.DataFrame) -> pd.DataFrame:
    """``QUERY_COLUMNS`` in order with their dtypes (ids int64, ``n_matching`` nullable Int64, text columns str),
    as parquet round-trips need."""
    frame = frame[QUERY_COLUMNS].copy()
    frame["query_id"] = frame["query_id"].astype("int64")
    frame["item_id"] = frame["item_id"].astype("int64")
    frame["n_matching"] = pd.to_numeric(frame["n_matching"]).astype("Int64")
    frame["constraint"] = frame["constraint"].fillna("")
    for c in ("query", "split", "source", "kind", "constraint"):
        frame[c] = frame[c].astype(str)
    return frame.reset_index(drop=True)
