"""SASRec (Kang & McAuley 2018): the tuned sequential recommender a practitioner would deploy instead of a
joint generator, scored on the generator's own rec test cases.

Written here on torch because neither maintained library runs on the project's stack: RecTools requires
numpy<2 and pandas<3 on Python 3.11, and RecBole's ``Config`` sets ``np.float = np.float_``, gone in numpy 2.
It is the paper's model: causal self-attention blocks over learned positions, the item embedding shared
as the output layer, trained on every position of each user's sequence. The loss is full softmax
cross-entropy (Klenitskiy & Vasilev 2023: it beats the paper's loss by a wide margin) or the paper's
binary cross-entropy with one sampled negative per position; validation chooses between them.

Choices read train and validation rows only: the grid trains on train histories and scores each user's
validation item. The chosen setting is retrained on the same train histories (``FINAL_FIT_SPLITS``) and
scores the test item from the train + validation history. It never learns a validation target, as the
generator never does: SASRec trained on the validation transition would learn each user's step just before
the test item, which the generator only sees as input (docs/DECISIONS.md, "SASRec baseline").
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from jointsid_utils.config import BaselineConfig
from jointsid_utils.embeddings.inputs import histories, targets
from jointsid_utils.embeddings.retrieval import recall_at_k, top_k_of_scores
from jointsid_utils.errors import StudyInputError
from jointsid_utils.evaluation.baselines import _with_protocols
from jointsid_utils.metrics import recall_column
from jointsid_utils.runtime.reproducibility import rng

LOSSES = ("ce", "bce")
FINAL_FIT_SPLITS = ("train",)  # what the test model learns from: the generator's training targets, no more
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SasrecSetting:
    """One point of the validation grid; the fixed sizes (heads, length, dropout, lr) come from the config."""

    dim: int
    blocks: int
    epochs: int
    loss: str

    def text(self) -> str:
        return f"dim={self.dim}, blocks={self.blocks}, epochs={self.epochs}, loss={self.loss}"


class Block(nn.Module):
    """One self-attention block as the paper's code: the query is layer-normed and added back, then a
    point-wise feed-forward with its own residual."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.attn_norm, self.ffn_norm = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(dim, dim), nn.Dropout(dropout), nn.ReLU(), nn.Linear(dim, dim),
                                 nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, causal: torch.Tensor) -> torch.Tensor:
        q = self.attn_norm(x)
        x = q + self.attn(q, x, x, attn_mask=causal, need_weights=False)[0]
        x = self.ffn_norm(x)
        return x + self.ffn(x)


