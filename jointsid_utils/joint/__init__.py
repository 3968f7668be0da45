"""Notebook 07: joint semantic-ID constructions beyond the paper (several embeddings in, one or two ID sets out).

``constructions`` builds and caches them (one class each, registered in ``JOINT_CONSTRUCTIONS``), with the
pure array code of two of them in ``balanced`` (unique codes without a dedup token) and ``shared_task``
(a shared first code, then per-task residual codes); ``report`` compares them with ``multitask x rq_kmeans``.
"""
