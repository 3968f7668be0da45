"""A warm start every scheme shares: the generator's T5 pretrained once per training seed on text alone.

    checkpoint = pretrain(gcfg, (items, interactions, queries), seed)   # a stored folder: model + tokenizer

Every from-scratch job used to learn the language of the queries on its own, so most of each job repeated
work that all schemes share. Here one T5 per training seed learns it first, on objectives that name no
semantic ID and read only the train split:

* a train query -> its item's title;
* an item's text -> its title;
* the last ``pretrain_history_k`` titles of a user's train history -> the next title.

Never a query -> an atomic item id: that would teach the model to tell items apart independently of the
IDs and blur the differences between ID schemes that the study measures. The vocabulary is word pieces of
the train queries, titles and item texts, without ID tokens; each scheme's fine-tune appends its ID tokens
(``with_id_tokens``) and starts their embeddings from its items' titles (``model.warm_started_model``).

The checkpoint is a ``pretrain`` stage (``jointsid_utils.stages``) keyed on the settings it depends on, the
train rows it reads, the seed and its code: every scheme of a seed finds the same one, a killed run resumes
from its last Trainer checkpoint (in the entry's scratch), and a job's key hashes its content
(``checkpoint_sha256``), not its path.
"""

from __future__ import annotations

import functools
import hashlib
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from jointsid_utils.cache import run_dir, write_json
from jointsid_utils.config import GeneratorConfig, as_dict, stable_hash
from jointsid_utils.errors import StudyInputError
from jointsid_utils.generator.tokenization import TASK_TOKENS, TASKS, IdScheme, build_tokenizer, search_prompt
from jointsid_utils.runtime.reproducibility import seed_everything, rng
from jointsid_utils.stages import Stage, Workspace, materialize, produce
from jointsid_utils.store import array_sha256

CHECKPOINT = "checkpoint"  # the stage's output: a folder with the model, tokenizer and INFO_FILE
INFO_FILE = "pretrain_info.json"  # examples, times, the loss curve and the content hash
CONTENT_FILES = ("model.safetensors", "config.json", "tokenizer.json")  # what ``checkpoint_sha256`` reads
# The generator settings a pretraining depends on; the rest (epochs, ID options, decoding) only fine-tune.
PRETRAIN_SETTINGS = ("d_model", "d_ff", "num_layers", "num_heads", "batch_size", "lr", "weight_decay",
                     "rec_windows_per_user", "vocab_size", "tokenizer_kind", "max_prompt_tokens", "warmup_steps",
                     "max_grad_norm", "dropout", "precision", "length_grouped", "pretrain_epochs",
                     "pretrain_history_k", "pretrain_max_title_tokens", "pretrain_holdout")
WARM_START_SETTINGS = ("warm_start", "pretrain_epochs", "pretrain_history_k", "pretrain_max_title_tokens",
                       "pretrain_holdout", "id_init_noise")
HISTORY_SEPARATOR = " ; "
# A scheme with no ID levels: ``build_tokenizer`` then gives the word vocabulary with the task tokens only.
WORDS_ONLY = IdScheme("words", {t: np.zeros((0, 0), dtype=np.int64) for t in TASKS}, {t: () for t in TASKS})

Data = tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]  # (items, interactions, queries), notebook 01's frames


def check_warm_start(gcfg: GeneratorConfig) -> None:
    """Settings a warm start cannot run with fail before any training."""
    if gcfg.base_model is not None:
        raise StudyInputError(f"generator.warm_start pretrains a T5 from scratch, but generator.base_model is "
                              f"{gcfg.base_model!r}, which is already pretrained; set generator.warm_start false.")
    if gcfg.pretrain_epochs <= 0 or gcfg.pretrain_history_k < 1 or gcfg.pretrain_max_title_tokens < 2:
        raise StudyInputError("generator.pretrain_epochs must be > 0, pretrain_history_k >= 1 and "
                              "pretrain_max_title_tokens >= 2 (a title token and EOS); e.g. 4, 3 and 24.")
    if not 0 < gcfg.pretrain_holdout < 0.5 or gcfg.id_init_noise < 0:
        raise StudyInputError("generator.pretrain_holdout must lie in (0, 0.5) and generator.id_init_noise be "
                              ">= 0; e.g. 0.02 and 0.1.")


