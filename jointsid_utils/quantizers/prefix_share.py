"""Joint IDs with a shared first code (the paper's ``prefix_share``) and two independent ID sets (``separate``).

The paper trains an encoder over the concatenated [search; rec] embedding with two decoders: the
first token comes from one shared codebook, the following tokens from one codebook per task, and
each decoder reconstructs its task's vector from shared + task tokens. We implement the residual
k-means equivalent (the same relation RQ-KMeans has to RQ-VAE):

1. level 1 (shared): k-means on the joint vector [l2(search); l2(rec)] (each half unit-norm, so
   neither task dominates by scale). Its centroid c = [c_search; c_rec] minimises the joint
   reconstruction error |s - c_search|^2 + |r - c_rec|^2: the shared code is exactly the code an
   identity encoder over the concatenation would pick, and each task's "decoder" reads its own
   block of the centroid.
2. levels 2..L (task-specific): residual k-means, one codebook per task, on that task's own
   residual l2(s) - c_search (resp. l2(r) - c_rec). Shared + task codes therefore reconstruct each
   task's vector, which is what the paper's two decoders are trained to do.

What it does not copy: a learned non-linear encoder/decoder and end-to-end training of the shared
code with the task codes' errors (the shared code is chosen first, greedily, as in any residual
quantiser). Returned codes are (n, L) per task with column 0 identical in both.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from jointsid_utils.errors import StudyInputError
from jointsid_utils.quantizers.base import Quantizer, check_matrix


def _rq_kmeans() -> type[Quantizer]:
    """RQ-KMeans through the registry: a static import would put it in the code fingerprint of every IDs stage
    (``build_ids`` imports this module for ``separate``), and prefix_share's own stage names it anyway."""
    from jointsid_utils.quantizers import QUANTIZERS

    return QUANTIZERS["rq_kmeans"]


def _check_pair(search_vecs: Any, rec_vecs: Any) -> tuple[np.ndarray, np.ndarray]:
    s, r = check_matrix(search_vecs, "search_vecs"), check_matrix(rec_vecs, "rec_vecs")
    if len(s) != len(r):
        raise StudyInputError(f"search_vecs has {len(s)} rows but rec_vecs has {len(r)}; "
                              "pass one row per item, in the same item order, for both.")
    return s, r


def _l2(X: np.ndarray) -> np.ndarray:
    return (X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def prefix_share_fit(search_vecs: Any, rec_vecs: Any, *, levels: int = 2, codebook_size: int = 64, seed: int = 0,
                     **rq_kmeans_config: Any) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """``prefix_share_ids`` plus an info dict (per-task reconstruction MSE, timings, quantizer diagnostics)."""
    import time

    if not isinstance(levels, int) or levels < 1:
        raise StudyInputError(f"prefix_share: levels is {levels!r}; use levels >= 1 (level 1 is the shared code).")
    s, r = _check_pair(search_vecs, rec_vecs)
    started = time.perf_counter()
    s, r = _l2(s), _l2(r)
    RQKMeans = _rq_kmeans()
    shared = RQKMeans(levels=1, codebook_size=codebook_size, seed=seed, **rq_kmeans_config).fit(np.hstack([s, r]))
    col0 = shared.encode(np.hstack([s, r]))
    centroids = shared.centroids[0]
    residuals = {"search": s - centroids[col0[:, 0], :s.shape[1]], "rec": r - centroids[col0[:, 0], s.shape[1]:]}
    out, info = {}, {"shared": shared.diagnostics()}
    for salt, task in enumerate(("search", "rec"), start=1):
        res = residuals[task]
        if levels > 1:
            q = RQKMeans(levels=levels - 1, codebook_size=codebook_size, seed=seed + 1000 * salt,
                         **rq_kmeans_config).fit(res)
            rest = q.encode(res)
            info[task] = q.diagnostics()
            mse = q.diagnostics()["reconstruction_mse"]
        else:
            rest = np.empty((len(res), 0), dtype=np.int64)
            mse = float(np.mean(res ** 2))
        out[task] = np.concatenate([col0, rest], axis=1)
        info[f"{task}_reconstruction_mse"] = mse
    info["seconds"] = time.perf_counter() - started
    return out["search"], out["rec"], info


def prefix_share_ids(search_vecs: Any, rec_vecs: Any, *, levels: int = 2, codebook_size: int = 64, seed: int = 0,
                     **rq_kmeans_config: Any) -> tuple[np.ndarray, np.ndarray]:
    """(search_codes, rec_codes), each int64 (n, levels), column 0 shared; ``levels`` counts the shared level."""
    s, r, _ = prefix_share_fit(search_vecs, rec_vecs, levels=levels, codebook_size=codebook_size, seed=seed,
                               **rq_kmeans_config)
    return s, r


def separate_quantizers(search_vecs: Any, rec_vecs: Any,
                        quantizer_factory: Callable[[], Quantizer]) -> tuple[Quantizer, Quantizer, np.ndarray, np.ndarray]:
    """Two independently fitted quantizers and their codes (used by ``build_ids`` for diagnostics)."""
    s, r = _check_pair(search_vecs, rec_vecs)
    qs, qr = quantizer_factory().fit(s), quantizer_factory().fit(r)
    return qs, qr, qs.encode(s), qr.encode(r)


def separate_ids(search_vecs: Any, rec_vecs: Any,
                 quantizer_factory: Callable[[], Quantizer]) -> tuple[np.ndarray, np.ndarray]:
    """Two independent ID sets (the paper's ``separate``): one quantizer fitted per task's vectors."""
    _, _, s, r = separate_quantizers(search_vecs, rec_vecs, quantizer_factory)
    return s, r
