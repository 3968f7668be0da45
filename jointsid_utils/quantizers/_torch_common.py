"""Shared pieces of the gradient-trained quantizers: input normalisation, optimisers, minibatches, the
training log and encoding."""

from __future__ import annotations

from typing import Any

import numpy as np

from jointsid_utils.quantizers.base import Quantizer

NORMALISATIONS = ("none", "l2", "standardise")
OPTIMIZERS = ("adam", "adamw", "adagrad", "sgd")


class Normaliser:
    """``none`` | ``l2`` (unit rows) | ``standardise`` (per-dimension z-score, fitted on the training set)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None

    def fit(self, X: np.ndarray) -> "Normaliser":
        if self.kind == "standardise":
            self.mean = X.mean(axis=0, keepdims=True)
            self.std = X.std(axis=0, keepdims=True) + 1e-6
        return self

    def __call__(self, X: np.ndarray) -> np.ndarray:
        if self.kind == "l2":
            return (X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)).astype(np.float32)
        if self.kind == "standardise":
            return ((X - self.mean) / self.std).astype(np.float32)
        return X


def seeded_input(X: np.ndarray, normalize: str, seed: int) -> tuple[Normaliser, Any, Any]:
    """The start of every gradient-trained fit: torch's global seed set (model initialisation), the input
    normalised (fitted on X) as a tensor, and the seeded generator that orders the minibatches."""
    import torch

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    normaliser = Normaliser(normalize).fit(X)
    return normaliser, torch.from_numpy(normaliser(X)), generator


def make_optimizer(name: str, params: list, lr: float, weight_decay: float) -> Any:
    import torch

    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay)


def minibatches(n: int, batch_size: int, steps: int, generator: Any) -> Any:
    """Yield ``(step, row indices)`` for ``steps`` minibatches: a seeded shuffle per pass over the data,
    reshuffled when the next batch would run past the end (the short tail of a pass is skipped)."""
    import torch

    batch = min(batch_size, n)
    order, cursor = torch.randperm(n, generator=generator), 0
    for step in range(1, steps + 1):
        if cursor + batch > len(order):
            order, cursor = torch.randperm(n, generator=generator), 0
        yield step, order[cursor:cursor + batch]
        cursor += batch


def code_stats(codes: np.ndarray) -> dict[str, Any]:
    """Per level codes used and perplexity, plus distinct full IDs, for the training log."""
    from jointsid_utils.quantizers.diagnostics import perplexity

    return {
        "used": [int(np.unique(codes[:, l]).size) for l in range(codes.shape[1])],
        "perplexity": [round(perplexity(codes[:, l]), 3) for l in range(codes.shape[1])],
        "distinct_ids": int(np.unique(codes, axis=0).shape[0]),
    }


def log_subset(n: int, max_items: int | None, seed: int) -> np.ndarray:
    """A fixed, seeded subset of item rows on which training progress is logged."""
    if max_items is None or n <= max_items:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_items, replace=False))


class GradientQuantizer(Quantizer):
    """A quantizer trained by minibatch gradient steps on normalised input (``rq_vae``, ``residual_lfq``).
    Its ``_fit`` sets ``self.normaliser`` and calls ``_log_step`` after every step; ``_codes`` maps a
    normalised tensor to codes."""

    normaliser: Normaliser

    def _codes(self, data: Any) -> np.ndarray:
        raise NotImplementedError

    def _log_step(self, step: int, log_data: Any, **losses: Any) -> None:
        """Every ``log_every`` steps and at the last one, a history row: the losses (tensors), then codes
        used and perplexity per level and distinct IDs on ``log_data``, a fixed subset of the items."""
        if step % self.cfg.log_every == 0 or step == self.cfg.steps:
            codes = self._codes(log_data)
            self.history.append({"step": step, **{k: v.detach().tolist() for k, v in losses.items()},
                                 **code_stats(codes)})

    def _encode(self, X: np.ndarray) -> np.ndarray:
        import torch

        return self._codes(torch.from_numpy(self.normaliser(X)))