def train_rows(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """The ``split == "train"`` rows of ``frame``: all a pretraining may read of the interactions or queries."""
    if "split" not in frame.columns:
        raise StudyInputError(f"The {name} frame has no 'split' column, so its train rows cannot be told apart; "
                              "pass notebook 01's frame.")
    return frame[(frame["split"].astype(str) == "train").to_numpy()].reset_index(drop=True)


def item_titles(items: pd.DataFrame) -> pd.Series:
    """Each item's title, indexed by item id."""
    return items.set_index("item_id")["title"].astype(str)


def pretraining_examples(data: Data, gcfg: GeneratorConfig) -> pd.DataFrame:
    """(task, prompt, target) rows, every target a title: train queries, item texts and train histories.

    Rows are in a fixed order (the caller shuffles by seed); validation and test rows are never read."""
    items, interactions, queries = data
    titles = item_titles(items)
    q = train_rows(queries, "queries")
    rows = [pd.DataFrame({"task": "query_title", "prompt": [search_prompt(x) for x in q["query"]],
                          "target": titles.loc[q["item_id"]].to_numpy()})]
    if "text" in items:
        rows.append(pd.DataFrame({"task": "text_title", "prompt": [search_prompt(str(t)) for t in items["text"]],
                                  "target": items["title"].astype(str).to_numpy()}))
    history = []
    for _, g in train_rows(interactions, "interactions").groupby("user_id", sort=True):
        seq = g["item_id"].to_numpy()
        for j in range(max(1, len(seq) - gcfg.rec_windows_per_user), len(seq)):
            past = titles.loc[seq[max(0, j - gcfg.pretrain_history_k) : j]]
            history.append((f"{TASK_TOKENS['rec']} {HISTORY_SEPARATOR.join(past)}", titles.loc[seq[j]]))
    rows.append(pd.DataFrame(history, columns=["prompt", "target"]).assign(task="history_title"))
    return pd.concat(rows, ignore_index=True)[["task", "prompt", "target"]]


def shared_tokenizer(data: Data, gcfg: GeneratorConfig):
    """The word-piece vocabulary of every warm-started scheme: train queries, titles and item texts, with the
    task tokens and no ID tokens (each scheme appends its own, ``with_id_tokens``)."""
    items, _, queries = data
    corpus = list(train_rows(queries, "queries")["query"]) + list(items["title"].astype(str))
    corpus += list(items["text"].astype(str)) if "text" in items else []
    return build_tokenizer(corpus, WORDS_ONLY, vocab_size=gcfg.vocab_size, kind=gcfg.tokenizer_kind)


def with_id_tokens(tokenizer, scheme: IdScheme):
    """``tokenizer`` with the scheme's ID tokens appended after the shared vocabulary (one token each)."""
    tokenizer.add_tokens(scheme.all_tokens(), special_tokens=True)
    return tokenizer


def pretrain_stage(gcfg: GeneratorConfig, data: Data, seed: int) -> Stage:
    """The ``pretrain`` stage of training ``seed``: the settings (``PRETRAIN_SETTINGS``), the train rows it
    reads and the seed (never a scheme, so all share it); the stage adds the code its builder reaches."""
    from jointsid_utils.runtime.precision import resolve_precision

    items, interactions, queries = data
    settings = {k: v for k, v in as_dict(gcfg).items() if k in PRETRAIN_SETTINGS}
    settings["precision"] = resolve_precision(gcfg.precision)
    read = ((items, ("item_id", "title", "text")), (train_rows(interactions, "interactions"), ("user_id", "item_id")),
            (train_rows(queries, "queries"), ("item_id", "query")))
    hashes = [array_sha256(pd.util.hash_pandas_object(f[[c for c in cols if c in f]], index=False).to_numpy())
              for f, cols in read]
    return Stage("pretrain", functools.partial(_train, gcfg, data, seed), outputs=(CHECKPOINT,), config=settings,
                 inputs={"train_rows": stable_hash(hashes)}, seed=int(seed))


def pretrain_key(gcfg: GeneratorConfig, data: Data, seed: int) -> str:
    """The ``pretrain`` stage's key: what names its store entry."""
    return pretrain_stage(gcfg, data, seed).key


def checkpoint_sha256(checkpoint: Path | str) -> str:
    """sha256 of a checkpoint's weights, config and tokenizer: what a warm-started job's key names."""
    digest = hashlib.sha256()
    for name in CONTENT_FILES:
        path = Path(checkpoint) / name
        if not path.exists():
            raise StudyInputError(f"{path} is missing, so {checkpoint} is not a complete pretrained checkpoint; "
                                  "rerun the pretraining (generator.pretrain.pretrain).")
        digest.update(name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def pretrain(gcfg: GeneratorConfig, data: Data, seed: int, profile: str | None = None) -> Path:
    """The pretrained checkpoint of training ``seed`` (model, tokenizer, ``pretrain_info.json``): the
    ``pretrain`` stage's, trained now when it is not published (by every ``torchrun`` process together).
    With ``profile`` it is linked at ``runs/<folder>/pretrain/seed<k>``, which lists it for ``store prune``."""
    check_warm_start(gcfg)
    stage = pretrain_stage(gcfg, data, seed)
    if profile is None:
        return materialize(stage, together=True) / CHECKPOINT
    return produce(stage, {CHECKPOINT: run_dir(profile, "pretrain") / f"seed{seed}"}, together=True) / CHECKPOINT


def _train(gcfg: GeneratorConfig, data: Data, seed: int, ws: Workspace) -> None:
    """The stage's builder: train the text-only T5 (checkpoints in ``ws.scratch``) into ``ws.out``."""
    from jointsid_utils.generator.model import build_model
    from jointsid_utils.generator.training import checkpoint_dir, train_generator
    from jointsid_utils.runtime import distributed

    seed_everything(seed)
    checkpoint_dir(ws.scratch)
    tokenizer = shared_tokenizer(data, gcfg)
    examples = pretraining_examples(data, gcfg)
    order = rng(seed, "pretrain", "holdout").permutation(len(examples))
    n_val = max(1, int(round(gcfg.pretrain_holdout * len(examples))))
    train, val = examples.iloc[order[n_val:]], examples.iloc[order[:n_val]]
    run_cfg = replace(gcfg, epochs=gcfg.pretrain_epochs, id_output_only=False, rec_item_positions=False,
                      task_batching="mixed")
    model = build_model(tokenizer, run_cfg)
    started = time.time()
    run = train_generator(model, tokenizer, TextExamples(train, tokenizer, gcfg), TextExamples(val, tokenizer, gcfg),
                          run_cfg, ws.scratch, seed)
    if not distributed.is_main():
        return
    out = ws.out / CHECKPOINT
    info = {"key": ws.key, "seed": int(seed), "examples": examples["task"].value_counts().to_dict(),
            "train_examples": len(train), "holdout_examples": len(val), "vocab_size": len(tokenizer),
            "pretrain_seconds": round(time.time() - started, 1), **run}
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    info["content_sha256"] = checkpoint_sha256(out)
    write_json(out / INFO_FILE, info)


class TextExamples:
    """Tokenised (prompt, title) pairs as the Trainer's dataset: ``input_ids`` and ``labels`` (title + EOS)."""

    def __init__(self, frame: pd.DataFrame, tokenizer, gcfg: GeneratorConfig):
        self.input_ids = tokenizer(list(frame["prompt"]), truncation=True, max_length=gcfg.max_prompt_tokens)["input_ids"]
        self.labels = tokenizer(list(frame["target"]), truncation=True,
                                max_length=gcfg.pretrain_max_title_tokens)["input_ids"]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        return {"input_ids": self.input_ids[i], "labels": self.labels[i]}
