"""Collision handling: a last level that numbers items sharing a prefix (TIGER, Rajput et al. 2023; GRID).

Without it two items with the same codes are one ID and the generator cannot name either; with it
every full ID names exactly one item. Inside a prefix group the numbering follows a seeded random
key, never the item index: item ids follow source order, which tracks popularity, so index order
would hand counter 0 to the same kind of item in every group, a popularity prior the generator could
learn (STUDY.md, "Ties in the split and the dedup level"). The same codes and seed give the same
numbering.
"""

from __future__ import annotations

import numpy as np

from jointsid_utils.errors import StudyInputError
from jointsid_utils.runtime.reproducibility import rng


def check_codes(codes: np.ndarray) -> np.ndarray:
    """``codes`` as a non-empty 2-d int64 array (n_items, levels); anything else raises one sentence."""
    arr = np.asarray(codes)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise StudyInputError(f"codes has shape {arr.shape}; pass a non-empty 2-d integer array (n_items, levels).")
    if not np.issubdtype(arr.dtype, np.integer):
        raise StudyInputError(f"codes has dtype {arr.dtype}; pass integer codes from a quantizer's encode().")
    return arr.astype(np.int64, copy=False)


def _groups(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    _, inverse, counts = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
    return inverse.reshape(-1), counts


def deduplicate(codes: np.ndarray, *, seed: int) -> np.ndarray:
    """``codes`` (n, L) -> (n, L + 1): the new last column is 0, 1, 2, ... among items with the same
    L codes, in the order of a random key drawn from ``rng(seed, "dedup")``."""
    codes = check_codes(codes)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise StudyInputError(f"deduplicate needs an integer seed (the study seed), got {seed!r}.")
    inverse, _ = _groups(codes)
    key = rng(int(seed), "dedup").permutation(len(codes))
    order = np.lexsort((key, inverse))  # items grouped by prefix, key order inside a group
    sorted_groups = inverse[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_groups)) + 1]
    rank_sorted = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    counter = np.empty(len(order), dtype=np.int64)
    counter[order] = rank_sorted
    return np.concatenate([codes, counter[:, None]], axis=1)


def collision_rate(codes: np.ndarray) -> float:
    """Share of items whose (pre-dedup) ID is shared with at least one other item."""
    codes = check_codes(codes)
    inverse, counts = _groups(codes)
    return float(np.mean(counts[inverse] > 1))


def max_items_per_prefix(codes: np.ndarray) -> int:
    """The largest number of items under one full (pre-dedup) ID; also the dedup level's size."""
    return int(_groups(check_codes(codes))[1].max())
