"""The joint search + recommendation generator: a T5 over semantic IDs (STUDY.md §2.5).

Steps, as ``train_and_predict`` runs them:
1. IDs and tokenizer: one token per (level, code), task prefixes (``tokenization``).
2. Examples: search = (train query -> item ID); rec = sliding windows over each user's *train*
   history (K items -> the next one), the last ``rec_windows_per_user`` windows per user; one shuffled
   stream (mixed batches, as the paper). Validation: the validation item of every user plus a few
   held-out train queries; the checkpoint with the lowest validation loss is kept.
3. Model: a small T5 from scratch (CPU profiles) or ``from_pretrained(base_model)`` (``paper``), its
   embeddings resized for the new tokens.
4. Training: HF ``Seq2SeqTrainer`` (so ``accelerate launch`` / ``torchrun`` run it unchanged), a fixed
   number of epochs, bf16 where CUDA has it, resumable from the last checkpoint.
5. Prediction: trie-constrained beam search (``decoding``), top 30 distinct items per test case;
   rec under both protocols ("all" and "exclude_history", FEASIBILITY.md).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from jointsid_utils.cache import atomic_path, last_complete_checkpoint, run_dir, write_json
from jointsid_utils import distributed
from jointsid_utils.config import GeneratorConfig, StudyConfig, as_dict, stable_hash
from jointsid_utils.generator.decoding import IdTrie, constrained_beam_search
from jointsid_utils.errors import StudyInputError
from jointsid_utils.reproducibility import rng, seed_everything
from jointsid_utils.generator.tokenization import (EOS, IdScheme, build_tokenizer, check_tokenizer, item_token_ids,
                                         load_base_tokenizer, make_id_scheme, rec_prompt, search_prompt)

log = logging.getLogger(__name__)

# Generator settings a caller may override per run (``train_and_predict(..., search_eval_cases=500)``).
OPTIONS = ("vocab_size", "tokenizer_kind", "max_prompt_tokens", "warmup_steps", "max_grad_norm", "val_queries",
           "search_eval_cases", "decoding", "decode_batch_size", "dropout", "item_text_examples", "task_batching")
DIVERSE = {"beam_size": 60, "num_beam_groups": 30, "diversity_penalty": 0.25}  # the paper's decoding


def _opt(gcfg: GeneratorConfig, name: str, overrides: dict[str, Any]) -> Any:
    if name in overrides:
        return overrides[name]
    return getattr(gcfg, name)


# ============================================================================ examples

@dataclass
class Examples:
    """Prompts and targets per split; ``exclude`` holds each rec test case's history (all its items)."""

    train: pd.DataFrame  # task, prompt, target
    validation: pd.DataFrame  # task, prompt, target
    test_search: pd.DataFrame  # case_id, query_id, query, prompt, target
    test_rec: pd.DataFrame  # case_id, user_id, prompt, target, history (all train+validation items)
    stats: dict[str, Any] = field(default_factory=dict)


