"""A user's own item vectors (``-p embeddings.extra NAME=PATH``) run as one more Table A row, over a store that
already holds the study's own artifacts, which they leave as they are."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from smoke_runs import GENRE_VECTORS


def test_supplied_vectors_become_a_table_a_row_and_rebuild_nothing_of_the_study(smoke_run, extra_smoke_run):
    smoke, extra = smoke_run[0], extra_smoke_run[0]
    items = pd.read_parquet(extra / "data" / "items.parquet")
    supplied = pd.read_parquet(extra.parent.parent / GENRE_VECTORS)
    vectors = np.load(extra / "embeddings" / "genres.npy")
    assert vectors.shape == (len(items), supplied.shape[1] - 1) and np.isfinite(vectors).all()
    by_id = supplied.set_index("item_id")  # row i is catalogue item i's vector, found by its own id
    np.testing.assert_allclose(vectors, by_id.loc[items["source_id"].astype(int)].to_numpy(), rtol=1e-6)

    codes = np.load(extra / "ids" / "genres__rq_kmeans.npy")
    assert codes.shape[0] == len(items)

    table = pd.read_csv(extra / "results" / "table_a.csv")
    assert table.embedding.tolist()[-1] == "genres"  # after the paper's eight rows
    row = table[table.embedding == "genres"].iloc[0]
    assert row.quantizer == "rq_kmeans" and row.seeds >= 1
    for task in ("search", "rec"):
        assert 0.0 <= row[task] <= 1.0 and row[f"{task}_lo"] <= row[task] <= row[f"{task}_hi"]

    # The study's own embeddings and IDs are the smoke run's stored files, not a second build.
    for rel in ("embeddings/content.npy", "embeddings/multitask.npy", "ids/content__rq_kmeans.npy"):
        assert os.path.samefile(smoke / rel, extra / rel), rel
