"""The practitioner's pair, tuned on validation: SASRec for rec and BM25 with chosen ``k1``/``b``
for search, on the generator's own test cases; ``results.run_baselines`` adds them to ``baselines.csv``.

SASRec's grid and five training seeds are most of notebook 06's baseline time, so both are cached in
``runs/<folder>/results/cache/``, keyed on the ``baselines`` section, ``evaluation.k`` (the grid chooses on
Recall@k, the lists hold k items), the interactions' content and the test cases: a rerun reads them back.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from jointsid_utils.cache import cached, run_dir, save_parquet
from jointsid_utils.config import StudyConfig, as_dict, stable_hash
from jointsid_utils.embeddings.inputs import frame_fingerprint
from jointsid_utils.evaluation.bm25_tuning import bm25_tuned, tune_bm25
from jointsid_utils.evaluation.sasrec import FINAL_FIT_SPLITS, SasrecSetting, sasrec_baseline, sasrec_validation
from jointsid_utils.metrics import recall_column

SASREC_GRID_KEYS = ("sasrec_losses", "sasrec_dims", "sasrec_blocks", "sasrec_epochs", "sasrec_heads",
                    "sasrec_max_len", "sasrec_dropout", "sasrec_lr", "sasrec_batch_size")


def validation_columns(k: int) -> list[str]:
    """The columns of ``baselines_validation.csv``: both grids, Recall@k in ``recall_column(k)``."""
    return ["method", "setting", recall_column(k), "n_cases", "chosen", "loss", "dim", "blocks", "epochs", "k1", "b"]


class Tuned(NamedTuple):
    """Predictions per method, the chosen setting per method (text) and the validation grids."""

    frames: dict[str, pd.DataFrame]
    settings: dict[str, str]
    validation: pd.DataFrame


def tuned_baselines(cfg: StudyConfig, items: pd.DataFrame, interactions: pd.DataFrame, queries: pd.DataFrame,
                    search: pd.DataFrame, rec: pd.DataFrame) -> Tuned:
    """``sasrec`` (every seed of ``baselines.sasrec_seeds``) and ``bm25_tuned``, each chosen on validation."""
    bcfg, k = cfg.baselines, cfg.evaluation.k
    sasrec_table, chosen = sasrec_grid(cfg, interactions, len(items))
    sasrec = sasrec_predictions(cfg, interactions, rec, len(items), chosen)
    bm25_table, (k1, b) = tune_bm25(items, queries, bcfg.bm25_k1, bcfg.bm25_b, seed=cfg.seed, k=k)
    validation = pd.concat([
        sasrec_table.assign(method="sasrec", setting=[SasrecSetting(r.dim, r.blocks, r.epochs, r.loss).text()
                                                      for r in sasrec_table.itertuples()]),
        bm25_table.assign(method="bm25_tuned", setting=[bm25_text(r.k1, r.b) for r in bm25_table.itertuples()]),
    ], ignore_index=True).reindex(columns=validation_columns(k))
    return Tuned({"sasrec": sasrec, "bm25_tuned": bm25_tuned(search, items, (k1, b), k=k)},
                 {"sasrec": chosen.text(), "bm25_tuned": bm25_text(k1, b), "bm25": bm25_text(1.5, 0.75) + " (bm25s defaults)"},
                 validation)


def bm25_text(k1: float, b: float) -> str:
    return f"k1={k1:g}, b={b:g}"


def sasrec_grid(cfg: StudyConfig, interactions: pd.DataFrame, n_items: int) -> tuple[pd.DataFrame, SasrecSetting]:
    """The cached validation grid (``sasrec.sasrec_validation``) and its chosen setting."""
    key = _grid_key(cfg, interactions, n_items)

    def build(tmp: Path) -> None:
        save_parquet(tmp, sasrec_validation(interactions, n_items, cfg.baselines, seed=cfg.seed,
                                            k=cfg.evaluation.k)[0])

    table = pd.read_parquet(cached(_cache_dir(cfg) / "sasrec_validation.parquet", key, build))
    best = table[table["chosen"]].iloc[0]
    return table, SasrecSetting(int(best["dim"]), int(best["blocks"]), int(best["epochs"]), str(best["loss"]))


def sasrec_predictions(cfg: StudyConfig, interactions: pd.DataFrame, rec: pd.DataFrame, n_items: int,
                       chosen: SasrecSetting) -> pd.DataFrame:
    """The cached test predictions of the chosen setting, one block per training seed."""
    cases = stable_hash([rec["case_id"].tolist(), rec["target"].astype(int).tolist(),
                         [np.asarray(h).astype(int).tolist() for h in rec["history"]]])
    key = {**_grid_key(cfg, interactions, n_items), "chosen": asdict(chosen),
           "seeds": list(cfg.baselines.sasrec_seeds), "cases": cases,
           "final_fit": list(FINAL_FIT_SPLITS)}

    def build(tmp: Path) -> None:
        save_parquet(tmp, sasrec_baseline(rec, interactions, n_items, chosen, cfg.baselines, k=cfg.evaluation.k))

    frame = pd.read_parquet(cached(_cache_dir(cfg) / "sasrec_predictions.parquet", key, build))
    frame["ranked"] = frame["ranked"].map(list)
    return frame


def _grid_key(cfg: StudyConfig, interactions: pd.DataFrame, n_items: int) -> dict:
    section = as_dict(cfg.baselines)
    return {"baselines": {k: section[k] for k in SASREC_GRID_KEYS}, "seed": cfg.seed, "k": cfg.evaluation.k,
            "n_items": n_items, "interactions": frame_fingerprint("interactions", interactions)}


def _cache_dir(cfg: StudyConfig) -> Path:
    return run_dir(cfg.folder, "results", "cache")
