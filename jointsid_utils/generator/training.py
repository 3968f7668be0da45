"""Training one scheme's generator with HF ``Seq2SeqTrainer``, and its cached model directory.

    info = train_scheme(scheme, examples, items, queries, gcfg, out, seed, key=key, work=scratch)
    model_dir(profile, "multitask__rq_kmeans", seed)   # where a run folder links it: models/generator/<scheme>__seed<k>/

The Trainer runs unchanged under ``accelerate launch`` / ``torchrun`` (every process trains its shard of
each batch); a fixed number of epochs, bf16 autocast per ``generator.precision``, the lowest-validation-loss checkpoint
kept, and an interrupted run resumes from its last complete checkpoint. ``train_info.json`` holds the job
key, example counts, times and the loss curve; whether a model is complete is the ``generator`` stage's
to say (``job.trained_model``).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from jointsid_utils.runtime import distributed
from jointsid_utils.cache import last_complete_checkpoint, run_dir, write_json
from jointsid_utils.config import GeneratorConfig, as_dict
from jointsid_utils.errors import StudyInputError
from jointsid_utils.generator.examples import Examples, RecWindowSampler, TaskBlockSampler, encode_examples
from jointsid_utils.generator.item_positions import PromptCollator, item_grouping
from jointsid_utils.generator.model import build_model, make_tokenizer, warm_started_model
from jointsid_utils.runtime.precision import resolve_precision
from jointsid_utils.generator.tokenization import (IdScheme, check_tokenizer, item_token_ids,
                                                   memoized_tokenizer, tokenizer_key)

TASK_BATCHING = ("mixed", "per_task")
# Whether the trainer draws its bars. A job in a spawned worker writes straight to the
# terminal's file descriptors, past the notebook and the runner's relay, so two workers' bars interleave
# there; ``orchestration.worker_init`` turns this off and the notebook's bar of jobs shows the progress.
SHOW_TRAINER_PROGRESS = True
INFO_FILE = "train_info.json"


def model_dir(profile: str, scheme_name: str, seed: int) -> Path:
    """``runs/<folder>/models/generator/<scheme>__seed<k>/``."""
    return run_dir(profile, "models", "generator", f"{scheme_name}__seed{seed}")


def train_scheme(scheme: IdScheme, examples: Examples, items: pd.DataFrame, queries: pd.DataFrame,
                 gcfg: GeneratorConfig, out: Path, seed: int, *, key: str, work: Path, retrain: bool = False,
                 warm_start: Path | None = None) -> dict[str, Any]:
    """Train the scheme's generator into ``out`` and return its ``train_info`` (also saved there).

    The Trainer's checkpoints go to ``work`` (a stage's scratch: a killed run resumes from them, ``retrain``
    empties them first). Steps: the tokenizer, the tokenised examples, the model, the Trainer, then the
    saved model, tokenizer and info. The caller seeds: the study's jobs once per job, before their examples
    are drawn.
    """
    if gcfg.task_batching not in TASK_BATCHING:
        raise StudyInputError(f"generator.task_batching {gcfg.task_batching!r} is not 'mixed' or 'per_task'.")
    checkpoints = checkpoint_dir(work, fresh=retrain)
    tokenizer = _tokenizer(scheme, items, queries, gcfg, checkpoints, warm_start)
    labels = {t: item_token_ids(tokenizer, scheme, t) for t in ("search", "rec")}
    grouping = item_grouping(tokenizer, scheme) if gcfg.rec_item_positions else None
    train_ds = encode_examples(examples.train, tokenizer, labels, gcfg.max_prompt_tokens, grouping)
    val_ds = encode_examples(examples.validation, tokenizer, labels, gcfg.max_prompt_tokens, grouping)
    output_ids = output_tokens(tokenizer, scheme) if gcfg.id_output_only else None
    model = (build_model(tokenizer, gcfg, output_ids) if warm_start is None
             else warm_started_model(warm_start, tokenizer, scheme, items, gcfg, seed, output_ids))
    per_task = list(examples.train["task"]) if gcfg.task_batching == "per_task" else None
    if per_task is not None and gcfg.rec_window_pool:
        raise StudyInputError("generator.rec_window_pool draws windows within mixed batches; set task_batching "
                              "to 'mixed' or rec_window_pool to 0.")
    rec_users = examples.train["user"].to_numpy() if gcfg.rec_window_pool else None
    run = train_generator(model, tokenizer, train_ds, val_ds, gcfg, work, seed, train_tasks=per_task,
                          rec_users=rec_users)
    info = {"key": key, "scheme": scheme.name, "seed": seed, "generator": as_dict(gcfg), "examples": examples.stats,
            "vocab_size": len(tokenizer), "parameters": sum(p.numel() for p in model.parameters()), **run,
            "warm_start": _pretrained_key(warm_start)}
    if distributed.is_main():
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        write_json(out / INFO_FILE, info)
    distributed.barrier()
    return info


def _pretrained_key(checkpoint: Path | None) -> str | None:
    """The ``pretrain`` stage key a warm-started model fine-tuned (from the checkpoint's info), else None."""
    if checkpoint is None:
        return None
    from jointsid_utils.generator.pretrain import INFO_FILE as PRETRAIN_INFO

    return json.loads((checkpoint / PRETRAIN_INFO).read_text())["key"]


def output_tokens(tokenizer, scheme: IdScheme) -> list[int]:
    """What the decoder may emit: every ID token of the scheme, and EOS."""
    return sorted(set(tokenizer.convert_tokens_to_ids(scheme.all_tokens())) | {tokenizer.eos_token_id})


def tied_aliases(model: torch.nn.Module) -> set[str]:
    """Parameter names that share their tensor with an earlier-named parameter (T5's tied embeddings)."""
    first: dict[int, str] = {}
    aliases = set()
    for name, param in model.named_parameters(remove_duplicate=False):
        if id(param) in first:
            aliases.add(name)
        else:
            first[id(param)] = name
    return aliases


def checkpoint_dir(work: Path, *, fresh: bool = False) -> Path:
    """``work/checkpoints``, where the Trainer saves and resumes; emptied first when ``fresh`` (a retrain).
    ``work`` is a stage's scratch, so it only ever holds this stage's checkpoints. Under torchrun the main
    process resets it, the others wait."""
    folder = work / "checkpoints"
    if distributed.is_main():
        if fresh and folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True, exist_ok=True)
    distributed.barrier()
    return folder


