"""Recall@30 with per-seed intervals (STUDY.md §2.6), and Recall/NDCG at other cut-offs (reported beside it,
never tested), through ``ranx``; predictions and result rows on disk.

Intervals over seeds and cases, and paired tests between schemes, are ``evaluation.statistics``'s (notebook 06):
they need every seed's per-case hits, which the prediction files written here keep. A per-seed row's interval
(``case_interval``) is that same variance model with one seed.

A predictions frame has one row per test case: ``case_id``, ``task``, ``target`` (the one relevant
item), ``ranked`` (item ids, best first), and optionally ``protocol``, ``decoding``, ``seed`` plus
``query_id``/``query`` or ``user_id``. Every number in ``results/recall_at_<k>.csv`` (``results_file``) can be
recomputed from the saved predictions.

The cut-off k is ``evaluation.k`` (30, the paper's, on every profile): every function here that ranks or scores
takes it as a keyword, and every column and file that holds Recall@k carries it in its name (``recall_column``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from jointsid_utils.cache import atomic_path, run_dir, save_parquet
from jointsid_utils.cutoff import recall_column, recall_column_in  # noqa: F401  (re-exported)
from jointsid_utils.errors import StudyInputError
from jointsid_utils.variance import interval

EXTRA_COLUMNS = ["protocol", "decoding", "segment"]


def result_columns(k: int) -> list[str]:
    """The columns of ``results_file(k)``'s rows (``EXTRA_COLUMNS`` follow them)."""
    return ["embedding", "quantizer", "task", recall_column(k), "ci_low", "ci_high", "n_cases", "seed"]


def results_file(k: int) -> str:
    """``recall_at_<k>.csv``: the per-seed result rows of every scheme, in ``runs/<folder>/results/``."""
    return f"{recall_column(k)}.csv"


def _qrels_run(frame: pd.DataFrame, k: int):
    from ranx import Qrels, Run

    if frame["case_id"].duplicated().any():
        raise StudyInputError("The predictions have duplicate case_id values; score one seed, task and protocol "
                              "at a time.")
    qrels = Qrels({str(c): {str(int(t)): 1} for c, t in zip(frame["case_id"], frame["target"])})
    run = Run({str(c): {str(int(i)): float(len(r) - j) for j, i in enumerate(list(r)[:k])} or {"-1": 0.0}
               for c, r in zip(frame["case_id"], frame["ranked"])})
    return qrels, run


def per_case_recall(frame: pd.DataFrame, *, k: int) -> np.ndarray:
    """Recall@k of every case (0 or 1 with one relevant item), in the frame's row order, via ranx."""
    return per_case_scores(frame, [f"recall@{k}"])[f"recall@{k}"]


def per_case_scores(frame: pd.DataFrame, metrics: Sequence[str]) -> dict[str, np.ndarray]:
    """ranx metrics (``"recall@30"``, ``"ndcg@10"``, ...) of every case, in the frame's row order; the lists are
    cut at the largest cut-off asked for."""
    from ranx import evaluate

    metrics = list(metrics)
    cutoffs = [int(m.partition("@")[2] or 0) for m in metrics]
    if not metrics or min(cutoffs) < 1:
        raise StudyInputError(f"per_case_scores needs metrics with a cut-off such as 'recall@30', got {metrics}.")
    qrels, run = _qrels_run(frame, max(cutoffs))
    evaluate(qrels, run, metrics, make_comparable=True)  # per-case scores land in run.scores
    return {m: np.array([float(run.scores[m][str(c)]) for c in frame["case_id"]]) for m in metrics}


def metric_column(metric: str) -> str:
    """A ranx metric's column name, its cut-off in it: ``"ndcg@10"`` -> ``"ndcg_at_10"``."""
    return metric.replace("@", "_at_")


def cutoff_metrics(k: int, extra_k: Sequence[int]) -> list[str]:
    """The ranx metrics reported per scheme: Recall@k (the verdicts' metric), then Recall and NDCG at each
    extra cut-off."""
    if any(int(c) < 1 for c in (k, *extra_k)):
        raise StudyInputError(f"evaluation.k={k} and evaluation.extra_k={tuple(extra_k)} must be positive list "
                              "lengths, e.g. k=30 and extra_k=[10].")
    return [f"recall@{k}"] + [f"{name}@{c}" for c in extra_k for name in ("recall", "ndcg")]


