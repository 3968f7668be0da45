"""Item vectors for semantic IDs (STUDY.md §2.2): one module per method, a registry and a dense check.

    from jointsid_utils.embeddings import prepare_embeddings, run_dense_check
    vectors = prepare_embeddings(cfg, items, interactions, queries)   # name -> float32 (n_items, d)
    table = run_dense_check(cfg, vectors, interactions, queries)      # results/dense_recall_at_<k>.csv
"""

from jointsid_utils.embeddings.registry import (EMBEDDING_METHODS, QUERY_ENCODERS, embedding_path, load_embedding,
                                                prepare_embeddings, query_encoder_path)

__all__ = ["EMBEDDING_METHODS", "QUERY_ENCODERS", "embedding_path", "load_embedding", "prepare_embeddings",
           "query_encoder_path", "run_dense_check", "dense_recall_at_30"]


def dense_recall_at_30(*args, **kwargs):
    from jointsid_utils.embeddings.dense_check import dense_recall_at_30 as run

    return run(*args, **kwargs)


def run_dense_check(cfg, vectors, interactions, queries, **kwargs):
    """The dense check with every method's query encoder and ENMF's user vectors filled in."""
    from jointsid_utils.embeddings.dense_check import dense_recall_at_30 as run
    from jointsid_utils.embeddings.enmf import user_vectors

    encoders = {m: query_encoder_path(cfg, m) for m in vectors if m in QUERY_ENCODERS}
    own = {"rec": user_vectors(cfg)} if "rec" in vectors else {}
    return run(cfg, vectors, interactions, queries, query_encoders=encoders, user_vectors=own, **kwargs)
