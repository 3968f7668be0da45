"""RQ-VAE: an MLP autoencoder around vector-quantize-pytorch ``ResidualVQ`` (TIGER, Rajput et al. 2023).

The default config is "paper-like": the paper gives no RQ-VAE settings, so we use the same
levels and codebook size as the other quantizers, TIGER's MLP shape (d -> 512 -> 256 -> 128 ->
32) and the library's defaults for everything else (EMA codebooks with decay 0.8, commitment
weight 1, random codebook init, no dead-code replacement, Euclidean distance, and, in v1.32, the
rotation trick on). Every knob the diagnosis notebook (04) varies is an explicit field:
TIGER's k-means init, SoundStream's dead-code replacement (``threshold_ema_dead_code``),
cosine codebooks (ViT-VQGAN), Fifty et al.'s rotation trick, commitment weight, EMA vs learnable
codebooks, optimiser, input normalisation. ``autoencoder=False`` quantises the (normalised) input
directly: RQ-KMeans trained online by EMA / gradient, which separates "the VQ collapses" from
"the autoencoder collapses".

Training: ``steps`` minibatch steps of reconstruction MSE + the library's commitment loss. Every
``log_every`` steps ``self.history`` gets a row with per-level codes used and perplexity (on a
fixed subset of up to ``log_max_items`` training items, eval mode), the batch's reconstruction and
per-level commitment losses, and the number of distinct full IDs.
``reconstruction_mse`` is measured in the normalised input space.

The paper-like defaults collapse level 1 on l2-normalised inputs; k-means init with dead-code
replacement, or standardised inputs, keep the codes alive (measured: docs/DECISIONS.md, "RQ-VAE
diagnosis grid"; notebook 04).
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
class RQVAEConfig(QuantizerConfig):
    # model
    autoencoder: bool = True  # False: ResidualVQ directly on the input (no encoder/decoder)
    hidden_dims: tuple[int, ...] = (512, 256, 128)  # TIGER's encoder; the decoder mirrors it
    latent_dim: int = 32  # TIGER: 32
    normalize: str = "none"  # input normalisation: "none" | "l2" | "standardise"
    # ResidualVQ (library defaults in v1.32 unless said)
    commitment_weight: float = 1.0  # library default; TIGER used 0.25
    decay: float = 0.8  # EMA decay of the codebooks
    ema_update: bool = True  # EMA codebook updates; False with learnable_codebook=True trains codes by gradient
    learnable_codebook: bool = False
    kmeans_init: bool = False  # TIGER: k-means on the first batch
    kmeans_iters: int = 10
    threshold_ema_dead_code: float = 0.0  # SoundStream dead-code replacement; 0 = off (library default)
    use_cosine_sim: bool = False
    rotation_trick: bool = True  # library default in v1.32 (Fifty et al. 2024); older versions used straight-through
    # training
    steps: int = 3000  # minibatch steps (IdConfig.rq_vae_steps)
    batch_size: int = 256  # IdConfig.rq_vae_batch_size
    lr: float = 1e-3  # IdConfig.rq_vae_lr
    optimizer: str = "adam"  # "adam" | "adamw" | "adagrad" (TIGER) | "sgd"
    weight_decay: float = 0.0
    log_every: int = 100  # steps between history rows (the last step is always logged)
    log_max_items: int | None = 10_000  # items on which usage is logged; None = all


class RQVAE(GradientQuantizer):
    name = "rq_vae"
    Config = RQVAEConfig

    def _check_config(self) -> None:
        super()._check_config()
        cfg = self.cfg
        choice(self.name, "normalize", cfg.normalize, NORMALISATIONS)
        choice(self.name, "optimizer", cfg.optimizer, OPTIMIZERS)
        for key in ("steps", "batch_size", "log_every", "latent_dim", "kmeans_iters"):
            if getattr(cfg, key) < 1:
                raise StudyInputError(f"{self.name}: {key} is {getattr(cfg, key)}; use a positive integer.")
        if any(h < 1 for h in cfg.hidden_dims):
            raise StudyInputError(f"{self.name}: hidden_dims {cfg.hidden_dims} has a non-positive width; use e.g. (512, 256, 128).")
        if not cfg.ema_update and not cfg.learnable_codebook:
            raise StudyInputError(f"{self.name}: ema_update=False needs learnable_codebook=True, otherwise the "
                                  "codebooks never change; set one of them.")

    def _build(self, dim: int) -> Any:
        import torch
        from torch import nn
        from vector_quantize_pytorch import ResidualVQ

        cfg = self.cfg

        def mlp(dims: list[int]) -> nn.Module:
            layers: list[nn.Module] = []
            for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
                layers.append(nn.Linear(a, b))
                if i < len(dims) - 2:
                    layers.append(nn.ReLU())
            return nn.Sequential(*layers)

        latent = cfg.latent_dim if cfg.autoencoder else dim
        module = nn.Module()
        module.encoder = mlp([dim, *cfg.hidden_dims, latent]) if cfg.autoencoder else nn.Identity()
        module.decoder = mlp([latent, *reversed(cfg.hidden_dims), dim]) if cfg.autoencoder else nn.Identity()
        module.rvq = ResidualVQ(
            dim=latent, num_quantizers=cfg.levels, codebook_size=cfg.codebook_size,
            commitment_weight=cfg.commitment_weight, decay=cfg.decay, ema_update=cfg.ema_update,
            learnable_codebook=cfg.learnable_codebook, kmeans_init=cfg.kmeans_init,
            kmeans_iters=cfg.kmeans_iters, threshold_ema_dead_code=cfg.threshold_ema_dead_code,
            use_cosine_sim=cfg.use_cosine_sim, rotation_trick=cfg.rotation_trick,
        )
        return module.to(torch.float32)

    def _forward(self, x: Any) -> tuple[Any, Any, Any]:
        z = self.model.encoder(x)
        q, indices, commit = self.model.rvq(z)
        return self.model.decoder(q), indices, commit

    def _fit(self, X: np.ndarray) -> dict[str, Any]:
        import torch

        cfg = self.cfg
        # 1. seeds, input normalisation, model
        self.normaliser, data, generator = seeded_input(X, cfg.normalize, cfg.seed)
        self.model = self._build(X.shape[1])
        params = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = make_optimizer(cfg.optimizer, params, cfg.lr, cfg.weight_decay) if params else None
        log_data = data[log_subset(len(data), cfg.log_max_items, cfg.seed)]
        # 2. minibatch steps: reconstruction + commitment loss
        for step, rows in minibatches(len(data), cfg.batch_size, cfg.steps, generator):
            x = data[rows]
            self.model.train()
            with torch.set_grad_enabled(optimizer is not None):
                loss, parts = self._step_loss(x, rows)
                if optimizer is not None:
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
            # 3. log codebook usage on a fixed item subset
            self._log_step(step, log_data, loss=loss, **parts)
        # 4. reconstruction error of the trained model on the whole training set
        return {"reconstruction_mse": self._recon_mse(data)}

    def _step_loss(self, x: Any, rows: Any) -> tuple[Any, dict[str, Any]]:
        """One minibatch's loss and its named parts for the history; ``rows`` are the batch's item rows, for
        subclasses whose loss reads per-item targets."""
        loss, parts, _ = self._autoencoder_loss(x)
        return loss, parts

    def _autoencoder_loss(self, x: Any) -> tuple[Any, dict[str, Any], Any]:
        """Reconstruction MSE + commitment, its parts, and the quantized latent a subclass may score further."""
        import torch.nn.functional as F

        q, _, commit = self.model.rvq(self.model.encoder(x))
        recon_loss = F.mse_loss(self.model.decoder(q), x)
        return recon_loss + commit.sum(), {"recon_loss": recon_loss, "commit_loss": commit}, q

    def _codes(self, data: Any, chunk: int = 8192) -> np.ndarray:
        import torch

        self.model.eval()
        out = []
        with torch.no_grad():
            for start in range(0, len(data), chunk):
                out.append(self._forward(data[start:start + chunk])[1].numpy())
        return np.concatenate(out).astype(np.int64)

    def _recon_mse(self, data: Any, chunk: int = 8192) -> float:
        import torch

        self.model.eval()
        total = 0.0
        with torch.no_grad():
            for start in range(0, len(data), chunk):
                x = data[start:start + chunk]
                total += float(((self._forward(x)[0] - x) ** 2).sum())
        return total / data.numel()

    def latents_and_codebook(self, X: np.ndarray, *, initial: bool = False) -> tuple[Any, Any]:
        """The encoder's latents of X and the level-1 codebook (torch tensors, no gradient), for probing the
        scale mismatch behind the collapse: of the fitted model, or (``initial``) of a fresh model built as
        ``fit`` builds it, same seed and input normalisation, before any update. With ``kmeans_init`` the
        fresh codebook is all zeros: the library fills it in the first training step."""
        import torch

        if initial:
            _, data, _ = seeded_input(X, self.cfg.normalize, self.cfg.seed)
            model = self._build(X.shape[1])
        else:
            model, data = self.model, torch.from_numpy(self.normaliser(X))
        model.eval()
        with torch.no_grad():
            # vector-quantize-pytorch keeps the codebook on a private attribute: read it here, in one place
            return model.encoder(data), model.rvq.layers[0]._codebook.embed[0]
