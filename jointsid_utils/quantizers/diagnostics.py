"""ID diagnostics (STUDY.md §4): per-level usage and perplexity, collisions, timings."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from jointsid_utils.quantizers.collisions import check_codes, collision_rate, max_items_per_prefix


def perplexity(column: np.ndarray) -> float:
    """exp(entropy) of the code distribution, natural log: 1 if one code, k if k codes used uniformly."""
    _, counts = np.unique(np.asarray(column), return_counts=True)
    p = counts / counts.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def level_stats(column: np.ndarray, codebook_size: int) -> dict[str, Any]:
    """``codebook_size``, ``used`` codes, ``perplexity``, ``top_code_share`` (items in the largest code)."""
    _, counts = np.unique(np.asarray(column), return_counts=True)
    return {"codebook_size": int(codebook_size), "used": int(counts.size), "perplexity": perplexity(column),
            "top_code_share": float(counts.max() / counts.sum())}


def scheme_diagnostics(codes: np.ndarray, codebook_sizes: int | Sequence[int], *, quantizer: str | None = None,
                       config: dict[str, Any] | None = None, reconstruction_mse: float | None = None,
                       fit_seconds: float | None = None, encode_seconds: float | None = None) -> dict[str, Any]:
    """The §4 JSON for one ID set; ``codes`` are the pre-dedup codes (n, L)."""
    codes = check_codes(codes)
    sizes = [codebook_sizes] * codes.shape[1] if isinstance(codebook_sizes, (int, np.integer)) else list(codebook_sizes)
    return {
        "quantizer": quantizer, "config": config, "n_items": int(codes.shape[0]),
        "collision_rate": collision_rate(codes), "max_items_per_prefix": max_items_per_prefix(codes),
        "distinct_prefixes": int(np.unique(codes, axis=0).shape[0]),
        "levels": [level_stats(codes[:, l], sizes[l]) for l in range(codes.shape[1])],
        "reconstruction_mse": None if reconstruction_mse is None else float(reconstruction_mse),
        "fit_seconds": fit_seconds, "encode_seconds": encode_seconds,
    }
