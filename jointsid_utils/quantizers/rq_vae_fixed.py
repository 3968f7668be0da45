"""``rq_vae_fixed``: the RQ-VAE of ``rq_vae`` with the settings notebook 04 found to stop the collapse.

Same MLP autoencoder and ResidualVQ; only the codebook initialisation and maintenance change:

- ``kmeans_init`` (TIGER, Rajput et al. 2023): codebooks start at k-means centroids of the first
  batch of *latents*, so they live at the latents' scale. The library's random init draws codes
  with norm about 0.18 (codebook 64, latent 32) while the untrained encoder's latents sit in a ball
  of radius about 0.05, so one code is nearest to every item and the EMA never moves the others.
- ``threshold_ema_dead_code=2`` (SoundStream, Zeghidour et al. 2021): a code whose EMA cluster size
  falls below 2 is replaced by a latent from the current batch, so codes that die later revive.

Measured on ML-100K (notebook 04, ``runs/default/rqvae_diagnosis``): see the README section
"Why RQ-VAE collapsed". Everything else (commitment weight 1, EMA decay 0.8, rotation trick,
Euclidean codebooks, no input normalisation) stays the library default, because the ablation showed
those knobs do not explain the collapse.
"""

from __future__ import annotations

from dataclasses import dataclass

from jointsid_utils.quantizers.rq_vae import RQVAE, RQVAEConfig


@dataclass(frozen=True, kw_only=True)
class RQVAEFixedConfig(RQVAEConfig):
    kmeans_init: bool = True  # TIGER: codebooks from k-means on the first batch of latents
    threshold_ema_dead_code: float = 2.0  # SoundStream: replace codes whose EMA cluster size < 2


class RQVAEFixed(RQVAE):
    name = "rq_vae_fixed"
    Config = RQVAEFixedConfig
