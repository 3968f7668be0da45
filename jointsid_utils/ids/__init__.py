"""Notebooks 03 and 04: semantic IDs built from embeddings with the pure ``quantizers``.

``build`` fits one scheme, adds the dedup level and caches it; ``schemes`` names the study's schemes and
builds or loads them all; ``plots`` draws codebook usage; ``rqvae_diagnosis`` is notebook 04's ablation.
"""