def with_run_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of a predictions frame with the columns that tell its runs apart, filled where a caller's frame has
    none: one protocol ("all"), beam decoding and seed 0."""
    frame = frame.copy()
    for col, default in (("protocol", "all"), ("decoding", "beam"), ("seed", 0)):
        if col not in frame:
            frame[col] = default
    return frame


def cutoff_rows(frame: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """One row per (task, protocol, decoding, seed) of a predictions frame: the mean of each metric over its
    cases (columns ``metric_column``) and ``n_cases``."""
    frame = with_run_columns(frame)
    rows = []
    for (task, protocol, decoding, seed), g in frame.groupby(["task", "protocol", "decoding", "seed"], sort=True):
        scores = per_case_scores(g, metrics)
        rows.append({"task": task, "protocol": protocol, "decoding": decoding, "seed": int(seed),
                     **{metric_column(m): float(v.mean()) for m, v in scores.items()}, "n_cases": len(g)})
    return pd.DataFrame(rows)


def case_interval(values: np.ndarray, clusters: Sequence | None = None, *, level: float = 0.95) -> tuple[float, float]:
    """One run's interval of the mean of per-case values: ``evaluation.statistics.interval``'s t interval with
    one seed (the case term only; search cases clustered by ``clusters``, their target items), so one variance
    model serves the per-seed rows and the tables over seeds."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return float("nan"), float("nan")
    _, lo, hi = interval(values[None, :], clusters, level=level)
    return lo, hi


bootstrap_ci = case_interval  # the former name, kept for the generator's validation scores and the benches


def set_relevance_recall(ranked: Sequence, matching: Sequence, *, k: int) -> np.ndarray:
    """Per case, |top-k & matching items| / min(k, |matching items|): recall against the whole set of items that
    fit a broad query (``queries.matching.matching_item_sets``), 1 when the list is as full of them as it can be."""
    out = np.empty(len(ranked))
    for i, (r, m) in enumerate(zip(ranked, matching)):
        m = np.asarray(m, dtype="int64")
        if len(m) == 0:
            raise StudyInputError("A matching item set is empty; it always holds the query's own item.")
        out[i] = len(set(int(x) for x in list(r)[:k]) & set(m.tolist())) / min(k, len(m))
    return out


def head_items(interactions: pd.DataFrame, share: float = 0.01) -> np.ndarray:
    """The ``share`` most popular items by train interactions (the paper's "head": 1%)."""
    counts = interactions.loc[interactions["split"] == "train", "item_id"].value_counts()
    n_head = max(1, int(round(share * interactions["item_id"].nunique())))
    return np.sort(counts.index.to_numpy()[:n_head])


def query_segments(queries: pd.DataFrame | None) -> dict[int, list[str]]:
    """query_id -> the search segments its case belongs to besides "all": ``kind: <kind>``, and ``known item``
    when no other catalogue item may satisfy the query (``n_matching_max == 1``)."""
    if queries is None or "query_id" not in queries or "kind" not in queries:
        return {}
    known = queries["n_matching_max"].eq(1).fillna(False).to_numpy(bool) if "n_matching_max" in queries \
        else np.zeros(len(queries), bool)
    return {int(q): [f"kind: {k}"] + (["known item"] if kn else [])
            for q, k, kn in zip(queries["query_id"], queries["kind"], known)}


