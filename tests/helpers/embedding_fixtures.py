"""A tiny catalogue with planted genres, for the embedding tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


GENRES = ["Comedy", "Horror", "Western", "Sci-Fi"]


@pytest.fixture
def tiny():
    """24 items in 4 genres; 12 users, each watching items of one genre; 2 train + 1 validation + 2 test queries
    per item."""
    n_items = 24
    items = pd.DataFrame({"item_id": np.arange(n_items), "title": [f"Movie {i}" for i in range(n_items)],
                          "genres": [[GENRES[i % 4]] for i in range(n_items)]})
    items["text"] = [f"Title: Movie {i}. Genres: {GENRES[i % 4]}." for i in range(n_items)]
    rows = []
    for u in range(12):
        group = [i for i in range(n_items) if i % 4 == u % 4]
        seq = [group[(u // 4 + j) % len(group)] for j in range(5)]
        for t, item in enumerate(seq):
            split = "train" if t < 3 else ("validation" if t == 3 else "test")
            rows.append({"user_id": u, "item_id": item, "timestamp": 100 * u + t, "rating": 4.0, "split": split})
    interactions = pd.DataFrame(rows)
    queries = pd.DataFrame([{"item_id": i, "query": f"{kind} {GENRES[i % 4].lower()} movie number {i}", "split": s}
                            for i in range(n_items) for kind, s in (("a", "train"), ("b", "train"), ("e", "validation"),
                                                                    ("c", "test"), ("d", "test"))])
    return items, interactions, queries
