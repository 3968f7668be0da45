"""An RQ-VAE whose quantized latent is also pulled towards each item's collaborative vector.

The idea is LETTER's collaborative regulariser (Wang et al., CIKM 2024, arXiv 2405.07314): a tokenizer
trained on item text alone puts items that users consume together under unrelated prefixes, which the
rec prompt (a history of IDs) cannot exploit. LETTER adds an in-batch contrastive loss between the
quantized embedding of an item and its CF embedding, so that the codes carry both signals while the
reconstruction term keeps them a faithful summary of the content.

Here the content side is the multi-task vector (the paper's best joint embedding) and the CF side is ENMF
(notebook 02's rec-tuned vectors). The quantizer is ``rq_vae_fixed`` (k-means init and dead-code
replacement, which notebook 04 found to stop the collapse); the alignment head is a linear map from the
quantized latent to the ENMF space, scored by cosine with temperature ``align_temperature``:

    loss = MSE(decoder(q), x) + commitment + align_weight * InfoNCE(unit(head(q)), unit(enmf))

The gradient of the alignment reaches the encoder through the straight-through / rotation estimator,
so the latents, and the codes the EMA codebooks follow, move towards a CF-consistent layout.
LETTER's third term (a diversity regulariser on code assignment) is left out: dead-code replacement
already keeps every code in use on this catalogue. With ``align_weight=0`` the fit is ``rq_vae_fixed``
on the same input, code for code: the head is drawn from its own seeded generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from jointsid_utils.errors import StudyInputError
from jointsid_utils.joint.shared_task import unit_rows
from jointsid_utils.quantizers.base import check_matrix
from jointsid_utils.quantizers.rq_vae_fixed import RQVAEFixed, RQVAEFixedConfig


@dataclass(frozen=True, kw_only=True)
class AlignedRQVAEConfig(RQVAEFixedConfig):
    align_weight: float = 1e-5  # weight of the InfoNCE term beside reconstruction (LETTER's alpha); 0 = rq_vae_fixed
    align_temperature: float = 0.1  # softmax temperature of the in-batch contrastive term


class AlignedRQVAE(RQVAEFixed):
    """``fit_aligned(X, target)``: an RQ-VAE on X whose quantized latent also predicts ``target`` (row i is
    item i's collaborative vector). ``encode`` needs X only, as every quantizer's."""

    name = "aligned_rq_vae"
    Config = AlignedRQVAEConfig

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        self._target: Any = None

    def _check_config(self) -> None:
        super()._check_config()
        if not np.isfinite(self.cfg.align_weight) or self.cfg.align_weight < 0:
            raise StudyInputError(f"{self.name}: align_weight is {self.cfg.align_weight!r}; use a finite weight >= 0.")
        if not self.cfg.align_temperature > 0:
            raise StudyInputError(f"{self.name}: align_temperature is {self.cfg.align_temperature!r}; use a "
                                  "temperature > 0 (LETTER-style contrastive terms use about 0.1).")

    def fit_aligned(self, X: Any, target: Any) -> "AlignedRQVAE":
        import torch

        X, target = check_matrix(X, "X"), check_matrix(target, "the alignment target")
        if len(target) != len(X):
            raise StudyInputError(f"{self.name}: the alignment target has {len(target)} rows but X has {len(X)}; "
                                  "pass one collaborative vector per item, in X's row order.")
        self._target = torch.from_numpy(unit_rows(target))
        self.fit(X)
        self._diagnostics.update(self._alignment(torch.from_numpy(self.normaliser(X))))
        return self

    def _fit(self, X: np.ndarray) -> dict[str, Any]:
        if self._target is None:
            raise StudyInputError(f"{self.name}: call fit_aligned(X, target) with the collaborative vectors, not fit(X).")
        return super()._fit(X)

    def _build(self, dim: int) -> Any:
        import torch
        from torch import nn

        module = super()._build(dim)
        if self._target is not None:
            # its own generator, so the encoder, decoder and codebooks draw what rq_vae_fixed's draw
            with torch.random.fork_rng():
                torch.manual_seed(self.cfg.seed + 1)
                module.align_head = nn.Linear(self.cfg.latent_dim, self._target.shape[1])
        return module

    def _step_loss(self, x: Any, rows: Any) -> tuple[Any, dict[str, Any]]:
        import torch
        import torch.nn.functional as F

        loss, parts, q = self._autoencoder_loss(x)
        if self.cfg.align_weight > 0:
            logits = F.normalize(self.model.align_head(q), dim=-1) @ self._target[rows].T / self.cfg.align_temperature
            align = F.cross_entropy(logits, torch.arange(len(rows)))
            loss = loss + self.cfg.align_weight * align
            parts["align_loss"] = align
        return loss, parts

    def _alignment(self, data: Any, chunk: int = 2048) -> dict[str, Any]:
        """How well the fitted quantized latents predict each item's collaborative vector: the mean cosine of
        head(q) with the item's own target, and the share of items whose own target is the nearest of all."""
        import torch
        import torch.nn.functional as F

        self.model.eval()
        cosines, top1 = [], 0
        with torch.no_grad():
            for start in range(0, len(data), chunk):
                q = self.model.rvq(self.model.encoder(data[start:start + chunk]))[0]
                pred = F.normalize(self.model.align_head(q), dim=-1)
                own = self._target[start:start + len(pred)]
                cosines.append((pred * own).sum(-1))
                top1 += int(((pred @ self._target.T).argmax(-1) == torch.arange(start, start + len(pred))).sum())
        return {"align_cosine": float(torch.cat(cosines).mean()), "align_top1": top1 / len(data)}
