"""Fine-tuning a sentence-transformer with MNRL on one or several pair datasets, resumable.

Shared by ``search`` (query -> item text) and ``multitask`` (plus item -> co-consumed item text).
Steps, as the sentence-transformers training examples: 1 model, 2 data, 3 loss, 4 evaluator (run
once before training as the baseline), 5 arguments, 6 trainer, 7 train, 8 save.

A fine-tune runs inside the embeddings stage of its method (``registry.load_or_build``): the model is
that stage's ``model`` output, linked at ``runs/<folder>/models/<method>/`` (a sentence-transformers
directory, plus ``jointsid_model.json`` with the stage key and ``training_log.json``), so later stages load
it with ``SentenceTransformer(path)``. Checkpoints go to the stage's scratch folder; a killed fine-tune
resumes from the last complete one, and the stage drops them once the model is published.
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
from jointsid_utils.config import EmbeddingConfig, StudyConfig, stable_hash
from jointsid_utils.cutoff import recall_column
from jointsid_utils.embeddings.encoders import encode, load_encoder
from jointsid_utils.embeddings.retrieval import history_mean, recall_at_k, top_k
from jointsid_utils.runtime.precision import resolve_precision

INFO = "jointsid_model.json"
LOG = "training_log.json"


def model_dir(cfg: StudyConfig, method: str) -> Path:
    """Where ``method``'s trained encoder lives: ``runs/<folder>/models/<method>/``."""
    return run_dir(cfg.folder, "models") / method


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
    """Recall@``k`` (``evaluation.k``) on the **validation** queries and, optionally, on each user's validation item.

    The rec part ranks all items for the mean of the user's last ``history_k`` train items,
    with those train items removed (the usual protocol for choosing a recommender; the test split
    is never read). ``score`` is the mean of the parts present and picks the best checkpoint.
    """

    def __init__(self, *, item_texts: list[str], k: int, val_queries: pd.DataFrame | None = None,
                 rec_history: list[np.ndarray] | None = None, rec_target: np.ndarray | None = None,
                 history_k: int = 10, batch_size: int = 64):
        super().__init__()
        self.item_texts, self.k = item_texts, k
        self.val_queries = val_queries if val_queries is not None and len(val_queries) else None
        self.rec_history, self.rec_target = rec_history, rec_target
        self.history_k, self.batch_size = history_k, batch_size
        self.primary_metric = "score"

    def __call__(self, model, output_path=None, epoch: int = -1, steps: int = -1) -> dict[str, float]:
        item_vectors = encode(model, self.item_texts, batch_size=self.batch_size)
        metrics: dict[str, float] = {}
        if self.val_queries is not None:
            q = encode(model, self.val_queries["query"].tolist(), batch_size=self.batch_size)
            metrics[f"search_{recall_column(self.k)}"] = recall_at_k(top_k(q, item_vectors, k=self.k),
                                                                      self.val_queries["item_id"].to_numpy())
        if self.rec_history is not None:
            users = history_mean(item_vectors, self.rec_history, self.history_k)
            metrics[f"rec_{recall_column(self.k)}"] = recall_at_k(
                top_k(users, item_vectors, k=self.k, exclude=self.rec_history), self.rec_target)
        metrics["score"] = float(np.mean(list(metrics.values())))
        return metrics


def finetune(*, method: str, cfg: StudyConfig, train_sets: Mapping[str, pd.DataFrame],
             evaluator: ValidationEvaluator, key: Mapping[str, Any], out: Path, checkpoints: Path,
             stage_key: str | None = None) -> Path:
    """Train ``method``'s encoder on MNRL over ``train_sets`` (name -> anchor/positive frame).

    Several sets are trained jointly, one set per batch in round-robin order (the multi-task objective
    is then the sum of the per-set MNRL losses over an epoch). The model is saved to ``out`` and the
    checkpoints go to ``checkpoints`` (``inputs.model_output``); ``key`` names what the model depends on, and
    ``stage_key`` (the embeddings stage's key, when it runs inside one) is recorded as its identity.
    Returns ``out``.
    """
    from sentence_transformers import SentenceTransformerTrainer

    from jointsid_utils.runtime.trainer_lines import progress_lines

    emb = cfg.embeddings
    bf16 = {"precision": "bf16"} if finetune_bf16(emb) else {}
    key_hash = stage_key or stable_hash({"key": dict(key), "seed": cfg.seed, **bf16})
    ckpt_dir = Path(checkpoints)
    ckpt_dir.mkdir(parents=True, exist_ok=True)

    # 1. model (the base encoder)
    model = load_encoder(emb.base_encoder)
    model.max_seq_length = min(emb.finetune_max_seq_length, model.max_seq_length)  # saved with the model
    # 2. data and 3. loss
    train_dataset, loss = datasets_and_loss(model, train_sets)
    # 4. evaluator on validation data, once before training: the baseline
    started = time.time()
    baseline = evaluator(model)
    # 5. arguments
    schedule = training_schedule(emb, train_sets)
    args = training_arguments(cfg, ckpt_dir, schedule)
    # 6. trainer
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=train_dataset, loss=loss,
                                         evaluator=evaluator)
    progress_lines(trainer, method)  # its bars and one line per evaluation, not a raw log dict per log step
    # 7. train, resuming from the last complete checkpoint of this very config if one exists
    resume = last_complete_checkpoint(ckpt_dir)
    trainer.train(resume_from_checkpoint=resume)
    seconds = time.time() - started
    # 8. save atomically: a temporary directory renamed into place
    log = training_log(trainer, baseline, schedule, train_sets)
    info = {"method": method, "key_hash": key_hash, "key": dict(key), "train_seconds": round(seconds, 1),
            "resumed": bool(resume),
            "pairs_per_second": round(sum(len(f) for f in train_sets.values()) * emb.finetune_epochs
                                      / max(seconds, 1e-9), 1)}
    save_model(model, Path(out), log, info)
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    return Path(out)


