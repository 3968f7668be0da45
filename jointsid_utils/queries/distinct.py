"""Queries that belong to one item: no text in the pool is written twice, before the split.

A query that another item also has cannot be answered: both items are right. After lower-casing,
stripping punctuation and collapsing whitespace (``normalise_query``), every text that occurs more than
once in the whole pool (``per_item`` queries of every item, not yet split) is *resolved*: a seeded draw
keeps it for one of its rows, and every other row is redrawn by the backend with the same kind and
breadth (the templates write a new one) or, where the backend cannot write one (the LLM answers are
fixed), dropped. Both counts are returned and logged. Resolving before the split means no train,
validation or test text equals another query's text, and the split sees the final strata.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import pandas as pd

from jointsid_utils.queries.matching import normalise_query
from jointsid_utils.runtime.reproducibility import rng

log = logging.getLogger(__name__)

# (item_id, kind, broad or None where unknown, texts to avoid, a label for the seed) -> a new row, or None when
# none can be written
Redraw = Callable[[int, str, "bool | None", set[str], Any], "dict[str, Any] | None"]
MAX_ROUNDS = 5  # a redrawn text avoids every text present, so one round normally settles it


def distinct_pool(frame: pd.DataFrame, seed: int, redraw: Redraw | None = None) -> tuple[pd.DataFrame,
                                                                                        dict[str, int]]:
    """The pool ``frame`` with every repeated text kept once (a seeded owner) and the other rows redrawn (or
    dropped), and the counts of both."""
    frame = frame.copy()
    redrawn = dropped = 0
    for round_ in range(MAX_ROUNDS):
        keys = frame["query"].map(normalise_query)
        colliding = _colliding(keys, seed)
        if not colliding:
            break
        taken = set(keys)
        drop = []
        for index in colliding:
            row = frame.loc[index]
            n_max = row["n_matching_max"]
            broad = None if pd.isna(n_max) else bool(n_max > 1)
            new = redraw(int(row["item_id"]), str(row["kind"]), broad, taken, (int(row["query_id"]), round_)) \
                if redraw is not None else None
            if new is None:
                drop.append(index)
                continue
            for column, value in new.items():
                frame.at[index, column] = value
            taken.add(normalise_query(new["query"]))
            redrawn += 1
        frame = frame.drop(index=drop)
        dropped += len(drop)
    stats = {"shared_redrawn": redrawn, "shared_dropped": dropped, "pool_queries": int(len(frame))}
    if redrawn or dropped:
        log.info("queries: %d queries shared their text with another query of the pool; %d redrawn, %d dropped",
                 redrawn + dropped, redrawn, dropped)
    return frame.reset_index(drop=True), stats


def _colliding(keys: pd.Series, seed: int) -> list[int]:
    """Row labels of the queries to resolve: all but one seeded owner per repeated text, in frame order."""
    out: list[int] = []
    for key, labels in keys.groupby(keys, sort=True).groups.items():
        labels = list(labels)
        if len(labels) > 1:
            keep = int(rng(seed, "queries", "shared-text", key).integers(len(labels)))
            out += labels[:keep] + labels[keep + 1:]
    return sorted(out)
