"""Notebook 06's inputs: the baselines scored on the generator's own test cases, and the result tables.

    base = run_baselines(cfg)          # random, most-popular, BM25, dense, tuned SASRec and BM25 -> results/baselines.csv
    results, base = load_results(cfg)  # recall_at_<k>.csv (k = evaluation.k, 30) and baselines.csv
    hits = load_hits(cfg.folder, schemes + baseline_schemes(base), k=cfg.evaluation.k)  # per (case, seed) hits
    decoding_table(results, ("multitask", "rq_kmeans"), seed=0, hits=hits)  # beam vs the paper's diverse beam
    write_table(frame, cfg, "statistics_pairs.csv")  # a results table next to recall_at_<k>.csv
    inference = write_inference(cfg, hits, queries)  # variance.csv, pairs_<F>.csv, verdicts.csv, hits.parquet
    write_cutoffs(cfg, schemes)        # metrics_by_cutoff.csv: Recall@k beside Recall@10 and NDCG@10
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd

from jointsid_utils.cache import atomic_path, cached, run_dir, save_parquet
from jointsid_utils.config import EvaluationConfig, StudyConfig, as_dict, stable_hash
from jointsid_utils.embeddings.dense_check import encoder_fingerprint
from jointsid_utils.embeddings.encoders import encode, load_encoder
from jointsid_utils.embeddings.registry import QUERY_ENCODERS, all_methods, embedding_path, load_embedding
from jointsid_utils.embeddings.registry import query_encoder_path
from jointsid_utils.evaluation.baselines import bm25, dense, most_popular, random_baseline
from jointsid_utils.evaluation.statistics import HIT_COLUMNS, hit_rows
from jointsid_utils.evaluation.tuned import tuned_baselines
from jointsid_utils.generator.examples import generator_test_cases
from jointsid_utils.generator.orchestration import load_inputs
from jointsid_utils.errors import StudyInputError
from jointsid_utils.metrics import (EXTRA_COLUMNS, cutoff_metrics, cutoff_rows, head_items, metric_column,
                                    predictions_path, query_segments, recall_column_in, recall_rows, result_columns,
                                    results_file, save_predictions)

if TYPE_CHECKING:
    from jointsid_utils.ids.schemes import Scheme


def dense_baselines(cfg: StudyConfig, search: pd.DataFrame, rec: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """``dense_<method>`` predictions on the generator's test cases for every item matrix notebook 02 built:
    search where the method has a query encoder (its own, fine-tuned one), rec from the history mean."""
    out = {}
    for method in all_methods(cfg):
        if not embedding_path(cfg, method).exists():
            continue
        items = load_embedding(cfg, method)
        parts = [dense(rec, "rec", items, history_k=cfg.embeddings.history_k, k=cfg.evaluation.k)]
        if method in QUERY_ENCODERS:  # notebook 02 saved the encoder with the matrix
            queries = query_vectors(cfg, method, search["query"].astype(str).tolist())
            parts.insert(0, dense(search, "search", items, query_vectors=queries, k=cfg.evaluation.k))
        out[f"dense_{method}"] = pd.concat(parts, ignore_index=True)
    return out


def query_vectors(cfg: StudyConfig, method: str, texts: list[str]) -> np.ndarray:
    """The test queries encoded by ``method``'s query encoder, cached on the encoder's identity and the texts:
    encoding is most of a rerun of notebook 06 otherwise."""
    encoder = query_encoder_path(cfg, method)
    key = {"encoder": encoder_fingerprint(encoder), "texts": stable_hash(texts),
           "batch_size": cfg.embeddings.encode_batch_size}

    def build(tmp: Path) -> None:
        vectors = encode(load_encoder(encoder), texts, batch_size=cfg.embeddings.encode_batch_size)
        with open(tmp, "wb") as fh:
            np.save(fh, np.asarray(vectors), allow_pickle=False)

    return np.load(cached(run_dir(cfg.folder, "results", "cache") / f"dense_queries_{method}.npy", key, build))


def run_baselines(cfg: StudyConfig, items: pd.DataFrame | None = None, interactions: pd.DataFrame | None = None,
                  queries: pd.DataFrame | None = None) -> pd.DataFrame:
    """Random, most-popular (rec), BM25 (search), dense retrieval (both, ``dense_<method>``), and the tuned
    pair (``evaluation.tuned``: ``sasrec`` over its training seeds, ``bm25_tuned``) on the generator's test
    cases, so every number is on the cases the generator is scored on; written to ``results/baselines.csv``
    (predictions to ``results/predictions/baseline__<name>__<task>.parquet``), the tuned pair's validation
    grids to ``results/baselines_validation.csv``. Columns ``method`` and ``setting`` (the chosen settings
    as text). Notebook 02's dense check scores every test query; this one only the generator's."""
    if items is None or interactions is None or queries is None:
        items, interactions, queries = load_inputs(cfg)
    search, rec = generator_test_cases(cfg, items, interactions, queries)
    head, k = head_items(interactions), cfg.evaluation.k
    frames = {"random": pd.concat([random_baseline(search, "search", len(items), k=k, seed=cfg.seed),
                                   random_baseline(rec, "rec", len(items), k=k, seed=cfg.seed)], ignore_index=True),
              "most_popular": most_popular(rec, interactions, k=k), "bm25": bm25(search, items, k=k),
              **dense_baselines(cfg, search, rec)}
    tuned = tuned_baselines(cfg, items, interactions, queries, search, rec)
    frames.update(tuned.frames)
    write_table(tuned.validation, cfg, "baselines_validation.csv")
    parts = []
    for name, frame in frames.items():
        frame = frame if "seed" in frame else frame.assign(seed=cfg.seed)  # sasrec: one block per training seed
        save_predictions(frame, cfg.folder, "baseline", name)
        parts.append(recall_rows(frame, embedding="baseline", quantizer=name, k=k, head=head,
                                 segments_of_query=query_segments(queries)).assign(method=name))
    settings = {"dense_search": "encoder fine-tuned on the train queries (notebook 02)", **tuned.settings}
    table = pd.concat(parts, ignore_index=True).assign(setting=lambda t: t["method"].map(settings).fillna(""))
    table = table.reindex(columns=["method", "setting", *result_columns(k), *EXTRA_COLUMNS])
    write_table(table, cfg, "baselines.csv")
    return table


def load_results(cfg: StudyConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(``recall_at_<k>.csv`` at ``evaluation.k``, ``baselines.csv``) of the profile; empty frames where missing."""
    res = run_dir(cfg.folder, "results")
    read = lambda name: pd.read_csv(res / name) if (res / name).exists() else pd.DataFrame()  # noqa: E731
    return read(results_file(cfg.evaluation.k)), read("baselines.csv")


