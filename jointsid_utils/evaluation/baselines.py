"""Baselines on the generator's own test cases: random, most-popular (rec), BM25 over item text (search),
and dense retrieval with an embedding's own vectors (both tasks).

Each returns a predictions frame in the shape of ``generator.predict`` (``case_id``, ``task``,
``target``, ``ranked``, ``protocol``), so ``metrics.recall_rows`` scores generative schemes and
baselines the same way; each list holds ``k`` items (``evaluation.k``). Rec baselines come under both
protocols: "all" and "exclude_history" (the user's train + validation items removed, docs/FEASIBILITY.md).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from jointsid_utils.embeddings.retrieval import history_mean, top_k
from jointsid_utils.errors import StudyInputError
from jointsid_utils.runtime.reproducibility import rng


def _with_protocols(cases: pd.DataFrame, task: str, rank_fn) -> pd.DataFrame:
    protocols = ["all", "exclude_history"] if task == "rec" else ["all"]
    frames = []
    for protocol in protocols:
        f = cases.drop(columns=[c for c in ("history", "prompt") if c in cases]).copy()
        f["task"], f["protocol"] = task, protocol
        f["ranked"] = [rank_fn(i, cases.iloc[i], protocol == "exclude_history") for i in range(len(cases))]
        frames.append(f)
    return pd.concat(frames, ignore_index=True)


def random_baseline(cases: pd.DataFrame, task: str, n_items: int, *, k: int, seed: int = 0) -> pd.DataFrame:
    """``k`` distinct random items per case (history items skipped under "exclude_history")."""
    def rank(i, row, exclude):
        gen = rng(seed, "random_baseline", task, str(row["case_id"]))
        perm = gen.permutation(n_items)
        if exclude:
            perm = perm[~np.isin(perm, np.asarray(row["history"], dtype=np.int64))]
        return perm[:k].tolist()

    return _with_protocols(cases, task, rank).assign(decoding="random")


def most_popular(cases: pd.DataFrame, interactions: pd.DataFrame, *, k: int) -> pd.DataFrame:
    """The ``k`` items with the most train interactions; under "exclude_history", the top ``k`` the user has not seen."""
    if "history" not in cases:
        raise StudyInputError("most_popular needs rec test cases with a 'history' column (generator.build_examples).")
    counts = interactions.loc[interactions["split"] == "train", "item_id"].value_counts(sort=False)
    order = counts.index.to_numpy()[np.lexsort((counts.index.to_numpy(), -counts.to_numpy()))]  # ties by item id

    def rank(i, row, exclude):
        if not exclude:
            return order[:k].tolist()
        return order[~np.isin(order, np.asarray(row["history"], dtype=np.int64))][:k].tolist()

    return _with_protocols(cases, "rec", rank).assign(decoding="most_popular")


def bm25(cases: pd.DataFrame, items: pd.DataFrame, *, k: int, text_column: str = "text",
         k1: float = 1.5, b: float = 0.75) -> pd.DataFrame:
    """BM25 (``bm25s``; ``k1`` and ``b`` default to its own values) of each test query against the items' text."""
    if "query" not in cases:
        raise StudyInputError("bm25 needs search test cases with a 'query' column (generator.build_examples).")
    docs = bm25_rank(items, cases["query"].astype(str).tolist(), k=k, text_column=text_column, k1=k1, b=b)
    ranked = {i: docs[i].tolist() for i in range(len(cases))}
    return _with_protocols(cases, "search", lambda i, row, ex: ranked[i]).assign(decoding="bm25")


def bm25_rank(items: pd.DataFrame, queries: list[str], *, k: int, text_column: str = "text",
              k1: float = 1.5, b: float = 0.75) -> np.ndarray:
    """Item ids (one row per query, best first) by BM25 over the items' text."""
    import bm25s

    corpus = items.sort_values("item_id")[text_column].fillna("").astype(str).tolist()
    retriever = bm25s.BM25(k1=k1, b=b)
    retriever.index(bm25s.tokenize(corpus, stopwords="en", show_progress=False), show_progress=False)
    q_tokens = bm25s.tokenize(queries, stopwords="en", show_progress=False)
    docs, _ = retriever.retrieve(q_tokens, k=min(k, len(corpus)), show_progress=False, n_threads=1)
    return np.asarray(docs)


def dense(cases: pd.DataFrame, task: str, item_vectors: np.ndarray, *, query_vectors: np.ndarray | None = None,
          history_k: int = 10, k: int) -> pd.DataFrame:
    """Exact inner-product retrieval: search ranks items by the encoded query (``query_vectors``, one row
    per case); rec by the mean of the last ``history_k`` history items' vectors, as notebook 02's dense
    check does, but here on the generator's own test cases."""
    if task == "search":
        if query_vectors is None or len(query_vectors) != len(cases):
            raise StudyInputError("dense search needs one query vector per test case (query_vectors).")
        top = top_k(query_vectors, item_vectors, k=k)
        return _with_protocols(cases, task, lambda i, row, ex: top[i].tolist()).assign(decoding="dense")
    if "history" not in cases:
        raise StudyInputError("dense rec needs rec test cases with a 'history' column (generator.build_examples).")
    history = [np.asarray(h, dtype=np.int64) for h in cases["history"]]
    users = history_mean(item_vectors, history, history_k)
    ranked = {False: top_k(users, item_vectors, k=k), True: top_k(users, item_vectors, k=k, exclude=history)}
    return _with_protocols(cases, task, lambda i, row, ex: ranked[ex][i].tolist()).assign(decoding="dense")
