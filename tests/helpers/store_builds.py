"""Builders that count their calls, for the store tests in one process and across processes."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from jointsid_utils.cache import run_dir
from jointsid_utils.stages import Stage, Workspace, produce


def _write_matrix_and_encoder(calls: list, value: float, ws: Workspace) -> None:
    calls.append(ws.out)
    with open(ws.out / "x.npy", "wb") as fh:
        np.save(fh, np.full(3, value), allow_pickle=False)
    (ws.out / "encoder").mkdir()
    (ws.out / "encoder" / "weights.txt").write_text(str(value))


def produce_counted(calls: list, value: float, folder: str, key: dict, stage: str = "embeddings") -> Path:
    """A matrix and a model directory (two outputs of one stage) linked into run folder ``folder``."""
    produce(Stage(stage, functools.partial(_write_matrix_and_encoder, calls, value), outputs=("x.npy", "encoder"),
                  config=key),
            {"x.npy": run_dir(folder, stage) / "x.npy", "encoder": run_dir(folder, "models") / "encoder"})
    return run_dir(folder, stage) / "x.npy"
