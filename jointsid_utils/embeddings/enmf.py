"""``rec``: ENMF item vectors (Chen et al., "Efficient Neural Matrix Factorization without Sampling for
Recommendation", ACM TOIS 2020), the paper's rec-tuned embedding.

Score ``y_uv = h^T (p_u * q_v)``. The loss weights every observed pair 1 (target 1) and every missing
pair ``c0`` (target 0), summed over **all** user-item pairs without sampling. Expanding the square,

    sum_uv w_uv (r_uv - y_uv)^2 = c0 * sum_uv y_uv^2 + sum_obs [(1 - c0) y_uv^2 - 2 y_uv] + |obs|,

and ``sum_uv y_uv^2 = sum_{d,d'} (sum_u p_ud p_ud')(sum_v q_vd q_vd')(h_d h_d')`` costs O((|U| + |I|) d^2)
through two d x d Gram matrices instead of O(|U| |I| d). Training is user-based as the original: a
batch of users against the whole catalogue, dropout on the user vectors, no L2 (the original's default).

Item vectors are ``h * q_v`` (not ``q_v``): then ``p_u . (h * q_v)`` is exactly the ENMF score, so nearest
neighbours in this space rank items as the model does; ``q_v`` alone would weight every dimension
equally and ignore the learnt ``h``. User vectors ``p_u`` are kept for the dense check.

``c0`` (from ``enmf_c0_grid``) and the epoch are chosen on each user's **validation** item, ranking all
items except the user's train items; the model is trained on train interactions only. ``choose_rec``, which
trains and chooses, is handed ``selection_data(data)`` and so never holds a test interaction.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from jointsid_utils.cache import run_dir, save_numpy, write_json
from jointsid_utils.config import StudyConfig, as_dict
from jointsid_utils.cutoff import recall_column
from jointsid_utils.embeddings.inputs import EmbeddingData, histories, model_output, selection_data, targets
from jointsid_utils.embeddings.retrieval import recall_at_k, top_k_of_scores
from jointsid_utils.errors import StudyInputError

METHOD = "rec"


class ENMF(nn.Module):
    def __init__(self, n_users: int, n_items: int, dim: int, *, dropout: float = 0.0):
        super().__init__()
        # Initialisation as the original code: truncated normal(0, 0.01) embeddings, h = 0.01.
        self.user = nn.Parameter(nn.init.trunc_normal_(torch.empty(n_users, dim), std=0.01, a=-0.02, b=0.02))
        self.item = nn.Parameter(nn.init.trunc_normal_(torch.empty(n_items, dim), std=0.01, a=-0.02, b=0.02))
        self.h = nn.Parameter(torch.full((dim,), 0.01))
        self.dropout = nn.Dropout(dropout)

    def item_vectors(self) -> torch.Tensor:
        """``h * q_v``: inner products with ``p_u`` reproduce the score."""
        return self.item * self.h

    def scores(self, users: torch.Tensor | None = None) -> torch.Tensor:
        p = self.user if users is None else self.user[users]
        return p @ self.item_vectors().T

    def loss(self, users: torch.Tensor, pair_user: torch.Tensor, pair_item: torch.Tensor, c0: float) -> torch.Tensor:
        """The efficient whole-data loss of a user batch (without the constant ``|obs|``); ``pair_user``
        indexes into ``users``."""
        p = self.dropout(self.user[users])
        return efficient_loss(p, self.item, self.h, pair_user, pair_item, c0)


def efficient_loss(p: torch.Tensor, q: torch.Tensor, h: torch.Tensor, pair_user: torch.Tensor,
                   pair_item: torch.Tensor, c0: float) -> torch.Tensor:
    """``c0 * sum_{d,d'} (P^T P)(Q^T Q)(h h^T) + sum_obs [(1 - c0) y^2 - 2 y]`` for users ``p`` (B, d)
    against all items ``q`` (I, d); the observed pairs are (``p[pair_user]``, ``q[pair_item]``)."""
    all_pairs = c0 * ((p.T @ p) * (q.T @ q) * torch.outer(h, h)).sum()
    y_pos = (p[pair_user] * q[pair_item] * h).sum(-1)
    observed = ((1.0 - c0) * y_pos.square() - 2.0 * y_pos).sum()
    return all_pairs + observed


def naive_loss(p: torch.Tensor, q: torch.Tensor, h: torch.Tensor, r: torch.Tensor, c0: float) -> torch.Tensor:
    """``sum_uv w_uv (r_uv - y_uv)^2`` over every pair (w = 1 observed, c0 missing): the reference."""
    y = (p * h) @ q.T
    w = torch.where(r > 0, torch.ones_like(r), torch.full_like(r, c0))
    return (w * (r - y).square()).sum()


def pairs_of(hist: dict[int, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Observed (user, item) pairs as two flat arrays."""
    users = np.concatenate([np.full(len(v), u, dtype=np.int64) for u, v in hist.items()])
    return users, np.concatenate([np.asarray(v, dtype=np.int64) for v in hist.values()])


def batch_pair_index(batch: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Positions of the batch users' pairs in user-sorted pair arrays, in ascending order (the order of
    ``np.flatnonzero(np.isin(pair_user, batch))``). ``starts[u]:starts[u + 1]`` is user u's run. Costs
    O(pairs in the batch); an ``np.isin`` mask would scan every pair for every batch, so an epoch would
    grow with |pairs| x |users| / batch, quadratically in the catalogue (bench/bench_enmf.py)."""
    b = np.sort(batch)
    lo, lengths = starts[b], starts[b + 1] - starts[b]
    offsets = np.repeat(lo - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    return offsets + np.arange(int(lengths.sum()))


@dataclass
class Fit:
    """One ENMF training run for one c0: its validation curve and best state."""

    c0: float
    best_epoch: int = 0
    best_recall: float = -1.0
    curve: list[dict] = field(default_factory=list)
    state: dict | None = None
    seconds: float = 0.0


def train_one(train_hist: dict[int, np.ndarray], n_users: int, n_items: int, *, c0: float, dim: int, epochs: int,
              batch_size: int, lr: float, optimizer: str, dropout: float, seed: int, k: int,
              val_users: np.ndarray | None = None, val_items: np.ndarray | None = None, eval_every: int = 5,
              progress: bool = True) -> Fit:
    """Train ENMF for ``epochs``; evaluate validation Recall@``k`` every ``eval_every`` epochs, keep the best state."""
    torch.manual_seed(seed)
    model = ENMF(n_users, n_items, dim, dropout=dropout)
    optim = {"adagrad": torch.optim.Adagrad, "adam": torch.optim.Adam}.get(optimizer)
    if optim is None:
        raise StudyInputError(f"Unknown embeddings.enmf_optimizer {optimizer!r}; use adagrad or adam.")
    optim = optim(model.parameters(), lr=lr)
    pair_user, pair_item = pairs_of(train_hist)
    by_user = np.argsort(pair_user, kind="stable")  # a no-op for histories(), which is sorted by user
    pair_user, pair_item = pair_user[by_user], pair_item[by_user]
    starts = np.searchsorted(pair_user, np.arange(n_users + 1))
    users = np.array(sorted(train_hist), dtype=np.int64)
    local = np.zeros(n_users, dtype=np.int64)
    exclude = [train_hist.get(int(u), np.empty(0, np.int64)) for u in (val_users if val_users is not None else [])]
    gen = torch.Generator().manual_seed(seed)
    val_column = f"val_{recall_column(k)}"
    fit, started = Fit(c0=c0), time.time()
    for epoch in tqdm(range(1, epochs + 1), desc=f"ENMF c0={c0:g}", disable=not progress, leave=False):
        model.train()
        total = 0.0
        order = users[torch.randperm(len(users), generator=gen).numpy()]
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            local[batch] = np.arange(len(batch))
            in_batch = batch_pair_index(batch, starts)
            loss = model.loss(torch.from_numpy(batch), torch.from_numpy(local[pair_user[in_batch]]),
                              torch.from_numpy(pair_item[in_batch]), c0)
            optim.zero_grad()
            loss.backward()
            optim.step()
            total += loss.item()
        row = {"epoch": epoch, "loss": total + len(pair_user)}  # + |obs|: the full weighted squared loss
        if val_users is not None and (epoch % eval_every == 0 or epoch == epochs):
            model.eval()
            with torch.no_grad():
                ranked = top_k_of_scores(model.scores(torch.from_numpy(np.array(val_users))).numpy(), k=k,
                                         exclude=exclude)
            row[val_column] = recall_at_k(ranked, val_items)
            if row[val_column] > fit.best_recall:
                fit.best_recall, fit.best_epoch = row[val_column], epoch
                fit.state = copy.deepcopy(model.state_dict())
        fit.curve.append(row)
    if fit.state is None:
        fit.state, fit.best_epoch = copy.deepcopy(model.state_dict()), epochs
    fit.seconds = time.time() - started
    return fit


def vectors_from_state(state: dict) -> tuple[np.ndarray, np.ndarray]:
    """(item vectors ``h * q``, user vectors ``p``) as float32 arrays."""
    items = (state["item"] * state["h"]).numpy().astype(np.float32)
    return np.ascontiguousarray(items), np.ascontiguousarray(state["user"].numpy().astype(np.float32))


def fit_rec(data: EmbeddingData, cfg: StudyConfig) -> tuple[np.ndarray, np.ndarray, dict]:
    """``choose_rec`` on the data without its test rows; the user-id space (a shape, like the item count)
    still comes from every row, so each user keeps a vector row."""
    n_users = int(data.interactions["user_id"].max()) + 1
    return choose_rec(selection_data(data), n_users, cfg)


def choose_rec(sel: EmbeddingData, n_users: int, cfg: StudyConfig) -> tuple[np.ndarray, np.ndarray, dict]:
    """Train one ENMF per ``c0`` in the grid on ``sel``'s train rows, keep the (c0, epoch) with the best
    Recall@k (``evaluation.k``) on its validation rows. (item vectors, user vectors, training log)."""
    emb = cfg.embeddings
    train_hist = histories(sel.interactions, ("train",))
    val = targets(sel.interactions, "validation")
    fits = []
    for c0 in emb.enmf_c0_grid:
        fits.append(train_one(train_hist, n_users, sel.n_items, c0=float(c0), dim=emb.enmf_dim,
                              epochs=emb.enmf_epochs, batch_size=emb.enmf_batch_size, lr=emb.enmf_lr,
                              optimizer=emb.enmf_optimizer, dropout=emb.enmf_dropout, seed=cfg.seed,
                              k=cfg.evaluation.k, val_users=val.index.to_numpy(), val_items=val.to_numpy()))
    best = max(fits, key=lambda f: f.best_recall)
    items, users = vectors_from_state(best.state)
    val_column = f"val_{recall_column(cfg.evaluation.k)}"
    log = {"chosen_c0": best.c0, "chosen_epoch": best.best_epoch, val_column: best.best_recall,
           "selection": "validation item, train items excluded from the ranking",
           "runs": [{"c0": f.c0, "best_epoch": f.best_epoch, val_column: f.best_recall,
                     "seconds": round(f.seconds, 2), "curve": f.curve} for f in fits],
           "config": as_dict(emb)}
    return items, users, log


def build(data: EmbeddingData, cfg: StudyConfig) -> np.ndarray:
    """ENMF item vectors; the user vectors and the training log are the stage's model output
    (``runs/<folder>/models/rec/``)."""
    items, users, log = fit_rec(data, cfg)
    out = model_output(data, cfg, METHOD)[0]
    out.mkdir(parents=True, exist_ok=True)
    save_numpy(out / "user_vectors.npy", users)
    write_json(out / "training_log.json", log)
    return items


def user_vectors(cfg: StudyConfig) -> np.ndarray:
    """ENMF's own user vectors ``p_u`` (row u = user u), written by the last ``rec`` build."""
    return np.load(run_dir(cfg.folder, "models", METHOD) / "user_vectors.npy")