class SASRec(nn.Module):
    """Items are ids + 1 (0 pads, sequences are left-padded so the last position is the latest item)."""

    def __init__(self, n_items: int, dim: int, blocks: int, heads: int, max_len: int, dropout: float):
        super().__init__()
        self.dim = dim
        self.items = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.positions = nn.Embedding(max_len, dim)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(dim, heads, dropout) for _ in range(blocks))
        self.norm = nn.LayerNorm(dim)

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        """Hidden states (batch, length, dim) of left-padded sequences (batch, length)."""
        length = seq.shape[1]
        keep = (seq > 0).unsqueeze(-1).float()
        x = self.items(seq) * self.dim ** 0.5 + self.positions.weight[-length:][None]
        x = self.drop(x) * keep
        causal = torch.triu(torch.ones(length, length, dtype=torch.bool), diagonal=1)
        for block in self.blocks:
            x = block(x, causal) * keep
        return self.norm(x)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Scores of every item (column j = item id j; the pad row left out) through the shared item embedding."""
        return hidden @ self.items.weight[1:].T


def _left_pad(seqs: Sequence[np.ndarray], length: int) -> torch.Tensor:
    out = np.zeros((len(seqs), length), dtype=np.int64)
    for row, s in enumerate(seqs):
        s = np.asarray(s, dtype=np.int64)[-length:] + 1
        if len(s):
            out[row, -len(s):] = s
    return torch.from_numpy(out)


def _negatives(inputs: torch.Tensor, targets_: torch.Tensor, n_items: int, gen: np.random.Generator) -> torch.Tensor:
    """One random item per position that is not in the user's sequence (the paper's sampler)."""
    seen = torch.zeros(len(inputs), n_items + 1, dtype=torch.bool)
    seen.scatter_(1, inputs, True)
    seen.scatter_(1, targets_, True)
    neg = torch.from_numpy(gen.integers(1, n_items + 1, size=targets_.shape))
    for _ in range(20):  # resample collisions; a user who saw nearly every item keeps a few
        clash = seen.gather(1, neg)
        if not clash.any():
            break
        neg[clash] = torch.from_numpy(gen.integers(1, n_items + 1, size=int(clash.sum())))
    return neg


def train_sasrec(sequences: Sequence[np.ndarray], n_items: int, setting: SasrecSetting, bcfg: BaselineConfig, *,
                 seed: int, on_epoch: Callable[[int, SASRec], None] | None = None, desc: str = "sasrec") -> SASRec:
    """Train on each user's sequence (its last ``sasrec_max_len + 1`` items: inputs, next-item targets).
    Seeded and deterministic on CPU: weights and dropout from ``seed``, batch order and negatives from
    ``rng(seed, ...)``; the global torch RNG is left as it was. ``on_epoch(epoch, model)`` runs after each
    epoch (1-based), so one run scores every epoch count of the grid."""
    if setting.loss not in LOSSES:
        raise StudyInputError(f"Unknown SASRec loss {setting.loss!r}; set baselines.sasrec_losses to some of {LOSSES}.")
    usable = [np.asarray(s) for s in sequences if len(s) >= 2]
    if not usable:
        raise StudyInputError("SASRec has no user with two or more training items; check the interactions' split.")
    length = bcfg.sasrec_max_len
    padded = _left_pad([s[-(length + 1):] for s in usable], length + 1)
    inputs, outputs = padded[:, :-1], padded[:, 1:]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SASRec(n_items, setting.dim, setting.blocks, bcfg.sasrec_heads, length, bcfg.sasrec_dropout)
        opt = torch.optim.Adam(model.parameters(), lr=bcfg.sasrec_lr, betas=(0.9, 0.98))
        for epoch in tqdm(range(1, setting.epochs + 1), desc=desc, leave=False, mininterval=5):
            model.train()
            gen = rng(seed, "sasrec", epoch)
            order = torch.from_numpy(gen.permutation(len(inputs)))
            for start in range(0, len(order), bcfg.sasrec_batch_size):
                idx = order[start:start + bcfg.sasrec_batch_size]
                loss = _loss(model, inputs[idx], outputs[idx], setting.loss, n_items, gen)
                opt.zero_grad()
                loss.backward()
                opt.step()
            if on_epoch is not None:
                on_epoch(epoch, model)
    return model


def _loss(model: SASRec, inp: torch.Tensor, out: torch.Tensor, kind: str, n_items: int,
          gen: np.random.Generator) -> torch.Tensor:
    hidden = model(inp)
    mask = out > 0
    if kind == "ce":
        return nn.functional.cross_entropy(model.logits(hidden[mask]), out[mask] - 1)
    neg = _negatives(inp, out, n_items, gen)
    pos_logit = (hidden * model.items(out)).sum(-1)[mask]
    neg_logit = (hidden * model.items(neg)).sum(-1)[mask]
    bce = nn.functional.binary_cross_entropy_with_logits
    return bce(pos_logit, torch.ones_like(pos_logit)) + bce(neg_logit, torch.zeros_like(neg_logit))


@torch.no_grad()
def recommend(model: SASRec, history: Sequence[np.ndarray], *, k: int, exclude: bool = False,
              batch: int = 512) -> np.ndarray:
    """Top-``k`` item ids (rows, best first) from the last position of each history; ``exclude`` drops the
    history's own items (the "exclude_history" protocol)."""
    model.eval()
    length = model.positions.num_embeddings
    out = []
    for start in range(0, len(history), batch):
        part = history[start:start + batch]
        scores = model.logits(model(_left_pad(part, length))[:, -1]).numpy()
        out.append(top_k_of_scores(scores, k=k, exclude=list(part) if exclude else None))
    return np.concatenate(out) if out else np.empty((0, k), dtype=np.int64)


