"""A shared first code from a joint vector, then residual codes per task in each task's own space.

``prefix_share`` picks its shared code by k-means on [search; rec]. Here the shared code comes from a
vector trained for both tasks at once (the multi-task bi-encoder, the paper's best compromise), and
each task then refines it where that task is best described:

1. level 0: k-means on the shared vectors (l2-normalised).
2. task levels: the shared code's decoder in a task's space is the mean of that task's (unit) vectors
   over the items under the code (the least-squares choice, and what prefix_share's joint centroid
   halves are). Residual k-means on ``task vector - that mean`` gives the task's levels 1..L-1.

Why the residual is taken in the task's space and not in the shared one: residual k-means on the
shared residual would give both tasks the same target, so the two blocks would differ only by seed.
In the task's space, shared + task codes reconstruct that task's vector, which is what each task
decodes. Codes are (n, levels) per task with column 0 identical in all of them.
"""

from __future__ import annotations

import time
from typing import Any, Mapping

import numpy as np

from jointsid_utils.errors import StudyInputError
from jointsid_utils.quantizers.base import check_matrix
from jointsid_utils.quantizers.rq_kmeans import RQKMeans
from jointsid_utils.runtime.reproducibility import rng


def unit_rows(X: np.ndarray) -> np.ndarray:
    return (X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def cluster_means(X: np.ndarray, codes: np.ndarray, k: int) -> np.ndarray:
    """(k, d) mean of the rows of X under each code; zero for a code no row uses."""
    sums = np.zeros((k, X.shape[1]), dtype=np.float64)
    np.add.at(sums, codes, X)
    return (sums / np.maximum(np.bincount(codes, minlength=k), 1)[:, None]).astype(np.float32)


def shared_then_task_fit(shared_vecs: Any, task_vecs: Mapping[str, Any], *, levels: int = 2,
                         codebook_size: int = 64, seed: int = 0,
                         **rq_kmeans_config: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """task -> int64 (n, levels) codes sharing column 0, and an info dict (per-task MSE, seconds)."""
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 2:
        raise StudyInputError(f"shared_then_task: levels is {levels!r}; use levels >= 2 (level 0 shared, "
                              "then at least one task-specific level).")
    shared = unit_rows(check_matrix(shared_vecs, "shared_vecs"))
    tasks = {t: unit_rows(check_matrix(v, f"{t} vectors")) for t, v in task_vecs.items()}
    if not tasks or any(len(v) != len(shared) for v in tasks.values()):
        raise StudyInputError(f"shared_then_task needs at least one task matrix with the {len(shared)} rows of "
                              "shared_vecs, one row per item in the same order.")
    started = time.perf_counter()
    level0 = RQKMeans(levels=1, codebook_size=codebook_size, seed=seed, **rq_kmeans_config).fit(shared)
    col0 = level0.encode(shared)
    codes: dict[str, np.ndarray] = {}
    info: dict[str, Any] = {"shared_reconstruction_mse": level0.diagnostics()["reconstruction_mse"]}
    for task, X in tasks.items():
        residual = X - cluster_means(X, col0[:, 0], codebook_size)[col0[:, 0]]
        task_seed = int(rng(seed, "shared_then_task", task).integers(2 ** 31 - levels))
        q = RQKMeans(levels=levels - 1, codebook_size=codebook_size, seed=task_seed, **rq_kmeans_config).fit(residual)
        codes[task] = np.concatenate([col0, q.encode(residual)], axis=1)
        info[f"{task}_reconstruction_mse"] = q.diagnostics()["reconstruction_mse"]
        info[f"{task}_level0_mse"] = float(np.mean(residual ** 2))
    info["seconds"] = time.perf_counter() - started
    return codes, info
