"""Seeds and thread settings, set the same way by every stage, and the commit a run was made from."""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

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


def current_commit(repo: Path | None = None) -> str | None:
    """The short commit hash checked out in ``repo`` (the package's repository by default), or None outside git.
    A run reads it when it starts, so a commit made while it runs is not credited with its results."""
    repo = repo or Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
