"""The generator's examples (STUDY.md §2.5): prompts and target items per split, and their torch datasets.

* search = (train query -> item ID), every train query; validation = the validation queries (at most
  ``val_queries``, drawn by the study seed: the same cases for every scheme and training seed).
* rec = sliding windows over each user's *train* history (K items -> the next one), the last
  ``rec_windows_per_user`` windows per user (or the last ``rec_window_pool``, of which ``RecWindowSampler``
  draws ``rec_windows_per_user`` afresh each epoch); validation = every user's validation item.
* test: the sampled test queries, and every user's first test item with all earlier items as history.

Both tasks' train examples form one shuffled stream (mixed batches, as the paper), unless
``TaskBlockSampler`` puts one task in each batch. ``train.user`` names a rec window's user (-1 elsewhere).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from jointsid_utils.config import GeneratorConfig, StudyConfig
from jointsid_utils.data.split import selection_view, validation_queries
from jointsid_utils.errors import StudyInputError
from jointsid_utils.generator.item_positions import ItemGrouping, tokenize_prompts
from jointsid_utils.generator.tokenization import IdScheme, make_id_scheme, rec_prompt, search_prompt
from jointsid_utils.queries.test_cases import search_test_queries
from jointsid_utils.runtime.reproducibility import rng


@dataclass
class Examples:
    """Prompts and targets per split; ``test_rec.history`` holds each rec test case's earlier items."""

    train: pd.DataFrame  # task, prompt, target, user (a rec window's user, else -1)
    validation: pd.DataFrame  # task, prompt, target
    test_search: pd.DataFrame  # case_id, query_id, query, prompt, target
    test_rec: pd.DataFrame  # case_id, user_id, prompt, target, history (all train+validation items)
    stats: dict[str, Any] = field(default_factory=dict)


def build_examples(scheme: IdScheme, interactions: pd.DataFrame, queries: pd.DataFrame, *, history_k: int,
                   rec_windows_per_user: int, val_queries: int | None, search_eval_cases: int | None,
                   seed: int, items: pd.DataFrame | None = None, item_text_examples: int = 0,
                   case_seed: int = 0, rec_window_pool: int = 0) -> Examples:
    """Train, validation and test examples for both tasks (see the module docstring).

    ``seed`` (the training seed) picks the shuffle only; ``case_seed`` (the study seed) picks the validation
    and test query subsamples, so every scheme and training seed chooses and is scored on the same cases
    and paired tests apply.
    """
    check_frames(interactions, queries, scheme.n_items)
    view = selection_view(interactions, queries)  # what training and checkpoint choice may read: no test rows
    search_train, search_val = _search_examples(view.queries, val_queries, case_seed)
    if item_text_examples and items is not None:
        search_train = pd.concat([search_train, _item_text_examples(items, item_text_examples)], ignore_index=True)
    rec_train, rec_val = _rec_train_validation(scheme, view.interactions, history_k,
                                               max(rec_windows_per_user, rec_window_pool))
    test_rec = _rec_test_cases(scheme, interactions, history_k)
    test_search = _search_test_cases(queries, search_eval_cases, case_seed)

    order = rng(seed, "generator", "shuffle").permutation(len(search_train) + len(rec_train))
    train = pd.concat([search_train.assign(user=-1), rec_train], ignore_index=True).iloc[order].reset_index(drop=True)
    validation = pd.concat([search_val, rec_val], ignore_index=True)
    stats = {"train_search": len(search_train), "train_rec": len(rec_train), "val_search": len(search_val),
             "val_rec": len(rec_val), "test_search": len(test_search), "test_rec": len(test_rec)}
    return Examples(train, validation, test_search, test_rec, stats)


def scheme_examples(scheme: IdScheme, items: pd.DataFrame, interactions: pd.DataFrame, queries: pd.DataFrame,
                    gcfg: GeneratorConfig, *, seed: int, case_seed: int) -> Examples:
    """``build_examples`` with the generator config's settings: what a training job uses."""
    if gcfg.rec_window_pool and gcfg.rec_window_pool <= gcfg.rec_windows_per_user:
        raise StudyInputError(f"generator.rec_window_pool {gcfg.rec_window_pool} must exceed rec_windows_per_user "
                              f"{gcfg.rec_windows_per_user} to leave windows to draw from; set it higher, or 0 (off).")
    return build_examples(scheme, interactions, queries, history_k=gcfg.history_k,
                          rec_windows_per_user=gcfg.rec_windows_per_user, val_queries=gcfg.val_queries,
                          search_eval_cases=gcfg.search_eval_cases, seed=seed, items=items,
                          item_text_examples=gcfg.item_text_examples, case_seed=case_seed,
                          rec_window_pool=gcfg.rec_window_pool)


