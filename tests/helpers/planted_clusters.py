"""Points around planted cluster centres, and the codebook shape the quantizer tests fit."""

from __future__ import annotations

import numpy as np
import pytest


K, L = 8, 2


def planted(seed: int = 0, n: int = 400, d: int = 32, k: int = 8) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, d)) * 3
    labels = rng.integers(0, k, n)
    return (centers[labels] + rng.normal(size=(n, d))).astype(np.float32), labels


@pytest.fixture(scope="module")
def data():
    return planted()
