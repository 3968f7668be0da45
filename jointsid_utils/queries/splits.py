"""One split rule for the three query splits: per-item quotas, equal global mix of every stratum.

Each item keeps exactly its ``train / validation / test`` counts (``queries.train_per_item``,
``validation_per_item`` and the rest), and every stratum (kind x breadth) takes the same share of every
split, so validation and test are as hard as train by construction. Breadth is ``broad`` when more than
one item may fit the query (``n_matching_max > 1``), ``known-item`` when only its own item does, and
``unknown`` where that cannot be counted (LLM queries), whose stratum is then the kind alone.

``assign_splits`` is a seeded controlled rounding: items are visited in a seeded order and each item's
queries fill its quotas, one at a time, with the (stratum, split) pair furthest behind its proportional
target so far; a final pass swaps the splits of two queries of one item while that brings the global
counts closer to the targets, so every (stratum, split) count ends within about one query of
``stratum size x split share``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from jointsid_utils.config import StudyConfig
from jointsid_utils.queries.common import conform_queries
from jointsid_utils.runtime.reproducibility import rng

SPLITS = ("train", "validation", "test")
MAX_SWAPS_PER_CELL = 50  # the greedy pass leaves few cells off target; this bounds the repair loop


def breadth(n_matching_max: pd.Series) -> pd.Series:
    """``broad`` / ``known-item`` / ``unknown`` from ``n_matching_max`` (NA where it is unknown)."""
    values = pd.to_numeric(n_matching_max).astype("Int64")
    out = pd.Series("unknown", index=n_matching_max.index, dtype=object)
    out[values.gt(1).fillna(False).to_numpy(bool)] = "broad"
    out[values.le(1).fillna(False).to_numpy(bool)] = "known-item"
    return out


def strata(queries: pd.DataFrame) -> pd.Series:
    """The stratum of each query, ``kind / breadth``: what the split keeps in equal shares."""
    return queries["kind"].astype(str) + " / " + breadth(queries["n_matching_max"])


def split_sizes(cfg: StudyConfig) -> tuple[int, int, int]:
    """(train, validation, test) queries per item from the config; test is what the other two leave."""
    q = cfg.queries
    return q.train_per_item, q.validation_per_item, q.per_item - q.train_per_item - q.validation_per_item


def item_quota(n_rows: int, sizes: tuple[int, int, int]) -> np.ndarray:
    """An item's (train, validation, test) counts; an item that lost queries to drops loses train first."""
    test = min(sizes[2], n_rows)
    validation = min(sizes[1], n_rows - test)
    return np.array([n_rows - test - validation, validation, test], dtype="int64")


def split_pool(pool: pd.DataFrame, cfg: StudyConfig) -> pd.DataFrame:
    """The de-duplicated pool with its ``split`` set by ``assign_splits`` and the query ids renumbered."""
    labels = assign_splits(pool["item_id"].to_numpy(), strata(pool).to_numpy(), split_sizes(cfg), cfg.seed)
    frame = pool.drop(columns="query_id").assign(split=labels).reset_index(drop=True)
    frame.insert(0, "query_id", np.arange(len(frame), dtype="int64"))
    return conform_queries(frame)


def assign_splits(items: np.ndarray, stratum: np.ndarray, sizes: tuple[int, int, int], seed: int) -> np.ndarray:
    """The split label of every row: per item exactly ``item_quota`` rows per split, and per stratum global
    counts proportional to the split totals (within about one row)."""
    codes, _ = pd.factorize(pd.Series(stratum), sort=True)
    n_strata = int(codes.max()) + 1 if len(codes) else 0
    groups = pd.Series(np.arange(len(codes))).groupby(np.asarray(items)).indices
    item_ids = sorted(groups)
    quotas = {i: item_quota(len(groups[i]), sizes) for i in item_ids}
    total = np.sum(list(quotas.values()), axis=0) if item_ids else np.zeros(3)
    share = total / max(total.sum(), 1)
    gen = rng(seed, "queries", "split")
    split = np.full(len(codes), -1, dtype="int64")
    counts = np.zeros((n_strata, 3))
    seen = np.zeros(n_strata)
    for item in gen.permutation(np.array(item_ids, dtype=object)):
        rows = gen.permutation(groups[item])
        seen += np.bincount(codes[rows], minlength=n_strata)
        _fill_item(rows, codes, quotas[item].copy(), seen, share, counts, split, gen)
    _repair(codes, split, [groups[i] for i in gen.permutation(np.array(item_ids, dtype=object))],
            counts, np.bincount(codes, minlength=n_strata)[:, None] * share[None, :])
    return np.array(SPLITS, dtype=object)[split]