def baseline_schemes(baselines: pd.DataFrame) -> list[tuple[str, str]]:
    """The baselines of ``baselines.csv`` as schemes ``("baseline", method)``, for ``load_hits``."""
    return [("baseline", m) for m in dict.fromkeys(baselines.get("method", pd.Series(dtype=str)))]


def load_hits(profile: str, schemes: Sequence[Scheme], *, k: int) -> pd.DataFrame:
    """Per-(case, seed) Recall@``k`` hits (``statistics.hit_rows``) of every saved prediction of ``schemes``: every
    task, protocol, decoding and seed. Schemes without prediction files are left out. Each file's hits are cached
    beside it (``results/hits/``), keyed on the predictions' content hash and ``k``."""
    parts = []
    for emb, quant in dict.fromkeys(schemes):
        for task in ("search", "rec"):
            path = predictions_path(profile, emb, quant, task)
            if not path.exists():
                continue
            hits = run_dir(profile, "results", "hits") / path.name
            build = lambda tmp, p=path, e=emb, q=quant: save_parquet(  # noqa: E731
                tmp, hit_rows(pd.read_parquet(p), embedding=e, quantizer=q, k=k))
            parts.append(pd.read_parquet(cached(hits, {"k": k, "columns": HIT_COLUMNS}, build, inputs=(path,))))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=HIT_COLUMNS)


def write_table(frame: pd.DataFrame, cfg: StudyConfig, name: str) -> Path:
    """``frame`` to ``runs/<folder>/results/<name>`` (CSV, atomically), beside ``recall_at_<k>.csv``."""
    path = run_dir(cfg.folder, "results") / name
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return path


def decoding_table(results: pd.DataFrame, scheme: Scheme, seed: int, hits: pd.DataFrame | None = None) -> pd.DataFrame:
    """Recall@k (``results``' ``recall_at_<k>`` column) of one scheme and seed per (task, protocol), one column
    per decoding (all cases); with ``hits`` (``load_hits``) also ``<decoding> list length``, the mean number of
    distinct items returned, which falls below k when diverse beam groups reach the same item."""
    rows = results[(results.embedding == scheme[0]) & (results.quantizer == scheme[1]) & (results.segment == "all")
                   & (results.seed == seed)]
    table = rows.pivot_table(index=["task", "protocol"], columns="decoding", values=recall_column_in(results))
    if hits is not None and len(hits):
        own = hits[(hits.embedding == scheme[0]) & (hits.quantizer == scheme[1]) & (hits.seed == seed)]
        lengths = own.pivot_table(index=["task", "protocol"], columns="decoding", values="list_length", aggfunc="mean")
        table = table.join(lengths.add_suffix(" list length"))
    return table


