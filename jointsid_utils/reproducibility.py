"""Seeds and thread settings, set the same way by every stage."""

from __future__ import annotations

import os
import random

import numpy as np


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and (when imported) torch; deterministic torch kernels where cheap."""
    if seed is None:
        raise ValueError("seed_everything needs an int seed; seed 0 is a valid seed, None is not.")
    random.seed(seed)
    np.random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        import torch
    except ImportError:  # torch is a dependency, but seeding must not require it
        return
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def rng(seed: int, *salt: object) -> np.random.Generator:
    """A NumPy generator derived from the study seed plus a stage-specific salt.

    Salting keeps stages independent: adding a draw in one stage does not shift another's.
    """
    import hashlib

    digest = hashlib.sha256(repr((seed, *salt)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))
