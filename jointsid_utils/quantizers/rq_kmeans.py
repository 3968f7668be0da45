"""RQ-KMeans: residual k-means with FAISS, the paper's best quantizer (its Table 3).

Implementation choice: per-level ``faiss.Kmeans`` on the residuals (``backend="kmeans"``, the
default), i.e. the textbook RQ-KMeans of OneRec and of the paper's description: level 1 is k-means
on X, level l is k-means on what levels 1..l-1 left unexplained, and encoding is greedy (nearest
centroid per level), exactly the assignment that training optimised. We prefer it over
``faiss.ResidualQuantizer`` because (a) RQ encodes with a beam search over levels
(``max_beam_size``, default 5), so an item's level-1 code is not always its nearest first-level
centroid, which blurs what a first-level token "means" for the generator and the genre-spread
analysis; (b) per-level Kmeans takes any codebook size (RQ needs powers of two: ``nbits`` per
level); (c) determinism is explicit (``seed`` per level). The paper names FAISS's
ResidualQuantizer, so ``backend="residual_quantizer"`` is kept for a side-by-side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from jointsid_utils.errors import StudyInputError
from jointsid_utils.quantizers.base import Quantizer, QuantizerConfig, choice


@dataclass(frozen=True, kw_only=True)
class RQKMeansConfig(QuantizerConfig):
    backend: str = "kmeans"  # "kmeans" (per-level faiss.Kmeans, greedy encode) or "residual_quantizer" (faiss RQ, beam)
    niter: int = 25  # k-means iterations per level (faiss default)
    nredo: int = 1  # k-means restarts per level, best objective kept
    max_points_per_centroid: int = 256  # faiss subsamples training points beyond k * this (seeded)
    max_beam_size: int = 5  # residual_quantizer only: beam width at train and encode time (faiss default)


class RQKMeans(Quantizer):
    name = "rq_kmeans"
    Config = RQKMeansConfig

    def _check_config(self) -> None:
        super()._check_config()
        choice(self.name, "backend", self.cfg.backend, ("kmeans", "residual_quantizer"))
        if self.cfg.backend == "residual_quantizer" and self.cfg.codebook_size & (self.cfg.codebook_size - 1):
            raise StudyInputError(f"{self.name}: backend='residual_quantizer' needs a power-of-two codebook_size, "
                                  f"got {self.cfg.codebook_size}; use backend='kmeans' or e.g. 64/256.")
        if self.cfg.backend == "residual_quantizer" and self.cfg.levels * (self.cfg.codebook_size.bit_length() - 1) > 64:
            raise StudyInputError(f"{self.name}: backend='residual_quantizer' supports up to 64 code bits per item; "
                                  "use fewer levels or backend='kmeans'.")

    def _fit(self, X: np.ndarray) -> dict[str, Any]:
        import faiss

        cfg = self.cfg
        if cfg.backend == "residual_quantizer":
            nbits = int(cfg.codebook_size).bit_length() - 1
            rq = faiss.ResidualQuantizer(X.shape[1], cfg.levels, nbits)
            rq.max_beam_size = cfg.max_beam_size
            rq.cp.seed = cfg.seed
            rq.cp.niter = cfg.niter
            rq.cp.max_points_per_centroid = cfg.max_points_per_centroid
            rq.train(X)
            self._rq = rq
            recon = rq.decode(rq.compute_codes(X))
            return {"reconstruction_mse": float(np.mean((X - recon) ** 2))}
        self.centroids: list[np.ndarray] = []
        residual = X.copy()
        per_level = []
        for level in range(cfg.levels):
            km = faiss.Kmeans(X.shape[1], cfg.codebook_size, niter=cfg.niter, nredo=cfg.nredo,
                              seed=cfg.seed + level, max_points_per_centroid=cfg.max_points_per_centroid,
                              min_points_per_centroid=1,  # only silences faiss's small-catalogue warning
                              verbose=False)
            km.train(residual)
            centroids = np.ascontiguousarray(km.centroids, dtype=np.float32)
            _, assign = km.index.search(residual, 1)
            residual -= centroids[assign[:, 0]]
            self.centroids.append(centroids)
            per_level.append(float(np.mean(residual ** 2)))
        return {"reconstruction_mse": per_level[-1], "reconstruction_mse_per_level": per_level}

    def _encode(self, X: np.ndarray) -> np.ndarray:
        import faiss

        if self.cfg.backend == "residual_quantizer":
            packed = self._rq.compute_codes(X)  # bit-packed; unpack level by level
            return _unpack(packed, self.cfg.levels, int(self.cfg.codebook_size).bit_length() - 1)
        residual = X.copy()
        codes = np.empty((X.shape[0], self.cfg.levels), dtype=np.int64)
        for level, centroids in enumerate(self.centroids):
            index = faiss.IndexFlatL2(centroids.shape[1])
            index.add(centroids)
            _, assign = index.search(residual, 1)
            codes[:, level] = assign[:, 0]
            residual -= centroids[assign[:, 0]]
        return codes


def _unpack(packed: np.ndarray, levels: int, nbits: int) -> np.ndarray:
    """faiss packs codes little-endian, ``nbits`` per level, level 0 in the lowest bits."""
    value = np.zeros(packed.shape[0], dtype=np.uint64)
    for byte in range(packed.shape[1]):
        value |= packed[:, byte].astype(np.uint64) << np.uint64(8 * byte)
    mask = np.uint64((1 << nbits) - 1)
    return np.stack([(value >> np.uint64(nbits * l)) & mask for l in range(levels)], axis=1).astype(np.int64)