def recall_rows(frame: pd.DataFrame, *, embedding: str, quantizer: str, k: int, head: np.ndarray | None = None,
                segments_of_query: dict[int, list[str]] | None = None) -> pd.DataFrame:
    """Rows for ``results/recall_at_<k>.csv``: one per (task, protocol, decoding, seed[, segment]), Recall@k in
    column ``recall_column(k)``.

    With ``head`` (item ids), rec cases are also scored by segment: ``head`` (target in the head) and
    ``torso`` (the rest), as the paper's Table 2. With ``segments_of_query`` (``query_segments``), search
    cases are also scored per query kind and on the known-item subset.
    """
    frame = with_run_columns(frame)
    rows = []
    for (task, protocol, decoding, seed), g in frame.groupby(["task", "protocol", "decoding", "seed"], sort=True):
        values = per_case_recall(g, k=k)
        segments = {"all": np.ones(len(g), dtype=bool)}
        if head is not None and task == "rec":
            in_head = np.isin(g["target"].to_numpy(), head)
            segments.update(head=in_head, torso=~in_head)
        if segments_of_query and task == "search" and "query_id" in g:
            labels = [segments_of_query.get(int(q), []) if pd.notna(q) else [] for q in g["query_id"]]
            for name in sorted({n for ls in labels for n in ls}):
                segments[name] = np.array([name in ls for ls in labels])
        for segment, mask in segments.items():
            clusters = g["target"].to_numpy()[mask] if task == "search" else None  # queries share items
            lo, hi = case_interval(values[mask], clusters)
            rows.append({"embedding": embedding, "quantizer": quantizer, "task": task,
                         recall_column(k): float(values[mask].mean()) if mask.any() else float("nan"),
                         "ci_low": lo, "ci_high": hi, "n_cases": int(mask.sum()), "seed": int(seed),
                         "protocol": protocol, "decoding": decoding, "segment": segment})
    return pd.DataFrame(rows, columns=result_columns(k) + EXTRA_COLUMNS)


# ----------------------------------------------------------------------------- files

def predictions_path(profile: str, embedding: str, quantizer: str, task: str) -> Path:
    """``runs/<folder>/results/predictions/<embedding>__<quantizer>__<task>.parquet``."""
    return run_dir(profile, "results", "predictions") / f"{embedding}__{quantizer}__{task}.parquet"


def save_predictions(frame: pd.DataFrame, profile: str, embedding: str, quantizer: str) -> list[Path]:
    """One parquet per task (rows of every protocol, decoding and seed), replacing rows of the same seeds."""
    paths = []
    cols = [c for c in ("case_id", "task", "protocol", "decoding", "seed", "query_id", "query", "user_id",
                        "target", "ranked") if c in frame]
    for task, g in frame.groupby("task"):
        path = predictions_path(profile, embedding, quantizer, str(task))
        g = g[cols]
        if path.exists():
            old = pd.read_parquet(path)
            keys = ["seed", "protocol", "decoding"]
            new_keys = set(map(tuple, g[keys].astype(str).to_numpy()))
            old = old[[tuple(r) not in new_keys for r in old[keys].astype(str).to_numpy()]]
            g = pd.concat([old, g], ignore_index=True)
        save_parquet(path, g.reset_index(drop=True))
        paths.append(path)
    return paths


def append_results(rows: pd.DataFrame, profile: str, *, k: int) -> Path:
    """Merge rows into ``results/recall_at_<k>.csv``, replacing rows with the same key (reruns do not duplicate)."""
    path = run_dir(profile, "results") / results_file(k)
    key = ["embedding", "quantizer", "task", "seed", "protocol", "decoding", "segment"]
    columns = result_columns(k) + EXTRA_COLUMNS
    rows = rows.reindex(columns=columns)
    if path.exists():
        old = pd.read_csv(path).reindex(columns=columns)
        merged = pd.concat([old, rows], ignore_index=True)
        merged = merged.drop_duplicates(subset=key, keep="last")
    else:
        merged = rows
    with atomic_path(path) as tmp:
        merged.to_csv(tmp, index=False)
    return path


def score_and_save(preds: pd.DataFrame, profile: str, embedding: str, quantizer: str,
                   interactions: pd.DataFrame, queries: pd.DataFrame | None = None, *, k: int) -> pd.DataFrame:
    """Save a scheme's (or baseline's) predictions, add its Recall@k rows to ``recall_at_<k>.csv`` (search per
    query kind and known-item too when ``queries`` is given), return the rows."""
    save_predictions(preds, profile, embedding, quantizer)
    rows = recall_rows(preds, embedding=embedding, quantizer=quantizer, k=k, head=head_items(interactions),
                       segments_of_query=query_segments(queries))
    append_results(rows, profile, k=k)
    return rows
