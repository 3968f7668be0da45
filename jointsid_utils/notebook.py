"""What every notebook does first and last: config, seeds, plot style, figure saving, metrics."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Mapping

from jointsid_utils.cache import REPO_ROOT, run_dir, write_json
from jointsid_utils.config import StudyConfig, as_dict, load_config
from jointsid_utils.errors import StudyInputError
from jointsid_utils.reproducibility import seed_everything

FIGURES = REPO_ROOT / "figures"


def setup(profile: str, overrides: Mapping[str, Any] | None = None, *, threads: int | None = None) -> StudyConfig:
    """Resolve the profile, seed everything, limit threads to the machine and style the plots."""
    cfg = load_config(profile, overrides)
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 0):
        raise StudyInputError(f"threads must be a non-negative int (0 or None: min(2, CPU cores)), not {threads!r}.")
    seed_everything(cfg.seed)
    import torch

    torch.set_num_threads(threads or min(2, os.cpu_count() or 1))
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")
    plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 130, "savefig.bbox": "tight"})
    write_json(run_dir(cfg.name) / "config.json", as_dict(cfg))
    return cfg


def save_figure(fig, name: str, cfg: StudyConfig) -> Path:
    """Save to ``runs/<profile>/figures/`` always, and to the committed ``figures/`` on default only.

    Committed figures must come from the ``default`` profile (STUDY.md §4), so a smoke run in the
    tests never overwrites them.
    """
    path = run_dir(cfg.name, "figures") / f"{name}.png"
    fig.savefig(path)
    if cfg.name == "default":  # the same bytes, rendered once
        FIGURES.mkdir(exist_ok=True)
        shutil.copyfile(path, FIGURES / f"{name}.png")
    return path


def record_metrics(notebook: str, cfg: StudyConfig, metrics: Mapping[str, Any]) -> Path:
    """The last cell of each notebook: its headline numbers, for tests and reviewers."""
    path = run_dir(cfg.name, "metrics") / f"{notebook}.json"
    write_json(path, json.loads(json.dumps(dict(metrics), default=float)))
    return path
