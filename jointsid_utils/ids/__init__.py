"""Notebooks 03 and 04: semantic IDs built from embeddings with the pure ``quantizers``.

``build`` fits one scheme, adds the dedup level and caches it; ``schemes`` names the study's schemes and
builds or loads them all; ``plots`` draws codebook usage. Notebook 04's RQ-VAE ablation:
``rqvae_diagnosis`` runs the cached grid, ``rqvae_tables`` and ``rqvae_plots`` report it. Notebook 07's
joint constructions live in ``jointsid_utils.joint``.
"""

TWO_ID_SCHEMES = ("separate", "prefix_share",  # schemes whose items carry a search ID and a rec ID
                  "shared_then_task")  # notebook 07 (jointsid_utils.joint): tokenised as prefix_share, column 0 shared
