"""Unique residual codes without a dedup token: capacity-constrained greedy assignment (``balanced_unique``).

A dedup counter makes every ID unique but carries no meaning: the generator must guess an arbitrary
number for items that share codes. Here the fitted residual codebooks are kept and only the
assignment changes. Level by level, a code under a given prefix may hold at most as many items as
there are full IDs below it (``prod`` of the later codebook sizes; 1 at the last level). Items keep
their nearest code while it has room; the items that overflow a code (the farthest from it) take the
nearest code that still has room, pairs processed by distance. So an item moves only when its
unconstrained ID is shared, and every full ID is unique whenever ``n_items <= prod(codebook sizes)``.
"""

from __future__ import annotations

from math import prod
from typing import Sequence

import numpy as np

from jointsid_utils.errors import StudyInputError
from jointsid_utils.quantizers.base import check_matrix


def squared_distances(X: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """(n, K) squared euclidean distances in float64 (one computation shared by both encoders below)."""
    X, C = X.astype(np.float64), centroids.astype(np.float64)
    return np.maximum((X ** 2).sum(1)[:, None] - 2 * X @ C.T + (C ** 2).sum(1)[None, :], 0.0)


def capacitated_assign(dist: np.ndarray, groups: np.ndarray, capacity: int) -> np.ndarray:
    """One code per row of ``dist`` (n, K), at most ``capacity`` rows per (group, code).

    Rows keep their nearest code unless more than ``capacity`` rows of their group chose it; then the
    nearest ``capacity`` keep it (ties by row index) and the rest take, pair by pair in order of
    distance, the nearest code of their group with room left. Raises one sentence when a group has
    more rows than ``K * capacity``.
    """
    n, K = dist.shape
    groups = np.unique(np.asarray(groups), return_inverse=True)[1].reshape(-1)
    sizes = np.bincount(groups)
    if len(sizes) and sizes.max() > K * capacity:
        raise StudyInputError(f"A group of {int(sizes.max())} items cannot fit {K} codes x {capacity} items each; "
                              "use larger codebooks or more levels.")
    rows = np.arange(n)
    nearest = dist.argmin(axis=1)
    bucket = groups * K + nearest
    order = np.lexsort((rows, dist[rows, nearest], bucket))  # by bucket, then distance, then row
    starts = np.r_[0, np.flatnonzero(np.diff(bucket[order])) + 1]
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))
    keep = rank < capacity
    codes = np.where(keep, nearest, -1)
    room = capacity - np.bincount(bucket[keep], minlength=len(sizes) * K)
    movers = np.flatnonzero(~keep)
    if movers.size:
        d = dist[movers]
        pair_order = np.lexsort((np.tile(np.arange(K), movers.size), np.repeat(np.arange(movers.size), K),
                                 d.reshape(-1)))
        left = movers.size
        for p in pair_order:
            m, code = divmod(int(p), K)
            row = movers[m]
            slot = groups[row] * K + code
            if codes[row] < 0 and room[slot] > 0:
                codes[row], room[slot] = code, room[slot] - 1
                left -= 1
                if not left:
                    break
    return codes.astype(np.int64)


def _check(X: np.ndarray, centroids: Sequence[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    X = check_matrix(X, "X")
    cents = [check_matrix(c, f"centroids of level {l}") for l, c in enumerate(centroids)]
    if not cents or any(c.shape[1] != X.shape[1] for c in cents):
        raise StudyInputError(f"centroids must be a non-empty list of (K, {X.shape[1]}) arrays, one per level, "
                              "in the dimension of X.")
    return X, cents


def greedy_residual_codes(X: np.ndarray, centroids: Sequence[np.ndarray]) -> np.ndarray:
    """Plain residual encoding (nearest centroid per level): the IDs before any reassignment."""
    X, cents = _check(X, centroids)
    residual = X.astype(np.float64)
    codes = np.empty((len(X), len(cents)), dtype=np.int64)
    for level, C in enumerate(cents):
        codes[:, level] = squared_distances(residual, C).argmin(axis=1)
        residual -= C[codes[:, level]]
    return codes


def unique_residual_codes(X: np.ndarray, centroids: Sequence[np.ndarray]) -> np.ndarray:
    """Residual codes (n, levels) in which every row is distinct, from fitted per-level ``centroids``."""
    X, cents = _check(X, centroids)
    sizes = [len(c) for c in cents]
    if len(X) > prod(sizes):
        raise StudyInputError(f"{len(X)} items cannot all get distinct IDs from codebooks of sizes {sizes} "
                              f"({prod(sizes)} IDs); use larger codebooks or more levels.")
    residual = X.astype(np.float64)
    codes = np.empty((len(X), len(cents)), dtype=np.int64)
    groups = np.zeros(len(X), dtype=np.int64)
    for level, C in enumerate(cents):
        codes[:, level] = capacitated_assign(squared_distances(residual, C), groups, prod(sizes[level + 1:]))
        residual -= C[codes[:, level]]
        groups = np.unique(codes[:, :level + 1], axis=0, return_inverse=True)[1].reshape(-1)
    return codes