def known_item_cases(hits: pd.DataFrame, queries: pd.DataFrame) -> list[str]:
    """The search case ids on known-item queries (``n_matching_max == 1``); none without the column."""
    from jointsid_utils.evaluation.statistics import search_subsets

    subsets, _ = search_subsets(hits[hits.task == "search"], queries)
    return sorted(subsets.loc[subsets.subset == "known item", "case_id"])


def write_inference(cfg: StudyConfig, hits: pd.DataFrame, queries: pd.DataFrame,
                    joint: Sequence[str] = ()) -> dict[str, Any]:
    """The variance table (``results/variance.csv``), each finding's family of paired tests
    (``results/pairs_<finding>.csv``) and the verdicts (``results/verdicts.csv``), from every scheme's hits;
    ``joint``: the constructions beyond the paper that were trained (``embedding/quantizer``). The hits go to
    ``results/hits.parquet`` with what else the inference read, so ``snapshot.recompute`` can redo it."""
    known = known_item_cases(hits, queries)
    out = inference(hits, known_item_cases=known, joint=joint, evaluation=cfg.evaluation)
    for name, frame in out["files"].items():
        write_table(frame, cfg, name)
    save_hits(run_dir(cfg.folder, "results") / HITS_FILE, hits, known_item_cases=known, joint=joint,
              evaluation=cfg.evaluation)
    return out


def inference(hits: pd.DataFrame, *, known_item_cases: Sequence[str], joint: Sequence[str],
              evaluation: EvaluationConfig) -> dict[str, Any]:
    """``variance``, ``pairs`` (per finding, its paired tests), ``verdicts`` and ``files`` (the CSV tables by
    file name, as ``write_inference`` writes them) from the hits alone: the run and ``snapshot.recompute``
    share this one path."""
    from jointsid_utils.evaluation.statistics import variance_table
    from jointsid_utils.evaluation.verdicts import finding_pairs, pairs_file, verdicts

    ev = evaluation
    generated = hits[(hits.embedding != "baseline") & (hits.decoding == ev.decoding)]
    variance = variance_table(generated, k=ev.k)
    pairs = finding_pairs(hits, evaluation=ev, known_item_cases=known_item_cases, joint=joint)
    table = verdicts(pairs, alpha=ev.alpha)
    files = {"variance.csv": variance, **{f"pairs_{f}.csv": pairs_file(t) for f, t in pairs.items()},
             "verdicts.csv": table}
    return {"variance": variance, "pairs": pairs, "verdicts": table, "files": files}


# ----------------------------------------------------------------------------- hits a reader can recompute

HITS_FILE = "hits.parquet"
_HITS_META = b"jointsid"  # parquet key of what the inference read besides the hits: settings, joint, known items
_HITS_INTS = {"seed": "int64", "target": "int64", "list_length": "int64"}  # as hit_rows writes them


def save_hits(path: Path, hits: pd.DataFrame, *, known_item_cases: Sequence[str], joint: Sequence[str],
              evaluation: EvaluationConfig) -> Path:
    """The per-(scheme, seed, case) hits, compact (categories, the smallest integers, zstd) with a ``known_item``
    column, and the evaluation settings and trained constructions in the file's metadata: with ``read_hits``,
    all that ``inference`` needs, in one file of about 1 MB for the default run."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    known = set(map(str, known_item_cases))
    compact = hits.reindex(columns=HIT_COLUMNS).assign(known_item=hits["case_id"].astype(str).isin(known).to_numpy())
    for col in ("embedding", "quantizer", "task", "protocol", "decoding", "case_id"):
        compact[col] = compact[col].astype(str).astype("category")
    for col in (*_HITS_INTS, "hit"):
        compact[col] = pd.to_numeric(compact[col], downcast="integer")
    compact["query_id"] = compact["query_id"].astype("Int32")
    table = pa.Table.from_pandas(compact, preserve_index=False)
    meta = {"evaluation": as_dict(evaluation), "joint": list(joint)}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), _HITS_META: json.dumps(meta).encode()})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", compression_level=9)
    return path


def read_hits(path: Path) -> tuple[pd.DataFrame, list[str], list[str], EvaluationConfig]:
    """(hits with the dtypes the run's inference read, known-item search cases, trained constructions, the
    evaluation settings) from ``save_hits``'s file."""
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.exists():
        raise StudyInputError(f"{path} is missing; run notebook 06 (it writes {HITS_FILE}) or take the snapshot again.")
    table = pq.read_table(path)
    meta = json.loads((table.schema.metadata or {}).get(_HITS_META, b"{}"))
    if "evaluation" not in meta:
        raise StudyInputError(f"{path} has no evaluation settings in its metadata; write it with results.save_hits.")
    frame = table.to_pandas()
    known = sorted(frame.loc[frame["known_item"] & (frame["task"] == "search"), "case_id"].astype(str).unique())
    hits = frame[HIT_COLUMNS].copy()
    for col in ("embedding", "quantizer", "task", "protocol", "decoding", "case_id"):
        hits[col] = hits[col].astype(str)
    hits = hits.astype({**_HITS_INTS, "hit": "float64", "query_id": "float64"})
    names = {f.name for f in fields(EvaluationConfig)}
    settings = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["evaluation"].items() if k in names}
    return hits, known, list(meta["joint"]), EvaluationConfig(**settings)


