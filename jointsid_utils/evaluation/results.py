"""Notebook 06's inputs: the baselines scored on the generator's own test cases, and the result tables.

    base = run_baselines(cfg)          # random, most-popular, BM25, dense bounds -> results/baselines.csv
    results, base = load_results(cfg)  # recall_at_30.csv and baselines.csv
    decoding_table(results, ("multitask", "rq_kmeans"), seed=0)  # beam vs the paper's diverse beam search
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from jointsid_utils.cache import run_dir
from jointsid_utils.config import StudyConfig
from jointsid_utils.evaluation.baselines import bm25, most_popular, random_baseline
from jointsid_utils.generator.examples import generator_test_cases
from jointsid_utils.generator.orchestration import load_inputs
from jointsid_utils.metrics import EXTRA_COLUMNS, RESULT_COLUMNS, head_items, recall_rows, save_predictions

if TYPE_CHECKING:
    from jointsid_utils.ids.schemes import Scheme


def run_baselines(cfg: StudyConfig, items: pd.DataFrame | None = None, interactions: pd.DataFrame | None = None,
                  queries: pd.DataFrame | None = None) -> pd.DataFrame:
    """Random, most-popular (rec) and BM25 (search) on the generator's test cases, plus the dense upper
    bounds of notebook 02; written to ``results/baselines.csv`` (predictions to ``results/predictions/``
    as ``baseline__<name>__<task>.parquet``). Column ``method``; dense rows have no interval and their
    own test cases (``n_cases``)."""
    if items is None or interactions is None or queries is None:
        items, interactions, queries = load_inputs(cfg)
    search, rec = generator_test_cases(cfg, items, interactions, queries)
    head = head_items(interactions)
    frames = {"random": pd.concat([random_baseline(search, "search", len(items), seed=cfg.seed),
                                   random_baseline(rec, "rec", len(items), seed=cfg.seed)], ignore_index=True),
              "most_popular": most_popular(rec, interactions), "bm25": bm25(search, items)}
    parts = []
    for name, frame in frames.items():
        frame = frame.assign(seed=cfg.seed)
        save_predictions(frame, cfg.name, "baseline", name)
        parts.append(recall_rows(frame, embedding="baseline", quantizer=name, head=head).assign(method=name))
    table = pd.concat(parts, ignore_index=True)
    dense_path = run_dir(cfg.name, "results") / "dense_recall_at_30_detail.csv"  # both protocols
    if dense_path.exists():
        dense = pd.read_csv(dense_path)
        if "user_vector" in dense:  # rec: keep the mean-of-history check (the ENMF user vector is rec's own)
            dense = dense[(dense.task == "search") | (dense.user_vector != "enmf_user")]
        table = pd.concat([table, pd.DataFrame({
            "embedding": dense.embedding, "quantizer": "dense", "task": dense.task,
            "recall_at_30": dense.recall_at_30, "n_cases": dense.n_cases, "seed": cfg.seed,
            "protocol": dense.get("protocol", "all"), "decoding": "dense", "segment": "all",
            "method": "dense_" + dense.embedding})], ignore_index=True)
    table = table.reindex(columns=["method", *RESULT_COLUMNS, *EXTRA_COLUMNS])
    table.to_csv(run_dir(cfg.name, "results") / "baselines.csv", index=False)
    return table


def load_results(cfg: StudyConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(``recall_at_30.csv``, ``baselines.csv``) of the profile; empty frames where missing."""
    res = run_dir(cfg.name, "results")
    read = lambda name: pd.read_csv(res / name) if (res / name).exists() else pd.DataFrame()  # noqa: E731
    return read("recall_at_30.csv"), read("baselines.csv")


def decoding_table(results: pd.DataFrame, scheme: Scheme, seed: int) -> pd.DataFrame:
    """Recall@30 of one scheme and seed per (task, protocol), one column per decoding (all cases)."""
    rows = results[(results.embedding == scheme[0]) & (results.quantizer == scheme[1]) & (results.segment == "all")
                   & (results.seed == seed)]
    return rows.pivot_table(index=["task", "protocol"], columns="decoding", values="recall_at_30")
