"""Semantic-ID quantizers: one file per method, one interface (``base.Quantizer``), one registry.

>>> q = make_quantizer("rq_kmeans", levels=2, codebook_size=64, seed=0).fit(X)
>>> codes = q.encode(X)                       # int64 (n, 2)
>>> ids = deduplicate(codes, seed=0)          # int64 (n, 3), every row unique (TIGER)

A new method is one ``Quantizer`` subclass and one line in ``QUANTIZERS``.
"""

from __future__ import annotations

from typing import Any

from jointsid_utils.errors import StudyInputError
from jointsid_utils.quantizers.base import Quantizer, QuantizerConfig
from jointsid_utils.quantizers.collisions import collision_rate, deduplicate, max_items_per_prefix
from jointsid_utils.quantizers.diagnostics import level_stats, perplexity, scheme_diagnostics
from jointsid_utils.quantizers.dict_learning import DictLearning
from jointsid_utils.quantizers.prefix_share import prefix_share_ids, separate_ids
from jointsid_utils.quantizers.residual_lfq import ResidualLFQQuantizer
from jointsid_utils.quantizers.rq_kmeans import RQKMeans
from jointsid_utils.quantizers.rq_vae import RQVAE
from jointsid_utils.quantizers.rq_vae_fixed import RQVAEFixed

QUANTIZERS: dict[str, type[Quantizer]] = {
    "rq_kmeans": RQKMeans,
    "rq_vae": RQVAE,
    "residual_lfq": ResidualLFQQuantizer,
    "dict_learning": DictLearning,
    "rq_vae_fixed": RQVAEFixed,  # notebook 04: k-means init + dead-code replacement
}


def make_quantizer(name: str, **config: Any) -> Quantizer:
    """A quantizer by registry name with its config (unknown keys and bad values fail with one sentence)."""
    if name not in QUANTIZERS:
        raise StudyInputError(f"Unknown quantizer {name!r}; choose one of: {', '.join(QUANTIZERS)}.")
    return QUANTIZERS[name](**config)


__all__ = ["QUANTIZERS", "DictLearning", "Quantizer", "QuantizerConfig", "RQKMeans", "RQVAE", "RQVAEFixed",
           "ResidualLFQQuantizer", "collision_rate", "deduplicate", "level_stats",
           "make_quantizer", "max_items_per_prefix", "perplexity", "prefix_share_ids", "scheme_diagnostics",
           "separate_ids"]
