"""Fine-tuning a sentence-transformer with MNRL on one or several pair datasets, resumable and cached.

Shared by ``search`` (query -> item text) and ``multitask`` (plus item -> co-consumed item text).
Steps, as the sentence-transformers training examples: 1 model, 2 data, 3 loss, 4 evaluator (run
once before training as the baseline), 5 arguments, 6 trainer, 7 train, 8 save.

The trained model lands in ``runs/<profile>/models/<method>/`` (a sentence-transformers directory,
plus ``jointsid_model.json`` with its config key and ``training_log.json``), so later stages load it
with ``SentenceTransformer(path)``. Checkpoints go to ``models/.<method>-checkpoints-<key>/`` while
training; an interrupted run resumes from the last one, and they are deleted once the model is saved.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch

from jointsid_utils.cache import last_complete_checkpoint, run_dir, write_json
from jointsid_utils.config import StudyConfig, stable_hash
from jointsid_utils.embeddings import defaults
from jointsid_utils.embeddings.encoders import encode, load_encoder
from jointsid_utils.embeddings.retrieval import history_mean, recall_at_k, top_k

INFO = "jointsid_model.json"
LOG = "training_log.json"


def model_dir(cfg: StudyConfig, method: str) -> Path:
    """Where ``method``'s trained encoder lives: ``runs/<profile>/models/<method>/``."""
    return run_dir(cfg.name, "models") / method


def read_info(cfg: StudyConfig, method: str) -> dict[str, Any] | None:
    path = model_dir(cfg, method) / INFO
    return json.loads(path.read_text()) if path.exists() else None


def read_log(cfg: StudyConfig, method: str) -> dict[str, Any] | None:
    path = model_dir(cfg, method) / LOG
    return json.loads(path.read_text()) if path.exists() else None


def _base_evaluator():
    from sentence_transformers.base.evaluation import BaseEvaluator

    return BaseEvaluator


class ValidationEvaluator(_base_evaluator()):
    """Recall@30 on held-out **train** queries and, optionally, on each user's validation item.

    The rec part ranks all items for the mean of the user's last ``history_k`` train items,
    with those train items removed (the usual protocol for choosing a recommender; the test split
    is never read). ``score`` is the mean of the parts present and picks the best checkpoint.
    """

    def __init__(self, *, item_texts: list[str], val_queries: pd.DataFrame | None = None,
                 rec_history: list[np.ndarray] | None = None, rec_target: np.ndarray | None = None,
                 history_k: int = 10, batch_size: int = 64):
        super().__init__()
        self.item_texts = item_texts
        self.val_queries = val_queries if val_queries is not None and len(val_queries) else None
        self.rec_history, self.rec_target = rec_history, rec_target
        self.history_k, self.batch_size = history_k, batch_size
        self.primary_metric = "score"

    def __call__(self, model, output_path=None, epoch: int = -1, steps: int = -1) -> dict[str, float]:
        item_vectors = encode(model, self.item_texts, batch_size=self.batch_size)
        metrics: dict[str, float] = {}
        if self.val_queries is not None:
            q = encode(model, self.val_queries["query"].tolist(), batch_size=self.batch_size)
            metrics["search_recall_at_30"] = recall_at_k(top_k(q, item_vectors),
                                                         self.val_queries["item_id"].to_numpy())
        if self.rec_history is not None:
            users = history_mean(item_vectors, self.rec_history, self.history_k)
            metrics["rec_recall_at_30"] = recall_at_k(top_k(users, item_vectors, exclude=self.rec_history),
                                                      self.rec_target)
        metrics["score"] = float(np.mean(list(metrics.values())))
        return metrics


