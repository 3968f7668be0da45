"""Notebooks 03 and 04: semantic IDs built from embeddings with the pure ``quantizers``.

``build`` fits one scheme, adds the dedup level and caches it; ``schemes`` builds or loads the study's
schemes (``jointsid_utils.study`` names them); ``plots`` draws codebook usage. Notebook 04's RQ-VAE ablation:
``rqvae_diagnosis`` runs the cached grid, ``rqvae_tables`` and ``rqvae_plots`` report it. Notebook 07's
joint constructions live in ``jointsid_utils.joint``.
"""
