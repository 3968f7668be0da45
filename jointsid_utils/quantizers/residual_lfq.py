"""ResidualLFQ: lookup-free quantisation per level (MAGVIT-v2, Yu et al. 2023) from vector-quantize-pytorch.

Each level quantises the sign pattern of a ``log2(codebook_size)``-dimensional vector, so the
codebook size must be a power of two. ``ResidualLFQ`` itself learns the linear projection from the
input dimension to that LFQ dimension (``project_in``) and back (``project_out``); we train both on
reconstruction MSE plus the library's auxiliary loss (entropy term weighted by
``entropy_loss_weight``, which pushes per-batch code usage towards uniform, plus an optional
commitment term). Level l's codebook is scaled by 2^-l (library behaviour), so later levels refine.
``reconstruction_mse`` is measured in the normalised input space.

Known failure: when the projected values stay far below the level-1 codebook scale (1), the residual
z - sign(z) always has the opposite sign of z, so level 2's code is the bitwise complement of level 1's
and the IDs have one effective level; ``normalize="standardise"`` breaks the tie (docs/RQVAE.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from jointsid_utils.errors import StudyInputError
from jointsid_utils.quantizers._torch_common import (NORMALISATIONS, OPTIMIZERS, GradientQuantizer, log_subset,
                                                     make_optimizer, minibatches, seeded_input)
from jointsid_utils.quantizers.base import QuantizerConfig, choice


@dataclass(frozen=True, kw_only=True)
class ResidualLFQConfig(QuantizerConfig):
    normalize: str = "none"  # "none" | "l2" | "standardise"; REFERENCE.md: normalisation drives LFQ usage
    entropy_loss_weight: float = 0.1  # library default
    commitment_loss_weight: float = 0.0  # library default
    diversity_gamma: float = 1.0  # library default: weight of the batch-entropy (diversity) term
    soft_clamp_input_value: float | None = None  # library default (off)
    steps: int = 3000
    batch_size: int = 256
    lr: float = 1e-3
    optimizer: str = "adam"  # "adam" | "adamw" | "adagrad" | "sgd"
    weight_decay: float = 0.0
    log_every: int = 100
    log_max_items: int | None = 10_000


class ResidualLFQQuantizer(GradientQuantizer):
    name = "residual_lfq"
    Config = ResidualLFQConfig

    def _check_config(self) -> None:
        super()._check_config()
        cfg = self.cfg
        if cfg.codebook_size & (cfg.codebook_size - 1):
            lower = 1 << (cfg.codebook_size.bit_length() - 1)
            raise StudyInputError(f"{self.name}: codebook_size {cfg.codebook_size} is not a power of two "
                                  f"(LFQ codes are sign patterns); use {lower} or {lower * 2}.")
        choice(self.name, "normalize", cfg.normalize, NORMALISATIONS)
        choice(self.name, "optimizer", cfg.optimizer, OPTIMIZERS)
        for key in ("steps", "batch_size", "log_every"):
            if getattr(cfg, key) < 1:
                raise StudyInputError(f"{self.name}: {key} is {getattr(cfg, key)}; use a positive integer.")

    def _fit(self, X: np.ndarray) -> dict[str, Any]:
        import torch.nn.functional as F
        from vector_quantize_pytorch import ResidualLFQ

        cfg = self.cfg
        # 1. seeds, normalisation, model (ResidualLFQ owns the projection to log2(codebook_size) dims)
        self.normaliser, data, generator = seeded_input(X, cfg.normalize, cfg.seed)
        self.model = ResidualLFQ(dim=X.shape[1], num_quantizers=cfg.levels, codebook_size=cfg.codebook_size,
                                 entropy_loss_weight=cfg.entropy_loss_weight,
                                 commitment_loss_weight=cfg.commitment_loss_weight,
                                 diversity_gamma=cfg.diversity_gamma,
                                 soft_clamp_input_value=cfg.soft_clamp_input_value)
        optimizer = make_optimizer(cfg.optimizer, list(self.model.parameters()), cfg.lr, cfg.weight_decay)
        log_data = data[log_subset(len(data), cfg.log_max_items, cfg.seed)]
        # 2. minibatch steps: reconstruction + entropy/commitment auxiliary loss
        for step, rows in minibatches(len(data), cfg.batch_size, cfg.steps, generator):
            x = data[rows]
            self.model.train()
            recon, _, aux = self.model(x[:, None, :])
            recon_loss = F.mse_loss(recon[:, 0], x)
            loss = recon_loss + aux.sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            # 3. log usage on a fixed subset
            self._log_step(step, log_data, loss=loss, recon_loss=recon_loss, aux_loss=aux)
        # 4. reconstruction error on the whole training set
        return {"reconstruction_mse": self._recon_mse(data)}

    def _run(self, data: Any, chunk: int = 8192) -> tuple[np.ndarray, float]:
        import torch

        self.model.eval()
        codes, sq = [], 0.0
        with torch.no_grad():
            for start in range(0, len(data), chunk):
                x = data[start:start + chunk]
                recon, indices, _ = self.model(x[:, None, :])
                codes.append(indices[:, 0].numpy())
                sq += float(((recon[:, 0] - x) ** 2).sum())
        return np.concatenate(codes).astype(np.int64), sq / data.numel()

    def _codes(self, data: Any) -> np.ndarray:
        return self._run(data)[0]

    def _recon_mse(self, data: Any) -> float:
        return self._run(data)[1]