def _fill_item(rows: np.ndarray, codes: np.ndarray, quota: np.ndarray, seen: np.ndarray, share: np.ndarray,
               counts: np.ndarray, split: np.ndarray, gen: np.random.Generator) -> None:
    """Give one item's rows their splits, each time to the (stratum, split) pair furthest behind target."""
    left = {int(s): [int(r) for r in rows if codes[r] == s] for s in np.unique(codes[rows])}
    for _ in range(len(rows)):
        have = np.zeros(len(seen), bool)
        have[[s for s, rs in left.items() if rs]] = True
        deficit = seen[:, None] * share[None, :] - counts + 1e-9 * gen.random(counts.shape)  # seeded tie-break
        deficit[~(have[:, None] & (quota[None, :] > 0))] = -np.inf
        s, p = np.unravel_index(int(np.argmax(deficit)), deficit.shape)
        split[left[int(s)].pop()] = p
        counts[s, p] += 1
        quota[p] -= 1


def _repair(codes: np.ndarray, split: np.ndarray, item_rows: list[np.ndarray], counts: np.ndarray,
            target: np.ndarray) -> None:
    """Swap the splits of two rows of one item while that lowers the squared gap between counts and targets."""
    if counts.size == 0:
        return
    n_strata = counts.shape[0]
    per_item = np.zeros((len(item_rows), n_strata, 3), dtype="int64")
    for i, rows in enumerate(item_rows):
        np.add.at(per_item[i], (codes[rows], split[rows]), 1)
    for _ in range(MAX_SWAPS_PER_CELL * counts.size):
        if not _one_swap(codes, split, item_rows, per_item, counts, counts - target):
            return


def _one_swap(codes: np.ndarray, split: np.ndarray, item_rows: list[np.ndarray], per_item: np.ndarray,
              counts: np.ndarray, gap: np.ndarray) -> bool:
    """Apply the best improving swap for the most over-target cell that has one; False when none does."""
    for flat in np.argsort(-gap, axis=None, kind="stable"):
        s, p = np.unravel_index(int(flat), gap.shape)
        if gap[s, p] <= 0:
            return False
        # moving a row of s from p to p2 and a row of s2 from p2 to p changes the squared gap by `change`
        change = 4 - 2 * gap[s, p] + 2 * gap[s, :][None, :] - 2 * gap + 2 * gap[:, p][:, None]
        change[s, :] = np.inf
        change[:, p] = np.inf
        for flat2 in np.argsort(change, axis=None, kind="stable"):
            s2, p2 = np.unravel_index(int(flat2), change.shape)
            if change[s2, p2] >= -1e-9:
                break
            hit = np.flatnonzero((per_item[:, s, p] > 0) & (per_item[:, s2, p2] > 0))
            if len(hit):
                _swap(hit[0], (s, p), (s2, p2), codes, split, item_rows, per_item, counts)
                return True
    return False


def _swap(i: int, a: tuple[int, int], b: tuple[int, int], codes: np.ndarray, split: np.ndarray,
          item_rows: list[np.ndarray], per_item: np.ndarray, counts: np.ndarray) -> None:
    rows = item_rows[i]
    row_a = next(r for r in rows if codes[r] == a[0] and split[r] == a[1])
    row_b = next(r for r in rows if codes[r] == b[0] and split[r] == b[1])
    split[row_a], split[row_b] = b[1], a[1]
    for (s, p), step in (((a[0], a[1]), -1), ((a[0], b[1]), 1), ((b[0], b[1]), -1), ((b[0], a[1]), 1)):
        per_item[i, s, p] += step
        counts[s, p] += step