def grid_settings(bcfg: BaselineConfig) -> list[tuple[int, int, str]]:
    """(dim, blocks, loss) runs of the grid; each run is scored at every ``sasrec_epochs`` count."""
    return [(d, b, loss) for loss in bcfg.sasrec_losses for d in bcfg.sasrec_dims for b in bcfg.sasrec_blocks]


def sasrec_validation(interactions: pd.DataFrame, n_items: int, bcfg: BaselineConfig, *, seed: int, k: int,
                      on_row: Callable[[dict], None] | None = None) -> tuple[pd.DataFrame, SasrecSetting]:
    """The validation grid (one row per setting: Recall@k, column ``recall_column(k)``, of each user's validation
    item given the train history, protocol "all") and the chosen setting (the best; ties go to the earlier row).
    Test rows are dropped before anything is read. ``on_row(row)`` sees each row as it is scored (a bench's partial
    curve survives a stop)."""
    if not bcfg.sasrec_epochs:
        raise StudyInputError("baselines.sasrec_epochs is empty; give the epoch counts to try, e.g. [20, 40].")
    view = interactions[interactions["split"].isin(("train", "validation")).to_numpy()]
    train = histories(view, ("train",))
    val = targets(view, "validation")
    users = [int(u) for u in val.index if int(u) in train]
    hist = [train[u] for u in users]
    target = val.loc[users].to_numpy()
    rows, column = [], recall_column(k)
    for dim, blocks, loss in grid_settings(bcfg):
        top, started = SasrecSetting(dim, blocks, max(bcfg.sasrec_epochs), loss), time.perf_counter()

        def score(epoch: int, model: SASRec, dim=dim, blocks=blocks, loss=loss) -> None:
            if epoch in bcfg.sasrec_epochs:
                rows.append({**asdict(SasrecSetting(dim, blocks, epoch, loss)), "n_cases": len(users),
                             column: recall_at_k(recommend(model, hist, k=k), target)})
                if on_row is not None:
                    on_row(rows[-1])

        train_sasrec(list(train.values()), n_items, top, bcfg, seed=seed, on_epoch=score, desc=f"sasrec {top.text()}")
        log.info("sasrec validation %s: Recall@%d %s after %s epochs (%.0f s)", top.text(), k,
                 [round(r[column], 4) for r in rows[-len(bcfg.sasrec_epochs):]], sorted(bcfg.sasrec_epochs),
                 time.perf_counter() - started)
    table = pd.DataFrame(rows)
    best = table.loc[table[column].idxmax()]
    chosen = SasrecSetting(int(best["dim"]), int(best["blocks"]), int(best["epochs"]), str(best["loss"]))
    return table.assign(chosen=[SasrecSetting(int(r.dim), int(r.blocks), int(r.epochs), str(r.loss)) == chosen
                                for r in table.itertuples()]), chosen


def sasrec_baseline(cases: pd.DataFrame, interactions: pd.DataFrame, n_items: int, setting: SasrecSetting,
                    bcfg: BaselineConfig, *, k: int) -> pd.DataFrame:
    """Predictions on the rec test cases (``history`` = train + validation items) under both protocols, one
    block per training seed (``bcfg.sasrec_seeds``), each model trained on the train histories only
    (``FINAL_FIT_SPLITS``): the validation rows are input at test time, never a training target."""
    if "history" not in cases:
        raise StudyInputError("sasrec_baseline needs rec test cases with a 'history' column (generator.build_examples).")
    sequences = list(histories(interactions, FINAL_FIT_SPLITS).values())
    history = [np.asarray(h, dtype=np.int64) for h in cases["history"]]
    frames = []
    for seed in bcfg.sasrec_seeds:
        model = train_sasrec(sequences, n_items, setting, bcfg, seed=seed, desc=f"sasrec seed {seed}")
        ranked = {ex: recommend(model, history, k=k, exclude=ex) for ex in (False, True)}
        frame = _with_protocols(cases, "rec", lambda i, row, ex: ranked[ex][i].tolist())
        frames.append(frame.assign(decoding="sasrec", seed=seed))
    return pd.concat(frames, ignore_index=True)
