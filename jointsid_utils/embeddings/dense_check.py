"""The dense-retrieval check (STUDY.md §2.2): exact nearest-neighbour Recall@k (``evaluation.k``, 30) on the
**test** split, with no IDs and no generator: a reference for what semantic IDs keep, not a bound (rec-tuned IDs
can beat it).

- search: each test query, encoded by the method's own text encoder, against the item vectors
  (``content``, ``search``, ``multitask``; rec and fused vectors have no query side).
- rec: each user's test item, from a user vector against the item vectors, for every method:
  ``history_mean`` = the mean of the last ``history_k`` items before the test item (train + validation),
  and for ``rec`` also ``enmf_user`` = ENMF's own user vector ``p_u``.

Rec is reported under two protocols (docs/FEASIBILITY.md: they differ by 2x): ``all`` ranks the whole
catalogue, as the paper's generator does (the primary, paper-style number); ``exclude_history``
removes the user's train + validation items from the ranking first. Search rows use ``all``.

Search ranks the test queries the generator is scored on (``generator.search_eval_cases``, the same
seeded subsample: ``queries.test_cases``), so the reference and the generated IDs share their cases. Encoding
them with every text encoder is still most of a rerun of notebook 02, so the table is cached in
``runs/<folder>/embeddings/dense_check.parquet``, keyed like the embeddings themselves: content hashes of
the vectors, the interactions and the queries, each query encoder's identity (a fine-tune's own cache key)
and the config fields the check reads (``evaluation.k`` among them).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from jointsid_utils.cache import atomic_path, cached, file_sha256, run_dir
from jointsid_utils.config import StudyConfig
from jointsid_utils.cutoff import recall_column, recall_column_in
from jointsid_utils.embeddings.encoders import encode, load_encoder
from jointsid_utils.embeddings.inputs import array_fingerprint, frame_fingerprint, histories, targets
from jointsid_utils.embeddings.retrieval import history_mean, recall_at_k, top_k
from jointsid_utils.queries.test_cases import search_test_queries

GENERATOR_CASES = "generator"  # max_queries default: the generator's search_eval_cases subsample

PRIMARY_PROTOCOL = "all"
CONFIG_KEYS = ("history_k",)  # the embeddings fields the check reads: its cache key names these
TRAINED_INFO = "jointsid_model.json"  # finetune.INFO, read here without importing the trainer


def columns(k: int) -> list[str]:
    """The check's table columns, Recall@k in ``recall_column(k)``."""
    return ["embedding", "task", recall_column(k), "n_cases", "protocol", "user_vector"]


def contract_file(k: int, detail: bool = False) -> str:
    """``dense_recall_at_<k>.csv`` (STUDY.md §4), or every row in ``dense_recall_at_<k>_detail.csv``."""
    return f"dense_{recall_column(k)}{'_detail' if detail else ''}.csv"


def dense_recall_at_30(cfg: StudyConfig, vectors: Mapping[str, np.ndarray], interactions: pd.DataFrame,
                       queries: pd.DataFrame, *, query_encoders: Mapping[str, str] | None = None,
                       user_vectors: Mapping[str, np.ndarray] | None = None,
                       max_queries: int | None | str = GENERATOR_CASES, write: bool = True) -> pd.DataFrame:
    """One row per (embedding, task, protocol, user vector); written by ``write_table``.

    ``query_encoders``: method -> encoder (directory or asset name) for the search rows;
    ``user_vectors``: method -> (n_users, d) own user vectors (ENMF's ``p_u``) for extra rec rows.
    ``max_queries``: test queries ranked; by default the generator's ``search_eval_cases`` (the same ones),
    None = all. Loaded from ``dense_check_path`` when nothing it reads changed (``cache_key``); computed otherwise.
    """
    if max_queries == GENERATOR_CASES:
        max_queries = cfg.generator.search_eval_cases
    query_encoders = {m: p for m, p in (query_encoders or {}).items() if m in vectors}
    user_vectors = {m: u for m, u in (user_vectors or {}).items() if m in vectors}
    key = cache_key(cfg, vectors, interactions, queries, query_encoders, user_vectors, max_queries)

    def build(tmp: Path) -> None:
        started = time.time()
        compute_table(cfg, vectors, interactions, queries, query_encoders=query_encoders,
                      user_vectors=user_vectors, max_queries=max_queries).to_parquet(tmp, index=False)
        print(f"dense check: computed in {time.time() - started:.1f} s", flush=True)

    path = cached(dense_check_path(cfg), key, build, seed=cfg.seed)
    table = pd.read_parquet(path)
    if write:
        write_table(cfg, table)
    return table


def dense_check_path(cfg: StudyConfig) -> Path:
    return run_dir(cfg.folder, "embeddings") / "dense_check.parquet"


def cache_key(cfg: StudyConfig, vectors: Mapping[str, np.ndarray], interactions: pd.DataFrame,
              queries: pd.DataFrame, query_encoders: Mapping[str, str], user_vectors: Mapping[str, np.ndarray],
              max_queries: int | None) -> dict[str, Any]:
    """Everything the table depends on, hashed the way the embeddings stage hashes its own inputs."""
    return {"embeddings": {k: getattr(cfg.embeddings, k) for k in CONFIG_KEYS},
            "max_queries": max_queries, "k": cfg.evaluation.k,
            "data": {"interactions": frame_fingerprint("interactions", interactions),
                     "queries": frame_fingerprint("queries", queries)},
            "vectors": [[m, array_fingerprint(v)] for m, v in vectors.items()],  # in order: the table's rows
            "query_encoders": {m: encoder_fingerprint(p) for m, p in query_encoders.items()},
            "user_vectors": {m: array_fingerprint(np.asarray(u)) for m, u in user_vectors.items()}}


