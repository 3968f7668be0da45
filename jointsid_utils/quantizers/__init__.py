"""Semantic-ID quantizers: one file per method, one interface (``base.Quantizer``), one registry.

>>> q = make_quantizer("rq_kmeans", levels=2, codebook_size=64, seed=0).fit(X)
>>> codes = q.encode(X)                       # int64 (n, 2)
>>> ids = deduplicate(codes, seed=0)          # int64 (n, 3), every row unique (TIGER)

A new method is one ``Quantizer`` subclass and one line in ``QUANTIZERS`` (module:Class).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from typing import Any

from jointsid_utils.errors import StudyInputError
from jointsid_utils.quantizers.base import Quantizer, QuantizerConfig
from jointsid_utils.quantizers.collisions import collision_rate, deduplicate, max_items_per_prefix
from jointsid_utils.quantizers.diagnostics import level_stats, perplexity, scheme_diagnostics
from jointsid_utils.quantizers.prefix_share import prefix_share_ids, separate_ids


class _Registry(MutableMapping):
    """Name -> quantizer class, each module imported when its class is first asked for. The package then
    imports no method statically, so a stage's code fingerprint (``jointsid_utils.fingerprint``), which
    follows static imports, reaches only the method it names: editing RQ-KMeans rebuilds RQ-KMeans IDs,
    not RQ-VAE's (the IDs stage adds its quantizer's class to its code). A class registered at run time
    (``QUANTIZERS["mine"] = MyQuantizer``) is kept as it is."""

    def __init__(self, entries: dict[str, str | type[Quantizer]]) -> None:
        self._entries = dict(entries)  # name -> "module:Class" under jointsid_utils.quantizers, or a class

    def __getitem__(self, name: str) -> type[Quantizer]:
        entry = self._entries[name]
        if not isinstance(entry, str):
            return entry
        module, cls = entry.split(":")
        return getattr(importlib.import_module(f"jointsid_utils.quantizers.{module}"), cls)

    def __setitem__(self, name: str, entry: str | type[Quantizer]) -> None:
        self._entries[name] = entry

    def __delitem__(self, name: str) -> None:
        del self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


QUANTIZERS: MutableMapping[str, type[Quantizer]] = _Registry({
    "rq_kmeans": "rq_kmeans:RQKMeans",
    "rq_vae": "rq_vae:RQVAE",
    "residual_lfq": "residual_lfq:ResidualLFQQuantizer",
    "dict_learning": "dict_learning:DictLearning",
    "rq_vae_fixed": "rq_vae_fixed:RQVAEFixed",  # notebook 04: k-means init + dead-code replacement
})
_CLASSES = {"RQKMeans": "rq_kmeans", "RQVAE": "rq_vae", "ResidualLFQQuantizer": "residual_lfq",
            "DictLearning": "dict_learning", "RQVAEFixed": "rq_vae_fixed"}


def __getattr__(name: str) -> Any:
    """``from jointsid_utils.quantizers import RQVAE`` still works, importing that one module (PEP 562)."""
    if name in _CLASSES:
        return QUANTIZERS[_CLASSES[name]]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_quantizer(name: str, **config: Any) -> Quantizer:
    """A quantizer by registry name with its config (unknown keys and bad values fail with one sentence)."""
    if name not in QUANTIZERS:
        raise StudyInputError(f"Unknown quantizer {name!r}; choose one of: {', '.join(QUANTIZERS)}.")
    return QUANTIZERS[name](**config)


__all__ = ["QUANTIZERS", "DictLearning", "Quantizer", "QuantizerConfig", "RQKMeans", "RQVAE", "RQVAEFixed",
           "ResidualLFQQuantizer", "collision_rate", "deduplicate", "level_stats",
           "make_quantizer", "max_items_per_prefix", "perplexity", "prefix_share_ids", "scheme_diagnostics",
           "separate_ids"]
