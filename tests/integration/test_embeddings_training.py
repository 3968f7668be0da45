"""Embedding methods that train: ENMF on a planted structure, a fine-tune on smoke data."""

from __future__ import annotations


import numpy as np
import pandas as pd
import torch

from jointsid_utils.config import load_config
from jointsid_utils.embeddings.enmf import ENMF, train_one
from jointsid_utils.embeddings.inputs import EmbeddingData
from jointsid_utils.embeddings.retrieval import recall_at_k, top_k

from embedding_fixtures import tiny


# ----------------------------------------------------------------------------- ENMF


def test_enmf_learns_a_planted_structure_better_than_random():
    # 4 user groups x 10 items each; every user saw 6 of their group's items, validates on a 7th.
    n_users, n_items = 40, 40
    rng = np.random.default_rng(0)
    train, val = {}, []
    for u in range(n_users):
        group = np.arange(10) + 10 * (u % 4)
        picks = rng.permutation(group)[:7]
        train[u], _ = picks[:6], val.append(picks[6])
    fit = train_one(train, n_users, n_items, c0=0.1, dim=8, epochs=60, batch_size=16, lr=0.05, optimizer="adagrad",
                    dropout=0.0, seed=0, k=30, val_users=np.arange(n_users), val_items=np.array(val),
                    progress=False)
    model = ENMF(n_users, n_items, 8)
    model.load_state_dict(fit.state)
    with torch.no_grad():
        ranked = top_k(model.user.numpy(), model.item_vectors().numpy(), k=5, exclude=list(train.values()))
    assert recall_at_k(ranked, np.array(val)) > 0.9  # random: 5 / 34 = 0.15
    assert fit.curve[-1]["loss"] < fit.curve[0]["loss"]


# ----------------------------------------------------------------------------- fusions


# ----------------------------------------------------------------------------- dense check


# ----------------------------------------------------------------------------- training pairs


# ----------------------------------------------------------------------------- cache and registry


# ----------------------------------------------------------------------------- fine-tuning (MiniLM, a few steps)

def test_finetune_smoke_runs_changes_the_vectors_and_is_reused(tiny, runs_dir):
    from jointsid_utils.embeddings.encoders import encode, load_encoder
    from jointsid_utils.embeddings.finetune import model_dir
    from jointsid_utils.embeddings.registry import load_or_build

    items, interactions, queries = tiny
    queries = pd.concat([queries, queries.assign(query=queries["query"] + " please")], ignore_index=True)
    cfg = load_config("smoke", {"embeddings.finetune_max_pairs": 32, "embeddings.finetune_batch_size": 16,
                                "embeddings.finetune_lr": 1e-4, "embeddings.finetune_val_queries": 8})
    data = EmbeddingData(items, interactions, queries)
    load_or_build("search", cfg, data)  # the embeddings stage: the model is its second output
    path = model_dir(cfg, "search")
    log = (path / "training_log.json").read_text()
    assert '"steps": 2' in log and (path / "jointsid_model.json").exists()
    before = encode(load_encoder(cfg.embeddings.base_encoder), data.texts)
    after = encode(load_encoder(path), data.texts)
    assert after.shape == before.shape and np.abs(after - before).max() > 1e-4
    assert not list((runs_dir / ".store" / "embeddings").glob("*/scratch"))  # checkpoints dropped once published
    mtime = (path / "model.safetensors").stat().st_mtime_ns
    load_or_build("search", cfg, data)  # same config and code: reused, not retrained
    assert (path / "model.safetensors").stat().st_mtime_ns == mtime