def datasets_and_loss(model, train_sets: Mapping[str, pd.DataFrame]) -> tuple[Any, Any]:
    """The trainer's dataset(s), text columns only (every other column would be fed to the model), and
    MNRL with in-batch negatives, one per set when there are several."""
    from datasets import Dataset
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    datasets = {name: Dataset.from_dict({"anchor": frame["anchor"].tolist(), "positive": frame["positive"].tolist()})
                for name, frame in train_sets.items()}
    mnrl = MultipleNegativesRankingLoss(model)
    if len(datasets) > 1:
        return datasets, {name: mnrl for name in datasets}
    return next(iter(datasets.values())), mnrl


def training_schedule(emb: EmbeddingConfig, train_sets: Mapping[str, pd.DataFrame]) -> dict[str, int]:
    """Steps per epoch and in all, and the evaluation and logging intervals.

    With several sets the round-robin sampler stops an epoch when the smallest set runs out, and the
    logging interval is even, so each logged loss averages both tasks equally.
    """
    batches = [len(frame) // emb.finetune_batch_size for frame in train_sets.values()]
    steps_per_epoch = max(1, len(batches) * min(batches) if len(batches) > 1 else batches[0])
    total_steps = max(1, int(math.ceil(steps_per_epoch * emb.finetune_epochs)))
    eval_steps = min(total_steps, max(emb.finetune_min_eval_steps,
                                      int(math.ceil(steps_per_epoch / emb.finetune_evals_per_epoch))))
    log_steps = max(1, total_steps // 40)
    log_steps += len(train_sets) > 1 and log_steps % 2
    return {"steps_per_epoch": steps_per_epoch, "total_steps": total_steps, "eval_steps": eval_steps,
            "log_steps": log_steps}


def training_arguments(cfg: StudyConfig, ckpt_dir: Path, schedule: Mapping[str, int]):
    """HF trainer arguments: a checkpoint at every evaluation, the best validation score reloaded at the end."""
    from sentence_transformers import SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers, MultiDatasetBatchSamplers

    emb, eval_steps = cfg.embeddings, schedule["eval_steps"]
    return SentenceTransformerTrainingArguments(
        output_dir=str(ckpt_dir),
        num_train_epochs=emb.finetune_epochs,
        per_device_train_batch_size=emb.finetune_batch_size,
        learning_rate=emb.finetune_lr,
        warmup_steps=max(1, int(0.1 * schedule["total_steps"])),  # transformers 5: warmup_steps, not warmup_ratio
        # no duplicates in a batch: one item's text is never its own in-batch negative
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        multi_dataset_batch_sampler=MultiDatasetBatchSamplers.ROUND_ROBIN,
        eval_strategy="steps", eval_steps=eval_steps,
        save_strategy="steps", save_steps=eval_steps, save_total_limit=2,
        load_best_model_at_end=True, metric_for_best_model="score", greater_is_better=True,
        logging_steps=schedule["log_steps"], logging_first_step=True,
        # The GPU when there is one (the paper profile), in bf16 where it has it; on a CPU as
        # embeddings.finetune_precision says.
        use_cpu=not torch.cuda.is_available(), bf16=finetune_bf16(emb),
        seed=cfg.seed, data_seed=cfg.seed, dataloader_num_workers=0,
        report_to="none", disable_tqdm=False,
    )


def finetune_bf16(emb: EmbeddingConfig) -> bool:
    """Whether a fine-tune trains under bf16 autocast: on a CUDA GPU that supports it, else per
    ``embeddings.finetune_precision`` on this CPU."""
    if torch.cuda.is_available():
        return bool(torch.cuda.is_bf16_supported())
    return resolve_precision(emb.finetune_precision, "embeddings.finetune_precision") == "bf16"


def training_log(trainer, baseline: Mapping[str, float], schedule: Mapping[str, int],
                 train_sets: Mapping[str, pd.DataFrame]) -> dict[str, Any]:
    """What ``training_log.json`` records: the trainer's log, the baseline and the reloaded best evaluation."""
    evals = [r for r in trainer.state.log_history if "eval_score" in r]
    final = max(evals, key=lambda r: r["eval_score"]) if evals else {}  # the checkpoint reloaded at the end
    return {"log_history": trainer.state.log_history, "baseline": baseline, "final": final,
            "best_checkpoint": trainer.state.best_model_checkpoint,
            "best_metric": trainer.state.best_metric, "steps": trainer.state.global_step,
            "steps_per_epoch": schedule["steps_per_epoch"], "eval_steps": schedule["eval_steps"],
            "pairs": {name: len(frame) for name, frame in train_sets.items()}}


def save_model(model, out: Path, log: Mapping[str, Any], info: Mapping[str, Any]) -> None:
    """The model with its ``LOG`` and ``INFO`` into a temporary directory, then renamed to ``out``."""
    tmp = out.parent / f".{out.name}-saving"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save(str(tmp))
    write_json(tmp / LOG, dict(log))
    write_json(tmp / INFO, dict(info))
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)


def encode_items_with(cfg: StudyConfig, path: Path, item_texts: list[str]) -> np.ndarray:
    """Item vectors from a trained encoder directory."""
    return encode(load_encoder(path), item_texts, batch_size=cfg.embeddings.encode_batch_size)
