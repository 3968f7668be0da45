"""``multitask``: the base encoder fine-tuned jointly on two MNRL objectives (STUDY.md §2.2).

- search pairs: (train query, item text), as ``search``;
- rec pairs: (item_a text, item_b text) for two items one user consumed consecutively in **train**.

One set per batch, round robin, so an epoch sums both losses with equal weight; as many item pairs
as query pairs unless ``multitask_max_item_pairs`` says otherwise. The best checkpoint is the one with
the best mean of validation search Recall@30 (the validation queries) and validation rec Recall@30
(each user's validation item from the mean of their last ``history_k`` train items). ``fine_tune_on`` is
handed ``selection_data(data)``, so no test row reaches the pairs or the choice.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jointsid_utils.config import StudyConfig, as_dict
from jointsid_utils.embeddings.finetune import ValidationEvaluator, encode_items_with, finetune, model_dir
from jointsid_utils.embeddings.inputs import (EmbeddingData, finetune_queries, histories, item_text_pairs, model_output,
                                              query_item_pairs, selection_data, targets)
from jointsid_utils.embeddings.search import FIT_KEYS

METHOD = "multitask"


def training_sets(sel: EmbeddingData, cfg: StudyConfig):
    """(train sets for the trainer, validation queries), from ``sel = selection_data(data)``."""
    emb = cfg.embeddings
    fit, val = finetune_queries(sel.queries, n_val=emb.finetune_val_queries, seed=cfg.seed)
    query_pairs = query_item_pairs(fit, sel.items, max_pairs=emb.finetune_max_pairs, seed=cfg.seed)
    n_item_pairs = emb.multitask_max_item_pairs if emb.multitask_max_item_pairs is not None else len(query_pairs)
    item_pairs = item_text_pairs(sel.interactions, sel.items, n_pairs=n_item_pairs, seed=cfg.seed)
    return {"search": query_pairs, "rec": item_pairs}, val


def train(data: EmbeddingData, cfg: StudyConfig) -> Path:
    """The fine-tuned encoder's directory. The cache key hashes the full frames; the fine-tune itself reads
    only their train and validation rows."""
    emb = cfg.embeddings
    key = {"method": METHOD, "embeddings": {k: as_dict(getattr(emb, k)) for k in
                                            (*FIT_KEYS, "multitask_max_item_pairs", "history_k")},
           "items": data.fingerprint("items"), "queries": data.fingerprint("queries"),
           "interactions": data.fingerprint("interactions"), "k": cfg.evaluation.k}
    return fine_tune_on(selection_data(data), cfg, key)


def fine_tune_on(sel: EmbeddingData, cfg: StudyConfig, key: dict) -> Path:
    """Both MNRL objectives on ``sel``; the best checkpoint by validation queries and validation items."""
    emb = cfg.embeddings
    sets, val = training_sets(sel, cfg)
    train_hist = histories(sel.interactions, ("train",))
    val_target = targets(sel.interactions, "validation")
    users = val_target.index.to_numpy()
    evaluator = ValidationEvaluator(item_texts=sel.texts, k=cfg.evaluation.k, val_queries=val,
                                    rec_history=[train_hist.get(int(u), np.empty(0, np.int64)) for u in users],
                                    rec_target=val_target.to_numpy(), history_k=emb.history_k,
                                    batch_size=emb.encode_batch_size)
    out, checkpoints, stage_key = model_output(sel, cfg, METHOD)
    return finetune(method=METHOD, cfg=cfg, train_sets=sets, evaluator=evaluator, key=key,
                    out=out, checkpoints=checkpoints, stage_key=stage_key)


def build(data: EmbeddingData, cfg: StudyConfig) -> np.ndarray:
    return encode_items_with(cfg, train(data, cfg), data.texts)


def query_encoder(cfg: StudyConfig) -> str:
    return str(model_dir(cfg, METHOD))
