"""BM25 with ``k1`` and ``b`` chosen on the validation queries: the tuned lexical retriever a practitioner
would deploy for search, beside the untuned ``baselines.bm25`` (bm25s defaults).

Only the validation queries (``data.split.validation_queries``, all of them) are read to choose; the chosen
pair then ranks the generator's test queries.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from jointsid_utils.data.split import validation_queries
from jointsid_utils.embeddings.retrieval import recall_at_k
from jointsid_utils.errors import StudyInputError
from jointsid_utils.evaluation.baselines import bm25, bm25_rank
from jointsid_utils.metrics import recall_column


def tune_bm25(items: pd.DataFrame, queries: pd.DataFrame, k1_grid: Sequence[float], b_grid: Sequence[float], *,
              seed: int, k: int) -> tuple[pd.DataFrame, tuple[float, float]]:
    """Validation Recall@``k`` (column ``recall_column(k)``) of every (k1, b) and the chosen pair (the best; ties
    go to the earlier row)."""
    if not k1_grid or not b_grid:
        raise StudyInputError("The BM25 grid is empty; set baselines.bm25_k1 and baselines.bm25_b to a few values each.")
    val = validation_queries(queries, None, seed)  # the shared validation split: every query of it
    texts, target = val["query"].astype(str).tolist(), val["item_id"].to_numpy()
    rows = [{"k1": float(k1), "b": float(b), "n_cases": len(val),
             recall_column(k): recall_at_k(bm25_rank(items, texts, k=k, k1=k1, b=b), target)}
            for k1 in k1_grid for b in b_grid]
    table = pd.DataFrame(rows)
    best = table.loc[table[recall_column(k)].idxmax()]
    chosen = (float(best["k1"]), float(best["b"]))
    return table.assign(chosen=[(r.k1, r.b) == chosen for r in table.itertuples()]), chosen


def bm25_tuned(cases: pd.DataFrame, items: pd.DataFrame, chosen: tuple[float, float], *, k: int) -> pd.DataFrame:
    """The test queries ranked by BM25 with the chosen (k1, b)."""
    return bm25(cases, items, k=k, k1=chosen[0], b=chosen[1]).assign(decoding="bm25_tuned")
