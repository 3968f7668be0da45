"""Toy embeddings, a config and a runs folder for the joint-construction tests."""

from __future__ import annotations

import numpy as np
import pytest

from jointsid_utils.config import load_config


N = 60


def vectors(n: int = N, seed: int = 0) -> dict[str, np.ndarray]:
    """Clustered vectors (6 topics), so that k-means has structure to find and prefixes collide."""
    g = np.random.default_rng(seed)
    topic = g.integers(0, 6, n)
    out = {}
    for name, d in {"multitask": 16, "search": 12, "rec": 8}.items():
        centres = g.normal(size=(6, d)) * 3
        out[name] = (centres[topic] + g.normal(size=(n, d))).astype(np.float32)
    return out


def config(seed: int = 0, **joint_overrides):
    return load_config("smoke", {"seed": seed, "ids.codebook_size": 4,
                                 **{f"joint_ids.{k}": v for k, v in joint_overrides.items()}})


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("JOINTSID_RUNS_DIR", str(tmp_path))
    return tmp_path


def unique_rows(a: np.ndarray) -> bool:
    return len(np.unique(a, axis=0)) == len(a)