def finetune(*, method: str, cfg: StudyConfig, train_sets: Mapping[str, pd.DataFrame],
             evaluator: ValidationEvaluator, key: Mapping[str, Any], item_texts: list[str],
             evals_per_epoch: int = defaults.EVALS_PER_EPOCH, min_eval_steps: int = defaults.MIN_EVAL_STEPS,
             max_seq_length: int = defaults.FINETUNE_MAX_SEQ_LENGTH) -> Path:
    """Train (or reuse) ``method``'s encoder on MNRL over ``train_sets`` (name -> anchor/positive frame).

    Several sets are trained jointly, one set per batch in round-robin order (the multi-task objective
    is then the sum of the per-set MNRL losses over an epoch). Returns the model directory.
    """
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers, MultiDatasetBatchSamplers
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    emb = cfg.embeddings
    out = model_dir(cfg, method)
    key = {**key, "max_seq_length": max_seq_length, "evals_per_epoch": evals_per_epoch}
    key_hash = stable_hash({"key": key, "seed": cfg.seed})
    info = read_info(cfg, method)
    if info is not None and info.get("key_hash") == key_hash and (out / "config.json").exists():
        return out  # the same config already trained: reuse
    ckpt_dir = out.parent / f".{method}-checkpoints-{key_hash}"

    # 1. model (the base encoder)
    model = load_encoder(emb.base_encoder)
    model.max_seq_length = min(max_seq_length, model.max_seq_length)  # saved with the model: encoding matches
    # 2. data: only the text columns, since every other column would be fed to the model
    datasets = {name: Dataset.from_dict({"anchor": frame["anchor"].tolist(), "positive": frame["positive"].tolist()})
                for name, frame in train_sets.items()}
    train_dataset = datasets if len(datasets) > 1 else next(iter(datasets.values()))
    # 3. loss: in-batch negatives; the no-duplicates sampler keeps one item's text from being its own negative
    mnrl = MultipleNegativesRankingLoss(model)
    loss = {name: mnrl for name in datasets} if len(datasets) > 1 else mnrl
    # 4. evaluator on validation data, once before training: the baseline
    started = time.time()
    baseline = evaluator(model)
    # 5. arguments
    batches = [len(frame) // emb.finetune_batch_size for frame in train_sets.values()]
    steps_per_epoch = max(1, len(batches) * min(batches) if len(batches) > 1 else batches[0])
    total_steps = max(1, int(math.ceil(steps_per_epoch * emb.finetune_epochs)))
    eval_steps = min(total_steps, max(min_eval_steps, int(math.ceil(steps_per_epoch / evals_per_epoch))))
    # An even logging interval with several sets, so each logged loss averages both tasks equally.
    log_steps = max(1, total_steps // 40)
    log_steps += len(datasets) > 1 and log_steps % 2
    args = SentenceTransformerTrainingArguments(
        output_dir=str(ckpt_dir),
        num_train_epochs=emb.finetune_epochs,
        per_device_train_batch_size=emb.finetune_batch_size,
        learning_rate=emb.finetune_lr,
        warmup_steps=max(1, int(0.1 * total_steps)),  # transformers 5: warmup_steps, not warmup_ratio
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        multi_dataset_batch_sampler=MultiDatasetBatchSamplers.ROUND_ROBIN,
        eval_strategy="steps", eval_steps=eval_steps,
        save_strategy="steps", save_steps=eval_steps, save_total_limit=2,
        load_best_model_at_end=True, metric_for_best_model="score", greater_is_better=True,
        logging_steps=log_steps, logging_first_step=True,
        # The GPU when there is one (the paper profile); bf16 where it has it. CPU runs are unchanged.
        use_cpu=not torch.cuda.is_available(), bf16=bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported()),
        seed=cfg.seed, data_seed=cfg.seed, dataloader_num_workers=0,
        report_to="none", disable_tqdm=False,
    )
    # 6. trainer
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=train_dataset, loss=loss,
                                         evaluator=evaluator)
    # 7. train, resuming from the last complete checkpoint of this very config if one exists
    resume = last_complete_checkpoint(ckpt_dir)
    trainer.train(resume_from_checkpoint=resume)
    evals = [r for r in trainer.state.log_history if "eval_score" in r]
    final = max(evals, key=lambda r: r["eval_score"]) if evals else {}  # the checkpoint reloaded at the end
    seconds = time.time() - started
    # 8. save atomically: a temporary directory renamed into place
    tmp = out.parent / f".{method}-saving"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save(str(tmp))
    write_json(tmp / LOG, {"log_history": trainer.state.log_history, "baseline": baseline, "final": final,
                           "best_checkpoint": trainer.state.best_model_checkpoint,
                           "best_metric": trainer.state.best_metric, "steps": trainer.state.global_step,
                           "steps_per_epoch": steps_per_epoch, "eval_steps": eval_steps,
                           "pairs": {name: len(frame) for name, frame in train_sets.items()}})
    write_json(tmp / INFO, {"method": method, "key_hash": key_hash, "key": key, "train_seconds": round(seconds, 1),
                            "resumed": bool(resume),
                            "pairs_per_second": round(sum(len(f) for f in train_sets.values())
                                                      * emb.finetune_epochs / max(seconds, 1e-9), 1)})
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    return out


def encode_items_with(cfg: StudyConfig, path: Path, item_texts: list[str]) -> np.ndarray:
    """Item vectors from a trained encoder directory."""
    return encode(load_encoder(path), item_texts, batch_size=cfg.embeddings.encode_batch_size)