def _tokenizer(scheme: IdScheme, items: pd.DataFrame, queries: pd.DataFrame, gcfg: GeneratorConfig,
               checkpoints: Path, warm_start: Path | None = None):
    """The resumed checkpoint's tokenizer, else the one built for this scheme and corpus (earlier in this
    process for another training seed, or now); either must hold every ID token of ``scheme``.

    A resumed model's embedding rows follow its own tokenizer's ids, so that tokenizer is reused rather
    than rebuilt."""
    from transformers import AutoTokenizer

    checkpoint = last_complete_checkpoint(checkpoints)
    if checkpoint is not None:
        tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    elif warm_start is not None:  # the pretrained shared vocabulary plus this scheme's ID tokens, from disk
        tokenizer = make_tokenizer(scheme, items, queries, gcfg, warm_start)
    else:
        key = tokenizer_key(scheme, items, queries, base_model=gcfg.base_model, vocab_size=gcfg.vocab_size,
                            kind=gcfg.tokenizer_kind)
        tokenizer = memoized_tokenizer(key, lambda: make_tokenizer(scheme, items, queries, gcfg))
    check_tokenizer(tokenizer, scheme)
    return tokenizer


def training_arguments(gcfg: GeneratorConfig, out: Path, seed: int):
    """``Seq2SeqTrainingArguments``: the global batch is ``gcfg.batch_size`` whatever the process count."""
    from transformers import Seq2SeqTrainingArguments

    cuda = torch.cuda.is_available()
    sampling = "group_by_length" if gcfg.length_grouped else "random"
    return Seq2SeqTrainingArguments(
        output_dir=str(out / "checkpoints"), per_device_train_batch_size=max(1, gcfg.batch_size // distributed.world_size()),
        per_device_eval_batch_size=256, learning_rate=gcfg.lr, weight_decay=gcfg.weight_decay,
        num_train_epochs=gcfg.epochs, warmup_steps=gcfg.warmup_steps, lr_scheduler_type="cosine",
        max_grad_norm=gcfg.max_grad_norm, eval_strategy="epoch", save_strategy="epoch", save_total_limit=2,
        load_best_model_at_end=True, metric_for_best_model="eval_loss", greater_is_better=False,
        logging_steps=50, seed=seed, data_seed=seed, bf16=resolve_precision(gcfg.precision) == "bf16",
        train_sampling_strategy=sampling, torch_compile=gcfg.torch_compile,
        report_to="none", dataloader_num_workers=0, dataloader_pin_memory=cuda,
        disable_tqdm=not SHOW_TRAINER_PROGRESS, save_only_model=False,
        # accelerate treats CPU processes under torchrun as separate single-process runs (DistributedType.NO)
        # unless use_cpu is set: each would train the whole model alone and race on the checkpoints.
        use_cpu=not cuda,
    )


def train_generator(model, tokenizer, train_ds, val_ds, gcfg: GeneratorConfig, out_dir: Path, seed: int, *,
                    resume: bool = True, train_tasks: Sequence[str] | None = None,
                    rec_users: Sequence[int] | None = None) -> dict[str, Any]:
    """Seq2SeqTrainer with a fixed number of epochs; keeps the lowest-validation-loss checkpoint.

    ``train_tasks`` (the task of each train example) switches to one task per batch (``TaskBlockSampler``);
    ``rec_users`` (a rec window's user, -1 elsewhere) to a fresh draw of each user's windows per epoch
    (``RecWindowSampler``, ``generator.rec_window_pool``).
    """
    from transformers import Seq2SeqTrainer

    class Trainer(Seq2SeqTrainer):
        def _get_train_sampler(self, *args, **kwargs):
            if rec_users is not None:
                lengths = np.diff(train_ds.offsets) if gcfg.length_grouped else None
                return RecWindowSampler(rec_users, gcfg.rec_windows_per_user, seed, lengths=lengths,
                                        batch_size=self.args.per_device_train_batch_size * self.args.world_size)
            if train_tasks is None:
                return super()._get_train_sampler(*args, **kwargs)
            return TaskBlockSampler(train_tasks, self.args.per_device_train_batch_size * self.args.world_size, seed)

        def _issue_warnings_after_load(self, load_result):
            # A checkpoint stores T5's tied embedding once (``shared.weight``), so reloading the best one
            # lists its aliases (``encoder.embed_tokens``, ``decoder.embed_tokens``, ``lm_head``) as missing
            # although they share the loaded tensor. Only those aliases are dropped from the warning.
            missing = [k for k in load_result.missing_keys if k not in tied_aliases(self.model)]
            super()._issue_warnings_after_load(load_result._replace(missing_keys=missing))

    # T5's forward takes **kwargs but averages its loss over the local tokens and ignores num_items_in_batch;
    # the trainer (average_tokens_across_devices) would then multiply that loss by the process count, which
    # scales the logged losses and the gradients (against max_grad_norm) with the number of processes.
    model.accepts_loss_kwargs = False
    trainer = Trainer(model=model, args=training_arguments(gcfg, out_dir, seed), train_dataset=train_ds,
                      eval_dataset=val_ds, processing_class=tokenizer,
                      data_collator=PromptCollator(tokenizer.pad_token_id))
    from jointsid_utils.runtime.trainer_lines import progress_lines

    progress_lines(trainer, "generator")  # bars (if shown) and one line per evaluation, no raw log dicts
    checkpoint = last_complete_checkpoint(out_dir / "checkpoints") if resume else None
    started = time.time()
    result = trainer.train(resume_from_checkpoint=checkpoint)
    return {"train_seconds": round(time.time() - started, 1), "metrics": result.metrics,
            "log_history": list(trainer.state.log_history),
            "world_size": trainer.args.world_size,  # as the trainer saw it: 1 unless gradients were averaged
            "best_checkpoint": trainer.state.best_model_checkpoint, "resumed": checkpoint is not None}
