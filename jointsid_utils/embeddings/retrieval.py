"""Exact nearest-neighbour Recall@k (inner product), optionally with a user's history items removed.

Vectors are small here (thousands of items), so a blocked NumPy matrix product is exact and as fast as
``faiss.IndexFlatIP``; the ``exclude`` lists need per-row masking, which NumPy does directly.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def top_k(queries: np.ndarray, items: np.ndarray, *, k: int,
          exclude: Sequence[np.ndarray] | None = None, block: int = 2048) -> np.ndarray:
    """Indices (n_queries, k) of the highest inner products, best first; ``exclude[i]`` never ranked for row i."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    items = np.ascontiguousarray(items, dtype=np.float32)
    k = min(k, items.shape[0])
    out = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), block):
        out[start:start + block] = top_k_of_scores(queries[start:start + block] @ items.T, k=k,
                                                   exclude=None if exclude is None else exclude[start:start + block])
    return out


def top_k_of_scores(scores: np.ndarray, *, k: int, exclude: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """Column indices of each row's ``k`` highest scores, best first (``scores`` is modified when excluding)."""
    k = min(k, scores.shape[1])
    if exclude is not None:
        for row, seen in enumerate(exclude):
            if len(seen):
                scores[row, np.asarray(seen)] = -np.inf
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def recall_at_k(ranked: np.ndarray, target: np.ndarray) -> float:
    """Share of rows whose single relevant item is among the ranked ids."""
    if len(target) == 0:
        return float("nan")
    return float((ranked == np.asarray(target)[:, None]).any(axis=1).mean())


def history_mean(item_vectors: np.ndarray, history: Sequence[np.ndarray], k: int) -> np.ndarray:
    """One user vector per history: the mean of the last ``k`` item vectors (zeros for an empty history)."""
    out = np.zeros((len(history), item_vectors.shape[1]), dtype=np.float32)
    for row, items in enumerate(history):
        if len(items):
            out[row] = item_vectors[np.asarray(items)[-k:]].mean(axis=0)
    return out
