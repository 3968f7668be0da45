"""A tiny generator config and toy data (40 items, 12 users) shared by the generator tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from jointsid_utils.config import GeneratorConfig

N_ITEMS, N_USERS = 40, 12
WORDS = "alien space war love comedy horror dog island robot ghost city river night storm king queen".split()
# A T5 that learns the toy data in seconds; 10 of the toy data's 40 validation queries (drawn by the study
# seed) and no warmup (training is a few dozen steps).
TINY = GeneratorConfig(d_model=32, d_ff=64, num_layers=1, num_heads=2, epochs=12.0, batch_size=32, lr=5e-3,
                       history_k=4, rec_windows_per_user=4, beam_size=10, top_k=10, val_queries=10, warmup_steps=0)


def toy_data(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, np.ndarray]:
    """(items, interactions, queries, codes): 8 interactions per user (6 train, 1 validation, 1 test), 3
    train queries, 1 test query and 1 validation query per item (validation rows last), and unique 3-level codes."""
    gen = np.random.default_rng(seed)
    items = pd.DataFrame({"item_id": np.arange(N_ITEMS), "title": [f"{WORDS[i % 16]} {WORDS[(i * 7) % 16]} {i}"
                                                                   for i in range(N_ITEMS)]})
    items["text"] = items["title"] + " a film"
    rows = []
    for u in range(N_USERS):
        seq = gen.choice(N_ITEMS, size=8, replace=False)
        for t, i in enumerate(seq):
            rows.append((u, int(i), t, "test" if t == 7 else "validation" if t == 6 else "train"))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "split"])
    q = [(i, f"{items.title[i]} movie", "train") for i in range(N_ITEMS) for _ in range(3)]
    q += [(i, f"the {items.title[i]}", "test") for i in range(N_ITEMS)]
    q += [(i, f"movie {items.title[i]}", "validation") for i in range(N_ITEMS)]
    queries = pd.DataFrame(q, columns=["item_id", "query", "split"])
    queries["query_id"] = np.arange(len(queries))
    codes = np.column_stack([np.arange(N_ITEMS) % 5, np.arange(N_ITEMS) // 5 % 4, np.arange(N_ITEMS) // 20])
    return items, inter, queries, codes