# ----------------------------------------------------------------------------- other cut-offs

CUTOFFS_FILE = "metrics_by_cutoff.csv"


def cutoff_table(profile: str, schemes: Sequence[Scheme], *, evaluation: EvaluationConfig) -> pd.DataFrame:
    """Per scheme (baselines as ``baseline``/method), task and rec protocol: Recall@k and Recall/NDCG at
    ``evaluation.extra_k`` (``metrics.cutoff_metrics``), the mean over seeds and cases of the saved predictions
    (the generators' ``evaluation.decoding`` lists). Reported beside Recall@k; no verdict reads them."""
    metrics = cutoff_metrics(evaluation.k, evaluation.extra_k)
    parts = []
    for emb, quant in dict.fromkeys(schemes):
        for task in ("search", "rec"):
            path = predictions_path(profile, emb, quant, task)
            if path.exists():
                parts.append(cutoff_rows(pd.read_parquet(path), metrics).assign(embedding=emb, quantizer=quant))
    columns = [metric_column(m) for m in metrics]
    if not parts:
        return pd.DataFrame(columns=["embedding", "quantizer", "task", "protocol", "decoding", *columns, "n_seeds",
                                     "n_cases"])
    rows = pd.concat(parts, ignore_index=True)
    rows = rows[(rows.embedding == "baseline") | (rows.decoding == evaluation.decoding)]
    keys = ["embedding", "quantizer", "task", "protocol", "decoding"]
    table = rows.groupby(keys, sort=False).agg(**{c: (c, "mean") for c in columns}, n_seeds=("seed", "nunique"),
                                               n_cases=("n_cases", "max"))
    return table.reset_index()


def write_cutoffs(cfg: StudyConfig, schemes: Sequence[Scheme]) -> pd.DataFrame:
    """``cutoff_table`` written to ``results/metrics_by_cutoff.csv``."""
    table = cutoff_table(cfg.folder, schemes, evaluation=cfg.evaluation)
    write_table(table, cfg, CUTOFFS_FILE)
    return table


def load_set_relevance(cfg: StudyConfig, schemes: Sequence[Scheme], queries: pd.DataFrame,
                       items: pd.DataFrame) -> pd.DataFrame:
    """Set-relevance recall rows (``statistics.set_relevance_hits``) of the broad test queries for every saved
    search prediction of ``schemes``; empty when the queries cannot give matching item sets yet."""
    from jointsid_utils.evaluation.statistics import set_relevance_hits
    from jointsid_utils.queries import matching

    if not hasattr(matching, "matching_item_sets") or "constraint" not in queries:
        return pd.DataFrame(columns=HIT_COLUMNS)
    sets = matching.matching_item_sets(queries[queries.split == "test"], items)
    parts = [set_relevance_hits(pd.read_parquet(path), sets, embedding=emb, quantizer=quant, k=cfg.evaluation.k)
             for emb, quant in dict.fromkeys(schemes)
             if (path := predictions_path(cfg.folder, emb, quant, "search")).exists()]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=HIT_COLUMNS)


def search_subset_tables(cfg: StudyConfig, hits: pd.DataFrame, schemes: Sequence[Scheme], queries: pd.DataFrame,
                         items: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(per-kind and known-item search table, set-relevance table of the broad queries per kind, a note), written
    to ``search_by_query_kind.csv`` and ``search_set_relevance.csv``. Every ranked list but the paper's diverse
    decoding (tabled on its own) takes part, baselines included."""
    from jointsid_utils.evaluation.statistics import search_subsets, subset_table

    level = cfg.evaluation.level
    search_hits = hits[(hits.task == "search") & (hits.decoding != "diverse")]
    subsets, note = search_subsets(search_hits, queries)
    by_kind = subset_table(search_hits, subsets, level=level, k=cfg.evaluation.k)
    write_table(by_kind, cfg, "search_by_query_kind.csv")
    set_hits = load_set_relevance(cfg, schemes, queries, items)
    set_hits = set_hits[set_hits.decoding != "diverse"]
    broad = pd.DataFrame()
    if len(set_hits):
        broad_subsets, _ = search_subsets(set_hits, queries)
        broad = subset_table(set_hits, broad_subsets[broad_subsets.subset != "known item"], level=level,
                             k=cfg.evaluation.k)
        write_table(broad, cfg, "search_set_relevance.csv")
    else:
        note += " Set-relevance recall skipped: the queries carry no matching constraints."
    return by_kind, broad, note.strip()
