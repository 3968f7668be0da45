"""Dictionary learning: sklearn ``MiniBatchDictionaryLearning`` with ``codebook_size`` atoms.

Codes from sparse coefficients: each item is sparse-coded by OMP with ``levels`` non-zero atoms
(``transform_n_nonzero_coefs = levels``), and its code at position l is the atom with the l-th
largest |coefficient|, so position 1 is the atom that explains most of the item. All positions
share one dictionary, so the same atom cannot appear twice in an ID: the positions are a ranking
of distinct atoms (an argsort), never an independent choice per position. When OMP uses fewer
than ``levels`` atoms (an item already reconstructed exactly), the remaining positions are filled
with the not-yet-used atoms most correlated (|<x, atom>|) with the item, so every item still gets
``levels`` distinct codes, deterministically. Signs are dropped: x and -x share an ID.
``reconstruction_mse`` is the error of the OMP code with ``levels`` atoms.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from jointsid_utils.errors import StudyInputError
from jointsid_utils.quantizers.base import Quantizer, QuantizerConfig


@dataclass(frozen=True, kw_only=True)
class DictLearningConfig(QuantizerConfig):
    alpha: float = 1.0  # sparsity penalty while learning the dictionary (sklearn default)
    max_iter: int = 20  # passes over the data (sklearn default 1000 with early stopping; 20 bounds 62k items)
    batch_size: int = 256  # sklearn default
    fit_algorithm: str = "cd"  # "cd" or "lars" (sklearn default lars; cd is faster on dense 768-d inputs)
    tol: float = 1e-3  # sklearn default early-stopping tolerance
    max_no_improvement: int = 10  # sklearn default


class DictLearning(Quantizer):
    name = "dict_learning"
    Config = DictLearningConfig

    def _check_config(self) -> None:
        super()._check_config()
        cfg = self.cfg
        if cfg.levels > cfg.codebook_size:
            raise StudyInputError(f"{self.name}: levels {cfg.levels} exceeds the {cfg.codebook_size} atoms, and an atom "
                                  "cannot repeat within an ID; use levels <= codebook_size.")
        if cfg.fit_algorithm not in ("cd", "lars"):
            raise StudyInputError(f"{self.name}: fit_algorithm={cfg.fit_algorithm!r} is not supported; choose cd or lars.")

    def _fit(self, X: np.ndarray) -> dict[str, Any]:
        from sklearn.decomposition import MiniBatchDictionaryLearning
        from sklearn.exceptions import ConvergenceWarning

        cfg = self.cfg
        self.model = MiniBatchDictionaryLearning(
            n_components=cfg.codebook_size, alpha=cfg.alpha, max_iter=cfg.max_iter, batch_size=cfg.batch_size,
            fit_algorithm=cfg.fit_algorithm, transform_algorithm="omp", transform_n_nonzero_coefs=cfg.levels,
            random_state=cfg.seed, tol=cfg.tol, max_no_improvement=cfg.max_no_improvement)
        with warnings.catch_warnings():  # per-batch coordinate descent warns on tiny duality gaps; harmless here
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.model.fit(X)
        coef = self.model.transform(X)
        recon = coef @ self.model.components_
        return {"reconstruction_mse": float(np.mean((X - recon) ** 2)), "n_iter": int(self.model.n_iter_)}

    def _encode(self, X: np.ndarray) -> np.ndarray:
        coef = self.model.transform(X)
        corr = np.abs(X @ self.model.components_.T)
        # rank atoms by |coef|, ties (incl. the zeros beyond OMP's support) by |correlation|, then index
        order = np.lexsort((np.arange(coef.shape[1])[None, :].repeat(len(X), 0), -corr, -np.abs(coef)), axis=1)
        return order[:, :self.cfg.levels]