def generator_test_cases(cfg: StudyConfig, items: pd.DataFrame, interactions: pd.DataFrame,
                         queries: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(search, rec) test cases of every scheme's generator: they depend on the data, ``history_k``,
    ``search_eval_cases`` and the study seed only, so baselines are scored on the same cases."""
    one_code_per_item = make_id_scheme("baseline", np.arange(len(items)).reshape(-1, 1))
    ex = build_examples(one_code_per_item, interactions, queries, history_k=cfg.generator.history_k,
                        rec_windows_per_user=1, val_queries=0, search_eval_cases=cfg.generator.search_eval_cases,
                        seed=0, case_seed=cfg.seed)
    return ex.test_search, ex.test_rec


def validation_cases(examples: Examples, task: str) -> pd.DataFrame:
    """The validation examples of ``task`` as decodable cases (case_id, prompt, target)."""
    rows = examples.validation[examples.validation["task"] == task].reset_index(drop=True)
    return pd.DataFrame({"case_id": [f"v{task[0]}{i}" for i in range(len(rows))], "prompt": rows["prompt"],
                         "target": rows["target"].to_numpy()})


def check_frames(interactions: pd.DataFrame, queries: pd.DataFrame, n_items: int) -> None:
    """One sentence for frames without the needed columns or with item ids the codes do not cover."""
    for frame, name, cols in ((interactions, "interactions", ("user_id", "item_id", "split")),
                              (queries, "queries", ("item_id", "query", "split"))):
        missing = [c for c in cols if c not in frame]
        if missing:
            raise StudyInputError(f"The {name} frame lacks columns {missing}; pass the frame from notebook 01.")
        if len(frame) and (frame["item_id"].max() >= n_items or frame["item_id"].min() < 0):
            raise StudyInputError(f"The {name} frame names item ids outside 0..{n_items - 1}; the codes and the "
                                  "data come from different runs, rebuild the IDs for this dataset.")


def _search_frame(queries: pd.Series, targets: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"task": "search", "prompt": [search_prompt(q) for q in queries], "target": targets})


def _search_examples(queries: pd.DataFrame, val_queries: int | None,
                     case_seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every train query as a train example, and the shared validation queries (``validation_queries``) as
    validation examples: one set for every scheme, training seed and stage, never a train query."""
    q_train = queries[(queries["split"] == "train").to_numpy()]
    q_val = validation_queries(queries, val_queries, case_seed)
    return (_search_frame(q_train["query"], q_train["item_id"].to_numpy()),
            _search_frame(q_val["query"], q_val["item_id"].to_numpy()))


def _item_text_examples(items: pd.DataFrame, copies: int) -> pd.DataFrame:
    """DSI-style indexing examples (Tay et al. 2022): each item's title and its text -> its search ID."""
    prompts, targets = [], []
    for row in items.itertuples():
        title = f"{row.title} {int(row.year)}" if "year" in items and pd.notna(row.year) else str(row.title)
        text = str(row.text) if "text" in items else title
        prompts += [search_prompt(title), search_prompt(text)]
        targets += [row.item_id, row.item_id]
    return pd.DataFrame({"task": "search", "prompt": prompts * copies, "target": targets * copies})


def _rec_train_validation(scheme: IdScheme, interactions: pd.DataFrame, history_k: int,
                          windows_per_user: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rec task's train windows and validation examples (from a frame without test rows)."""
    train_rows, val_rows = [], []
    for user, g in interactions.groupby("user_id", sort=True):
        seq, split = g["item_id"].to_numpy(), g["split"].to_numpy()
        train = seq[split == "train"]
        for j in range(max(1, len(train) - windows_per_user), len(train)):
            train_rows.append((rec_prompt(scheme, train[max(0, j - history_k) : j], history_k), train[j], user))
        val = seq[split == "validation"]
        if len(val) and len(train):
            val_rows.append((rec_prompt(scheme, train, history_k), val[0]))
    return (pd.DataFrame(train_rows, columns=["prompt", "target", "user"]).assign(task="rec"),
            pd.DataFrame(val_rows, columns=["prompt", "target"]).assign(task="rec"))


def _rec_test_cases(scheme: IdScheme, interactions: pd.DataFrame, history_k: int) -> pd.DataFrame:
    """Every user's first test item, with all earlier items (train and validation) as history."""
    rows = []
    for user, g in interactions.groupby("user_id", sort=True):
        seq, split = g["item_id"].to_numpy(), g["split"].to_numpy()
        test_pos = np.flatnonzero(split == "test")
        if len(test_pos):
            before = seq[: test_pos[0]]
            rows.append((user, rec_prompt(scheme, before, history_k), seq[test_pos[0]], before))
    test = pd.DataFrame(rows, columns=["user_id", "prompt", "target", "history"])
    test.insert(0, "case_id", [f"u{u}" for u in test["user_id"]])
    return test


def _search_test_cases(queries: pd.DataFrame, n_cases: int | None, case_seed: int) -> pd.DataFrame:
    """The test queries, a seeded subsample of ``n_cases`` when there are more (None = all)."""
    q_test = search_test_queries(queries, n_cases, case_seed)
    qid = q_test["query_id"].to_numpy() if "query_id" in q_test else np.arange(len(q_test))
    return pd.DataFrame({"case_id": [f"q{q}" for q in qid], "query_id": qid, "query": q_test["query"].to_numpy(),
                         "prompt": [search_prompt(q) for q in q_test["query"]], "target": q_test["item_id"].to_numpy()})


# ----------------------------------------------------------------------------- torch datasets

class ExampleDataset(torch.utils.data.Dataset):
    """input_ids and labels per example; a plain torch dataset (the Trainer needs no ``datasets``).

    The prompts live in one flat int64 array with row offsets (one token per position, or per-item slots
    with ``item_positions``), the labels in one (n, L + 1) array: an example is two numpy slices, not a
    Python list the collator turns into tensors token by token."""

    def __init__(self, input_ids: Sequence[Sequence], labels: Sequence[Sequence[int]]):
        lengths = np.fromiter((len(p) for p in input_ids), dtype=np.int64, count=len(input_ids))
        self.offsets = np.concatenate([[0], np.cumsum(lengths)])
        positions = [position for prompt in input_ids for position in prompt]
        self.tokens = np.asarray(positions, dtype=np.int64)
        self.labels = np.asarray(labels, dtype=np.int64)
        if self.labels.ndim != 2 or len(self.labels) != len(lengths):
            raise StudyInputError("Every example needs a label row of the same length (the target's ID tokens "
                                  "and EOS); build the labels from one scheme's item_token_ids.")

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        return {"input_ids": self.tokens[self.offsets[i] : self.offsets[i + 1]], "labels": self.labels[i]}


def encode_examples(frame: pd.DataFrame, tokenizer, label_ids: dict[str, np.ndarray], max_len: int,
                    grouping: ItemGrouping | None = None) -> ExampleDataset:
    """Tokenised prompts (grouped per history item with ``grouping``) and labels (the target item's ID
    tokens, then eos)."""
    eos = tokenizer.eos_token_id
    targets = frame["target"].to_numpy(dtype=np.int64)
    labels = np.empty((len(frame), next(iter(label_ids.values())).shape[1] + 1), dtype=np.int64)
    labels[:, -1] = eos
    for task, rows in frame.groupby("task", sort=False).indices.items():
        labels[rows, :-1] = label_ids[task][targets[rows]]
    return ExampleDataset(cached_prompt_ids(tokenizer, frame["prompt"], max_len, grouping), labels)


# Token ids per prompt, per tokenizer object: the training seeds of one scheme share their prompts (a seed
# only reorders them), so a reused tokenizer (``tokenization.memoized_tokenizer``) tokenises each once.
_prompt_ids: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def cached_prompt_ids(tokenizer, prompts: Sequence[str], max_len: int, grouping: ItemGrouping | None) -> list:
    """``tokenize_prompts``, tokenising only the prompts this tokenizer has not seen with these settings."""
    known = _prompt_ids.setdefault(tokenizer, {}).setdefault((max_len, grouping is not None), {})
    new = list(dict.fromkeys(p for p in prompts if p not in known))
    if new:
        known.update(zip(new, tokenize_prompts(tokenizer, new, max_len, grouping)))
    return [known[p] for p in prompts]


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


class RecWindowSampler(torch.utils.data.Sampler):
    """Each epoch: every example that is no rec window, and a fresh seeded draw of ``per_user`` windows of
    each user's pool (``generator.rec_window_pool``), in a seeded random order or, with ``lengths``, in
    length-grouped batches of ``batch_size`` as the Trainer's ``group_by_length`` forms them. An epoch has
    as many examples as training on the last ``per_user`` windows, so it costs the same."""

    def __init__(self, users: Sequence[int], per_user: int, seed: int, *, lengths: Sequence[int] | None = None,
                 batch_size: int = 1):
        users = np.asarray(users, dtype=np.int64)
        self.fixed = np.flatnonzero(users < 0)
        rec = np.flatnonzero(users >= 0)
        rec = rec[np.argsort(users[rec], kind="stable")]
        self.pools = np.split(rec, np.flatnonzero(np.diff(users[rec])) + 1) if len(rec) else []
        self.per_user, self.seed, self.epoch = per_user, seed, 0
        self.lengths = None if lengths is None else np.asarray(lengths)
        self.batch_size = batch_size
        self._n = len(self.fixed) + sum(min(per_user, len(p)) for p in self.pools)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self._n

    def __iter__(self):
        from transformers.trainer_pt_utils import get_length_grouped_indices

        gen = rng(self.seed, "rec_windows", self.epoch)
        self.epoch += 1
        drawn = [gen.choice(p, size=min(self.per_user, len(p)), replace=False) for p in self.pools]
        chosen = np.concatenate([self.fixed, *drawn]).astype(np.int64)
        if self.lengths is None:
            yield from gen.permutation(chosen).tolist()
            return
        order_seed = torch.Generator().manual_seed(int(gen.integers(2**31)))
        order = get_length_grouped_indices(self.lengths[chosen].tolist(), self.batch_size, generator=order_seed)
        yield from chosen[np.asarray(order, dtype=np.int64)].tolist()
