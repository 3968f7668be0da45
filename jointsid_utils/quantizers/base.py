"""The quantizer interface: ``fit(X) -> self``, ``encode(X) -> int64 (n, levels)``, ``diagnostics()``.

Every method is one subclass with a frozen, commented config dataclass (the nanoGPT habit: the
config is complete, keyword-only, and unknown keys or wrong types fail with one sentence). Inputs
are float32 arrays, outputs int64 arrays: quantizers know nothing about items, data frames or
profiles, so they can be tested and benchmarked alone (STUDY.md §2b).
"""

from __future__ import annotations

import dataclasses
import time
import typing
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from jointsid_utils.config import as_dict
from jointsid_utils.errors import StudyInputError
from jointsid_utils.typecheck import check_value


@dataclass(frozen=True, kw_only=True)
class QuantizerConfig:
    levels: int = 2  # code positions per item before the dedup level (the paper: 2)
    codebook_size: int = 64  # codes per level (the paper: 256 for 62k items)
    seed: int = 0  # every random choice (init, sampling, minibatch order) derives from it


class Quantizer(ABC):
    """Arrays in, codes out. Subclasses set ``name``, ``Config`` and implement ``_fit`` / ``_encode``."""

    name: ClassVar[str]
    Config: ClassVar[type[QuantizerConfig]] = QuantizerConfig

    def __init__(self, **config: Any) -> None:
        self.cfg = build_config(self.Config, config, owner=self.name)
        self._check_config()
        self.fit_seconds: float | None = None
        self.encode_seconds: float | None = None
        self.dim: int | None = None
        self.history: list[dict[str, Any]] = []  # training log (gradient-trained methods)
        self._diagnostics: dict[str, Any] = {}

    # public API ---------------------------------------------------------------------------
    @property
    def config(self) -> dict[str, Any]:
        """The resolved config as a JSON-ready dict (saved beside every artifact)."""
        return as_dict(self.cfg)

    def fit(self, X: Any) -> "Quantizer":
        X = check_matrix(X, "X")
        cfg = self.cfg
        if cfg.codebook_size > X.shape[0]:
            raise StudyInputError(
                f"{self.name}: codebook size {cfg.codebook_size} is larger than the {X.shape[0]} items; "
                f"use at most {X.shape[0]} (better: a few items per code, e.g. {max(2, X.shape[0] // 8)}).")
        self.dim = X.shape[1]
        self.history = []
        started = time.perf_counter()
        self._diagnostics = dict(self._fit(X) or {})
        self.fit_seconds = time.perf_counter() - started
        return self

    def encode(self, X: Any) -> np.ndarray:
        if self.dim is None:
            raise StudyInputError(f"{self.name}: encode was called before fit; call fit(X) first.")
        X = check_matrix(X, "X")
        if X.shape[1] != self.dim:
            raise StudyInputError(f"{self.name}: X has {X.shape[1]} columns but the quantizer was fitted on "
                                  f"{self.dim}; encode vectors from the same embedding.")
        started = time.perf_counter()
        codes = np.asarray(self._encode(X), dtype=np.int64).reshape(X.shape[0], self.cfg.levels)
        self.encode_seconds = time.perf_counter() - started
        return codes

    def diagnostics(self) -> dict[str, Any]:
        """Training-time facts: ``reconstruction_mse`` (None if undefined), ``fit_seconds``, and
        method-specific entries such as the loss history of gradient-trained quantizers."""
        out = {"quantizer": self.name, "config": self.config, "fit_seconds": self.fit_seconds,
               "reconstruction_mse": None}
        out.update(self._diagnostics)
        if self.history:
            out["history"] = self.history
        return out

    # for subclasses -----------------------------------------------------------------------
    def _check_config(self) -> None:
        cfg = self.cfg
        if cfg.levels < 1:
            raise StudyInputError(f"{self.name}: levels is {cfg.levels}; use levels >= 1 (the paper: 2).")
        if cfg.codebook_size < 2:
            raise StudyInputError(f"{self.name}: codebook_size is {cfg.codebook_size}; use at least 2 codes per level.")

    @abstractmethod
    def _fit(self, X: np.ndarray) -> dict[str, Any] | None:
        """Train on X (float32, finite, non-empty); return diagnostics entries."""

    @abstractmethod
    def _encode(self, X: np.ndarray) -> np.ndarray:
        """Codes (n, levels) for X."""


def check_matrix(X: Any, what: str = "X") -> np.ndarray:
    """A C-contiguous float32 (n, d) copy-or-view of X; bad input raises one sentence."""
    try:
        arr = np.asarray(X)
    except Exception as err:  # noqa: BLE001 - anything not array-like
        raise StudyInputError(f"{what} is not array-like ({type(X).__name__}); pass a float32 array (n_items, dim).") from err
    if arr.ndim != 2:
        raise StudyInputError(f"{what} has shape {arr.shape}; pass a 2-d array (n_items, dim).")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise StudyInputError(f"{what} is empty (shape {arr.shape}); pass at least one item with at least one dimension.")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise StudyInputError(f"{what} has dtype {arr.dtype}; pass real float32 vectors.")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).any(axis=1).sum())
        raise StudyInputError(f"{what} has NaN or infinite values in {bad} rows; fix or drop those embeddings first.")
    return arr


def build_config(cls: type, values: dict[str, Any], owner: str) -> Any:
    """``cls(**values)`` with unknown keys and wrong types reported as one sentence (``typecheck.check_value``)."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    checked = {}
    for key, value in values.items():
        if key not in hints:
            raise StudyInputError(f"{owner}: unknown parameter {key!r}; valid parameters are: {', '.join(names)}.")
        checked[key] = check_value(hints[key], value, f"{owner}: parameter {key!r}")
    return cls(**checked)


def choice(owner: str, key: str, value: str, options: tuple[str, ...]) -> None:
    """Raise one sentence when a string option is not one of ``options``."""
    if value not in options:
        raise StudyInputError(f"{owner}: {key}={value!r} is not supported; choose one of: {', '.join(options)}.")
