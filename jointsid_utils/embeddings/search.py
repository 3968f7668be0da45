"""``search``: the base encoder fine-tuned with MNRL on (train query, item text) pairs (STUDY.md §2.2).

It trains on every train query; the best checkpoint is chosen on the **validation** queries, the set every
stage chooses on (``inputs.finetune_queries``). Test queries never reach the fine-tune: ``fine_tune_on`` is
handed ``selection_data(data)``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jointsid_utils.config import StudyConfig, as_dict
from jointsid_utils.embeddings.finetune import ValidationEvaluator, encode_items_with, finetune, model_dir
from jointsid_utils.embeddings.inputs import (EmbeddingData, finetune_queries, model_output, query_item_pairs,
                                              selection_data)

METHOD = "search"
# The embeddings fields a fine-tune depends on: its cache key names these and nothing else.
FIT_KEYS = ("base_encoder", "finetune_epochs", "finetune_batch_size", "finetune_lr", "finetune_max_pairs",
            "finetune_max_seq_length", "finetune_val_queries", "finetune_evals_per_epoch", "finetune_min_eval_steps")


def train(data: EmbeddingData, cfg: StudyConfig) -> Path:
    """The fine-tuned encoder's directory (trained once per config and data, then reused). The cache key
    hashes the full frames; the fine-tune itself reads only their train rows."""
    emb = cfg.embeddings
    key = {"method": METHOD, "embeddings": {k: as_dict(getattr(emb, k)) for k in FIT_KEYS},
           "items": data.fingerprint("items"), "queries": data.fingerprint("queries"), "k": cfg.evaluation.k}
    return fine_tune_on(selection_data(data), cfg, key)


def fine_tune_on(sel: EmbeddingData, cfg: StudyConfig, key: dict) -> Path:
    """MNRL on ``sel``'s train queries; its validation queries pick the best checkpoint."""
    emb = cfg.embeddings
    fit, val = finetune_queries(sel.queries, n_val=emb.finetune_val_queries, seed=cfg.seed)
    pairs = query_item_pairs(fit, sel.items, max_pairs=emb.finetune_max_pairs, seed=cfg.seed)
    evaluator = ValidationEvaluator(item_texts=sel.texts, k=cfg.evaluation.k, val_queries=val,
                                    batch_size=emb.encode_batch_size)
    out, checkpoints, stage_key = model_output(sel, cfg, METHOD)
    return finetune(method=METHOD, cfg=cfg, train_sets={"search": pairs}, evaluator=evaluator, key=key,
                    out=out, checkpoints=checkpoints, stage_key=stage_key)


def build(data: EmbeddingData, cfg: StudyConfig) -> np.ndarray:
    return encode_items_with(cfg, train(data, cfg), data.texts)


def query_encoder(cfg: StudyConfig) -> str:
    return str(model_dir(cfg, METHOD))