def encoder_fingerprint(name_or_path: str | Path) -> str:
    """What identifies a query encoder: a fine-tune's stage key (it names the config, data and code it was
    trained with), the weights' sha256 for any other local directory, and the name of an offline asset (whose files
    the assets module checks by sha256)."""
    path = Path(str(name_or_path))
    if (path / TRAINED_INFO).exists():
        return "trained:" + json.loads((path / TRAINED_INFO).read_text())["key_hash"]
    if path.is_dir():
        weights = sorted(p for p in path.iterdir() if p.suffix in (".safetensors", ".bin"))
        return "directory:" + ",".join(f"{p.name}={file_sha256(p)}" for p in weights)
    return "asset:" + str(name_or_path)


def compute_table(cfg: StudyConfig, vectors: Mapping[str, np.ndarray], interactions: pd.DataFrame,
                  queries: pd.DataFrame, *, query_encoders: Mapping[str, str], user_vectors: Mapping[str, np.ndarray],
                  max_queries: int | None) -> pd.DataFrame:
    """The check itself: encodes the test queries and ranks the catalogue for every case."""
    rows, k = [], cfg.evaluation.k
    test_q = search_test_queries(queries, max_queries, cfg.seed).reset_index(drop=True)
    for method, path in query_encoders.items():
        q = encode(load_encoder(path), test_q["query"].astype(str).tolist(),
                   batch_size=cfg.embeddings.encode_batch_size)
        rows.append(_row(method, "search", top_k(q, vectors[method], k=k), test_q["item_id"].to_numpy(), "all",
                         "query", k=k))

    test = targets(interactions, "test")
    users = test.index.to_numpy()
    hist = histories(interactions, ("train", "validation"))  # everything before the test item
    user_hist = [hist.get(int(u), np.empty(0, np.int64)) for u in users]
    history_k = cfg.embeddings.history_k
    for method, items in vectors.items():
        cases = [(f"history_mean_{history_k}", history_mean(items, user_hist, history_k))]
        if method in user_vectors:
            cases.append(("enmf_user" if method == "rec" else "own_user", np.asarray(user_vectors[method])[users]))
        for user_vector, u in cases:
            for protocol, exclude in (("all", None), ("exclude_history", user_hist)):
                rows.append(_row(method, "rec", top_k(u, items, k=k, exclude=exclude), test.to_numpy(), protocol,
                                 user_vector, k=k))
    return pd.DataFrame(rows, columns=columns(k))


def _row(method: str, task: str, ranked: np.ndarray, target: np.ndarray, protocol: str, user_vector: str, *,
         k: int) -> dict:
    return {"embedding": method, "task": task, recall_column(k): recall_at_k(ranked, target), "n_cases": len(target),
            "protocol": protocol, "user_vector": user_vector}


def write_table(cfg: StudyConfig, table: pd.DataFrame) -> Path:
    """Every row to ``dense_recall_at_<k>_detail.csv``; the contract file ``dense_recall_at_<k>.csv`` (STUDY.md
    §4; ``contract_file``) gets one row per (embedding, task): the primary protocol, with the query (search) or
    the mean of the history (rec) as the user side, so every method is read the same way."""
    results = run_dir(cfg.folder, "results")
    with atomic_path(results / contract_file(cfg.evaluation.k, detail=True)) as tmp:
        table.to_csv(tmp, index=False)
    primary = table[(table.protocol == PRIMARY_PROTOCOL)
                    & ((table.user_vector == "query") | table.user_vector.str.startswith("history_mean"))]
    path = results / contract_file(cfg.evaluation.k)
    with atomic_path(path) as tmp:
        primary.to_csv(tmp, index=False)
    return path


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Wide view: one row per embedding; search, rec (history mean) under both protocols, rec (ENMF user)."""
    def pick(task, protocol, user_prefix):
        part = table[(table.task == task) & (table.protocol == protocol) & table.user_vector.str.startswith(user_prefix)]
        return part.set_index("embedding")[recall_column_in(table)]

    wide = pd.DataFrame({
        "search": pick("search", "all", "query"),
        "rec (history mean, all)": pick("rec", "all", "history_mean"),
        "rec (history mean, excl. history)": pick("rec", "exclude_history", "history_mean"),
        "rec (ENMF user, all)": pick("rec", "all", "enmf_user"),
        "rec (ENMF user, excl. history)": pick("rec", "exclude_history", "enmf_user"),
    })
    order = [m for m in table["embedding"].drop_duplicates()]
    return wide.reindex(order)


def recall_of(table: pd.DataFrame, method: str, task: str, protocol: str = PRIMARY_PROTOCOL,
              user_vector: str = "history_mean") -> float:
    """One Recall@k of the table: search rows always use the query; rec rows the user vector whose name
    starts with ``user_vector`` (``history_mean`` or ``enmf_user``). NaN where the table has no such row."""
    user_vector = "query" if task == "search" else user_vector
    rows = table[(table.embedding == method) & (table.task == task) & (table.protocol == protocol)
                 & table.user_vector.str.startswith(user_vector)]
    return float(rows[recall_column_in(table)].iloc[0]) if len(rows) else float("nan")
