"""Test queries that belong to one item: no test text equals another query's text, in either split.

A test query that another item also has (as a train or a test query) cannot be answered: both items
are right. After lower-casing, stripping punctuation and collapsing whitespace (``normalise_query``),
every test query whose text occurs for another item, or among the item's own train queries, is
*resolved*: where two items share a test text a seeded draw keeps it for one of them, and every other
colliding test query is redrawn by the backend (the templates write a new, narrowed one) or, where the
backend cannot write one (the LLM answers are fixed), dropped. Both counts are returned and logged.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import pandas as pd

from jointsid_utils.queries.matching import normalise_query
from jointsid_utils.reproducibility import rng

log = logging.getLogger(__name__)

# (item_id, kind, texts to avoid, a label for the seed) -> a new test row, or None when none can be written
Redraw = Callable[[int, str, set[str], Any], "dict[str, Any] | None"]
MAX_ROUNDS = 5  # a redrawn text avoids every text present, so one round normally settles it


def distinct_test_queries(frame: pd.DataFrame, seed: int, redraw: Redraw | None = None) -> tuple[pd.DataFrame,
                                                                                                   dict[str, int]]:
    """``frame`` with every colliding test query redrawn (or dropped), and the counts of both."""
    frame = frame.copy()
    redrawn = dropped = 0
    for round_ in range(MAX_ROUNDS):
        keys = frame["query"].map(normalise_query)
        colliding = _colliding(frame, keys, seed)
        if not colliding:
            break
        taken = set(keys)
        drop = []
        for index in colliding:
            row = frame.loc[index]
            new = redraw(int(row["item_id"]), str(row["kind"]), taken, (int(row["query_id"]), round_)) \
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
    stats = {"test_redrawn": redrawn, "test_dropped": dropped, "test_queries": int((frame["split"] == "test").sum())}
    if redrawn or dropped:
        log.info("queries: %d test queries shared their text with another item's query or the item's own train "
                 "query; %d redrawn, %d dropped", redrawn + dropped, redrawn, dropped)
    return frame.reset_index(drop=True), stats


def _colliding(frame: pd.DataFrame, keys: pd.Series, seed: int) -> list[int]:
    """Row labels of the test queries to resolve, in frame order."""
    is_test = (frame["split"] == "test").to_numpy()
    train_keys = set(keys[~is_test])
    out: list[int] = []
    for key, labels in keys[is_test].groupby(keys[is_test], sort=True).groups.items():
        labels = list(labels)
        if key in train_keys:
            out += labels
        elif len(labels) > 1:  # several test queries, one text: a seeded one keeps it
            keep = int(rng(seed, "queries", "shared-test-text", key).integers(len(labels)))
            out += labels[:keep] + labels[keep + 1:]
    return sorted(out)
