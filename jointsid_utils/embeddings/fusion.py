"""``fused_concat`` and ``fused_svd``: one vector from the ``search`` and ``rec`` vectors (STUDY.md §2.2).

- concat: l2-normalise each, concatenate (dim = d_search + d_rec).
- svd: l2-normalise each, reduce the higher-dimensional one with truncated SVD to the other's
  dimension, add element-wise (dim = min(d_search, d_rec)). No re-normalisation after the SVD, as the
  paper describes it; the reduced part keeps the share of its norm that the top components carry.
"""

from __future__ import annotations

import numpy as np

from jointsid_utils.config import StudyConfig
from jointsid_utils.embeddings.inputs import EmbeddingData


def l2_normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def fuse_concat(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.hstack([l2_normalise(a), l2_normalise(b)]), dtype=np.float32)


def fuse_svd(a: np.ndarray, b: np.ndarray, *, seed: int = 0) -> np.ndarray:
    from sklearn.decomposition import TruncatedSVD

    a, b = l2_normalise(a), l2_normalise(b)
    if a.shape[1] < b.shape[1]:
        a, b = b, a  # a is the higher-dimensional one
    if a.shape[1] > b.shape[1]:
        a = TruncatedSVD(n_components=b.shape[1], random_state=seed).fit_transform(a)
    return np.ascontiguousarray(a + b, dtype=np.float32)


def build_concat(data: EmbeddingData, cfg: StudyConfig) -> np.ndarray:
    return fuse_concat(data.resolve("search"), data.resolve("rec"))


def build_svd(data: EmbeddingData, cfg: StudyConfig) -> np.ndarray:
    return fuse_svd(data.resolve("search"), data.resolve("rec"), seed=cfg.seed + cfg.embeddings.svd_seed_offset)