def build_examples(scheme: IdScheme, interactions: pd.DataFrame, queries: pd.DataFrame, *, history_k: int,
                   rec_windows_per_user: int, val_queries: int, search_eval_cases: int | None,
                   seed: int, items: pd.DataFrame | None = None, item_text_examples: int = 0,
                   case_seed: int = 0) -> Examples:
    """Train, validation and test examples for both tasks (see the module docstring).

    ``seed`` (the training seed) picks the held-out validation queries and the shuffle; ``case_seed`` (the
    study seed) picks the test-query subsample, so every scheme and training seed is scored on the same
    cases and paired tests apply.
    """
    _check_frames(interactions, queries, scheme.n_items)
    q_train = queries[queries["split"] == "train"]
    held = rng(seed, "generator", "val_queries").permutation(len(q_train))[: min(val_queries, len(q_train) // 10)]
    is_held = np.zeros(len(q_train), dtype=bool)
    is_held[held] = True
    search_train = pd.DataFrame({"task": "search", "prompt": [search_prompt(q) for q in q_train["query"][~is_held]],
                                 "target": q_train["item_id"].to_numpy()[~is_held]})
    search_val = pd.DataFrame({"task": "search", "prompt": [search_prompt(q) for q in q_train["query"][is_held]],
                               "target": q_train["item_id"].to_numpy()[is_held]})

    if item_text_examples and items is not None:
        prompts, targets = [], []
        for row in items.itertuples():
            title = f"{row.title} {int(row.year)}" if "year" in items and pd.notna(row.year) else str(row.title)
            text = str(row.text) if "text" in items else title
            prompts += [search_prompt(title), search_prompt(text)]
            targets += [row.item_id, row.item_id]
        index = pd.DataFrame({"task": "search", "prompt": prompts * item_text_examples,
                              "target": targets * item_text_examples})
        search_train = pd.concat([search_train, index], ignore_index=True)

    rec_train, rec_val, rec_test = [], [], []
    for user, g in interactions.groupby("user_id", sort=True):
        items, split = g["item_id"].to_numpy(), g["split"].to_numpy()
        train = items[split == "train"]
        for j in range(max(1, len(train) - rec_windows_per_user), len(train)):
            rec_train.append((rec_prompt(scheme, train[max(0, j - history_k) : j], history_k), train[j]))
        val = items[split == "validation"]
        if len(val) and len(train):
            rec_val.append((rec_prompt(scheme, train, history_k), val[0]))
        test_pos = np.flatnonzero(split == "test")
        if len(test_pos):
            before = items[: test_pos[0]]
            rec_test.append((user, rec_prompt(scheme, before, history_k), items[test_pos[0]], before))
    rec_train_df = pd.DataFrame(rec_train, columns=["prompt", "target"]).assign(task="rec")
    rec_val_df = pd.DataFrame(rec_val, columns=["prompt", "target"]).assign(task="rec")

    q_test = queries[queries["split"] == "test"]
    if search_eval_cases is not None and search_eval_cases < len(q_test):
        pick = np.sort(rng(case_seed, "generator", "search_eval_cases").choice(len(q_test), search_eval_cases, replace=False))
        q_test = q_test.iloc[pick]
    qid = q_test["query_id"].to_numpy() if "query_id" in q_test else np.arange(len(q_test))
    test_search = pd.DataFrame({"case_id": [f"q{q}" for q in qid], "query_id": qid, "query": q_test["query"].to_numpy(),
                                "prompt": [search_prompt(q) for q in q_test["query"]],
                                "target": q_test["item_id"].to_numpy()})
    test_rec = pd.DataFrame(rec_test, columns=["user_id", "prompt", "target", "history"])
    test_rec.insert(0, "case_id", [f"u{u}" for u in test_rec["user_id"]])

    order = rng(seed, "generator", "shuffle").permutation(len(search_train) + len(rec_train_df))
    train = pd.concat([search_train, rec_train_df], ignore_index=True).iloc[order].reset_index(drop=True)
    validation = pd.concat([search_val, rec_val_df], ignore_index=True)
    stats = {"train_search": len(search_train), "train_rec": len(rec_train_df), "val_search": len(search_val),
             "val_rec": len(rec_val_df), "test_search": len(test_search), "test_rec": len(test_rec)}
    return Examples(train, validation, test_search, test_rec, stats)


def _check_frames(interactions: pd.DataFrame, queries: pd.DataFrame, n_items: int) -> None:
    for frame, name, cols in ((interactions, "interactions", ("user_id", "item_id", "split")),
                              (queries, "queries", ("item_id", "query", "split"))):
        missing = [c for c in cols if c not in frame]
        if missing:
            raise StudyInputError(f"The {name} frame lacks columns {missing}; pass the frame from notebook 01.")
        if len(frame) and (frame["item_id"].max() >= n_items or frame["item_id"].min() < 0):
            raise StudyInputError(f"The {name} frame names item ids outside 0..{n_items - 1}; the codes and the "
                                  "data come from different runs, rebuild the IDs for this dataset.")


# ============================================================================ model and data

def make_tokenizer(scheme: IdScheme, items: pd.DataFrame, queries: pd.DataFrame, gcfg: GeneratorConfig,
                   **overrides: Any):
    """From-scratch profiles: a small word-piece vocabulary on train queries + titles; ``paper``: the base one."""
    if gcfg.base_model is not None:
        return load_base_tokenizer(gcfg.base_model, scheme)
    corpus = list(queries.loc[queries["split"] == "train", "query"]) + list(items["title"].astype(str))
    return build_tokenizer(corpus, scheme, vocab_size=_opt(gcfg, "vocab_size", overrides),
                           kind=_opt(gcfg, "tokenizer_kind", overrides))


def build_model(tokenizer, gcfg: GeneratorConfig, *, dropout: float = 0.1):
    """A small T5 from scratch, or ``from_pretrained(base_model)`` with embeddings resized for the new tokens."""
    from transformers import T5Config, T5ForConditionalGeneration

    if gcfg.base_model is not None:
        model = T5ForConditionalGeneration.from_pretrained(gcfg.base_model)
        model.resize_token_embeddings(len(tokenizer))
        return model
    if gcfg.d_model % gcfg.num_heads:
        raise StudyInputError(f"generator.d_model {gcfg.d_model} is not divisible by generator.num_heads "
                              f"{gcfg.num_heads}; pick sizes that divide.")
    config = T5Config(vocab_size=len(tokenizer), d_model=gcfg.d_model, d_ff=gcfg.d_ff, d_kv=gcfg.d_model // gcfg.num_heads,
                      num_layers=gcfg.num_layers, num_decoder_layers=gcfg.num_layers, num_heads=gcfg.num_heads,
                      dropout_rate=dropout, feed_forward_proj="relu", pad_token_id=tokenizer.pad_token_id,
                      eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.pad_token_id)
    return T5ForConditionalGeneration(config)


class ExampleDataset(torch.utils.data.Dataset):
    """input_ids and labels per example; a plain torch dataset (the Trainer needs no ``datasets``)."""

    def __init__(self, input_ids: list[list[int]], labels: list[list[int]]):
        self.input_ids, self.labels = input_ids, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        return {"input_ids": self.input_ids[i], "labels": self.labels[i]}


def encode_examples(frame: pd.DataFrame, tokenizer, label_ids: dict[str, np.ndarray], max_len: int) -> ExampleDataset:
    """Tokenised prompts and labels (the target item's ID tokens, then eos)."""
    enc = tokenizer(list(frame["prompt"]), truncation=True, max_length=max_len)
    eos = tokenizer.eos_token_id
    labels = [[int(x) for x in label_ids[t][i]] + [eos] for t, i in zip(frame["task"], frame["target"])]
    return ExampleDataset(enc["input_ids"], labels)


def _pad_prompts(prompts: Sequence[str], tokenizer, max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    enc = tokenizer(list(prompts), truncation=True, max_length=max_len, padding=True, return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"]


# ============================================================================ training

class TaskBlockSampler(torch.utils.data.Sampler):
    """Indices in blocks of exactly ``block`` examples of one task (a DataLoader with that batch size then
    gets one task per batch), blocks in a seeded random order, reshuffled per pass. A task's last block is
    filled up with its first examples of the pass, so blocks never go out of step with the batches."""

    def __init__(self, tasks: Sequence[str], block: int, seed: int):
        self.tasks, self.block, self.seed, self.epoch = np.asarray(tasks), block, seed, 0
        self._n = sum(-(-int((self.tasks == t).sum()) // block) * block for t in np.unique(self.tasks))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self._n

    def __iter__(self):
        gen = rng(self.seed, "task_blocks", self.epoch)
        self.epoch += 1
        blocks = []
        for task in np.unique(self.tasks):
            idx = gen.permutation(np.flatnonzero(self.tasks == task))
            idx = np.resize(idx, -(-len(idx) // self.block) * self.block)  # wrap around to full blocks
            blocks += list(idx.reshape(-1, self.block))
        for b in gen.permutation(len(blocks)):
            yield from blocks[b].tolist()


def train_generator(model, tokenizer, train_ds, val_ds, gcfg: GeneratorConfig, out_dir: Path, seed: int, *,
                    warmup_steps: int, max_grad_norm: float, resume: bool = True,
                    train_tasks: Sequence[str] | None = None) -> dict[str, Any]:
    """Seq2SeqTrainer with a fixed number of epochs; keeps the lowest-validation-loss checkpoint.

    ``train_tasks`` (the task of each train example) switches to one task per batch (``TaskBlockSampler``).
    """
    from transformers import DataCollatorForSeq2Seq, Seq2SeqTrainer, Seq2SeqTrainingArguments

    class Trainer(Seq2SeqTrainer):
        def _get_train_sampler(self, *args, **kwargs):
            if train_tasks is None:
                return super()._get_train_sampler(*args, **kwargs)
            return TaskBlockSampler(train_tasks, self.args.per_device_train_batch_size * self.args.world_size, seed)

    world = distributed.world_size()
    cuda = torch.cuda.is_available()
    args = Seq2SeqTrainingArguments(
        output_dir=str(out_dir / "checkpoints"), per_device_train_batch_size=max(1, gcfg.batch_size // world),
        per_device_eval_batch_size=256, learning_rate=gcfg.lr, weight_decay=gcfg.weight_decay,
        num_train_epochs=gcfg.epochs, warmup_steps=warmup_steps, lr_scheduler_type="cosine",
        max_grad_norm=max_grad_norm, eval_strategy="epoch", save_strategy="epoch", save_total_limit=2,
        load_best_model_at_end=True, metric_for_best_model="eval_loss", greater_is_better=False,
        logging_steps=50, seed=seed, data_seed=seed, bf16=bool(cuda and torch.cuda.is_bf16_supported()),
        report_to="none", dataloader_num_workers=0, dataloader_pin_memory=cuda, disable_tqdm=False, save_only_model=False,
        # Without use_cpu, accelerate treats CPU processes under torchrun as separate single-process runs
        # (DistributedType.NO): each trained the whole model alone and they raced on the checkpoints.
        use_cpu=not cuda,
    )
    # T5's forward takes **kwargs but averages its loss over the local tokens and ignores num_items_in_batch;
    # the trainer (average_tokens_across_devices) would then multiply that loss by the process count, which
    # doubled the logged train and eval losses on 2 processes and scaled the gradients against max_grad_norm.
    model.accepts_loss_kwargs = False
    trainer = Trainer(model=model, args=args, train_dataset=train_ds, eval_dataset=val_ds,
                             data_collator=DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100),
                             processing_class=tokenizer)
    checkpoint = last_complete_checkpoint(out_dir / "checkpoints") if resume else None
    has_ckpt = checkpoint is not None
    started = time.time()
    result = trainer.train(resume_from_checkpoint=checkpoint)
    history = [h for h in trainer.state.log_history]
    return {"train_seconds": round(time.time() - started, 1), "metrics": result.metrics, "log_history": history,
            "world_size": trainer.args.world_size,  # as the trainer saw it: 1 unless gradients were averaged
            "best_checkpoint": trainer.state.best_model_checkpoint, "resumed": has_ckpt}


def model_dir(profile: str, scheme_name: str, seed: int) -> Path:
    """``runs/<profile>/models/generator/<scheme>__seed<k>/``."""
    return run_dir(profile, "models", "generator", f"{scheme_name}__seed{seed}")


# ============================================================================ prediction

def predict(model, tokenizer, scheme: IdScheme, examples: Examples, gcfg: GeneratorConfig, *,
            decoding: str = "beam", max_len: int = 64, batch_size: int = 64) -> pd.DataFrame:
    """Ranked lists for the test cases: search, rec (protocol "all") and rec (protocol "exclude_history")."""
    if decoding not in ("beam", "diverse"):
        raise StudyInputError(f"Unknown decoding {decoding!r}; choose 'beam' or 'diverse'.")
    search_kw = (dict(DIVERSE) if decoding == "diverse" else {"beam_size": gcfg.beam_size})
    frames = []
    for task, cases in (("search", examples.test_search), ("rec", examples.test_rec)):
        trie = IdTrie(item_token_ids(tokenizer, scheme, task), eos_token_id=tokenizer.eos_token_id,
                      pad_token_id=tokenizer.pad_token_id)
        ids, am = _pad_prompts(cases["prompt"], tokenizer, max_len)
        protocols = [("all", None)] if task == "search" else [("all", None), ("exclude_history", list(cases["history"]))]
        for protocol, exclude in protocols:
            started = time.time()
            items, scores = constrained_beam_search(model, ids, am, trie, top_k=gcfg.top_k, exclude=exclude,
                                                    batch_size=batch_size, **search_kw)
            seconds = time.time() - started
            keep = [c for c in ("case_id", "query_id", "query", "user_id") if c in cases]
            frame = cases[keep].copy()
            frame["task"], frame["target"], frame["protocol"], frame["decoding"] = task, cases["target"].to_numpy(), protocol, decoding
            frame["ranked"] = [row[row >= 0].tolist() for row in items]
            frame["scores"] = [row[np.isfinite(row)].tolist() for row in scores]
            frame.attrs[f"{task}/{protocol}_decode_seconds"] = seconds
            log.info("decoded %d %s cases (%s) in %.1f s", len(frame), task, protocol, seconds)
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def train_and_predict(scheme_name: str, codes: np.ndarray | Sequence[np.ndarray], items: pd.DataFrame,
                      interactions: pd.DataFrame, queries: pd.DataFrame, cfg: StudyConfig | GeneratorConfig,
                      seed: int, *, profile: str | None = None, threads: int | None = None,
                      retrain: bool = False, **options: Any) -> pd.DataFrame | None:
    """Train (or reload) the scheme's generator and return the ranked top-30 lists of every test case.

    Under ``torchrun`` every process trains its shard and only the main one decodes (the others get None).

    ``options`` override the settings in ``OPTIONS`` (e.g. ``search_eval_cases=500``,
    ``decoding="diverse"``). The trained model, tokenizer and a ``train_info.json`` (examples, times,
    loss curve) are saved under ``runs/<profile>/models/generator/<scheme>__seed<k>/``; an existing model
    trained with the same inputs and settings is reloaded instead of retrained.
    """
    from transformers import AutoTokenizer, T5ForConditionalGeneration

    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise StudyInputError(f"Unknown generator option(s) {sorted(unknown)}; valid: {', '.join(OPTIONS)}.")
    gcfg = cfg.generator if isinstance(cfg, StudyConfig) else cfg
    if _opt(gcfg, "task_batching", options) not in ("mixed", "per_task"):
        raise StudyInputError(f"task_batching {_opt(gcfg, 'task_batching', options)!r} is not 'mixed' or 'per_task'.")
    profile = profile or (cfg.name if isinstance(cfg, StudyConfig) else "default")
    if threads is not None:
        torch.set_num_threads(threads)
    seed_everything(seed)
    # 1. IDs, examples, tokenizer
    scheme = make_id_scheme(scheme_name, codes)
    examples = build_examples(scheme, interactions, queries, history_k=gcfg.history_k,
                              rec_windows_per_user=gcfg.rec_windows_per_user,
                              val_queries=_opt(gcfg, "val_queries", options),
                              search_eval_cases=_opt(gcfg, "search_eval_cases", options), seed=seed,
                              items=items, item_text_examples=_opt(gcfg, "item_text_examples", options),
                              case_seed=cfg.seed if isinstance(cfg, StudyConfig) else 0)
    out = model_dir(profile, scheme_name, seed)
    key = stable_hash({"generator": as_dict(gcfg), "options": {k: _opt(gcfg, k, options) for k in OPTIONS
                                                                 if k not in ("decoding", "search_eval_cases", "decode_batch_size")},
                       "codes": [stable_hash(np.ascontiguousarray(c).tobytes().hex()) for c in scheme.codes.values()],
                       "train": stable_hash(pd.util.hash_pandas_object(examples.train).sum()), "seed": seed})
    info_path = out / "train_info.json"
    max_len = _opt(gcfg, "max_prompt_tokens", options)
    if not retrain and info_path.exists() and json.loads(info_path.read_text()).get("key") == key:
        tokenizer = AutoTokenizer.from_pretrained(out)
        info = json.loads(info_path.read_text())
    else:
        # checkpoints of a run with other inputs or settings are not resumed
        ckpt_key = out / "checkpoints" / "key.txt"
        if distributed.is_main():  # under torchrun one process resets the folder while the others wait
            if ckpt_key.parent.exists() and (not ckpt_key.exists() or ckpt_key.read_text() != key or retrain):
                import shutil
                shutil.rmtree(ckpt_key.parent)
            ckpt_key.parent.mkdir(parents=True, exist_ok=True)
            ckpt_key.write_text(key)
        distributed.barrier()
        # A resumed run keeps the tokenizer its checkpoint was trained with (a safeguard: the vocabulary is
        # built deterministically, but a checkpoint from an older version of this code may differ).
        checkpoint = last_complete_checkpoint(ckpt_key.parent)
        tokenizer = (AutoTokenizer.from_pretrained(checkpoint) if checkpoint is not None
                     else make_tokenizer(scheme, items, queries, gcfg, **options))
        check_tokenizer(tokenizer, scheme)
        labels = {t: item_token_ids(tokenizer, scheme, t) for t in ("search", "rec")}
        train_ds = encode_examples(examples.train, tokenizer, labels, max_len)
        val_ds = encode_examples(examples.validation, tokenizer, labels, max_len)
        # 2. model, 3. training
        model = build_model(tokenizer, gcfg, dropout=_opt(gcfg, "dropout", options))
        run = train_generator(model, tokenizer, train_ds, val_ds, gcfg, out, seed,
                              warmup_steps=_opt(gcfg, "warmup_steps", options),
                              max_grad_norm=_opt(gcfg, "max_grad_norm", options),
                              train_tasks=list(examples.train["task"])
                              if _opt(gcfg, "task_batching", options) == "per_task" else None)
        info = {"key": key, "scheme": scheme_name, "seed": seed, "generator": as_dict(gcfg),
                "options": {k: _opt(gcfg, k, options) for k in OPTIONS}, "examples": examples.stats,
                "vocab_size": len(tokenizer), "parameters": sum(p.numel() for p in model.parameters()),
                **run}
        if distributed.is_main():
            info_path.unlink(missing_ok=True)  # train_info.json is written last: it marks a complete model
            model.save_pretrained(out)
            tokenizer.save_pretrained(out)
            write_json(info_path, info)
        distributed.barrier()
    if not distributed.is_main():
        return None  # the main process decodes; the others go on to the next job's training
    # Always decode with the saved model (on the GPU when there is one), so a first run and a rerun agree.
    # Measured on an H200 with the best checkpoint not the last: the trainer's in-memory model after
    # load_best_model_at_end (which reported the tied embeddings as missing keys) scored up to 0.04 apart
    # from the saved one, and 26 of 64 ranked lists differed.
    model = T5ForConditionalGeneration.from_pretrained(out).to("cuda" if torch.cuda.is_available() else "cpu")
    # 4. prediction
    started = time.time()
    preds = predict(model, tokenizer, scheme, examples, gcfg, decoding=_opt(gcfg, "decoding", options),
                    max_len=max_len, batch_size=_opt(gcfg, "decode_batch_size", options))
    preds["seed"] = seed
    preds.attrs["train_info"] = {k: v for k, v in info.items() if k != "log_history"}
    preds.attrs["decode_seconds"] = round(time.time() - started, 1)
    return preds
