"""What every notebook does first and last: config, seeds, plot style, figure saving, metrics."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Mapping

from jointsid_utils.cache import REPO_ROOT, run_dir, write_json
from jointsid_utils.config import StudyConfig, as_dict, load_config
from jointsid_utils.errors import StudyInputError
from jointsid_utils.runtime.environment import configure_runtime
from jointsid_utils.runtime.reproducibility import seed_everything

FIGURES = REPO_ROOT / "figures"


def setup(profile: str, overrides: Mapping[str, Any] | None = None, *, threads: int | None = None) -> StudyConfig:
    """Resolve the profile, set the runtime, seed everything and style the plots. The kernel gets every core
    (``threads`` None or 0): the fine-tunes and encodings use the whole machine."""
    configure_runtime(0 if threads is None else threads)
    cfg = load_config(profile, overrides)
    seed_everything(cfg.seed)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Loading weights", "Writing model shards": one bar per checkpoint
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")
    plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 130, "savefig.bbox": "tight"})
    write_json(run_dir(cfg.folder) / "config.json", as_dict(cfg))
    return cfg


def save_figure(fig, name: str, cfg: StudyConfig) -> Path:
    """Save to ``runs/<folder>/figures/``. A run never writes the committed ``figures/``: that is
    ``publish_figures``' explicit step, from the plain ``default`` run only."""
    path = run_dir(cfg.folder, "figures") / f"{name}.png"
    fig.savefig(path)
    return path


def publish_figures(profile: str = "default") -> list[Path]:
    """Copy the figures of ``runs/<folder>/`` into the committed ``figures/``, when that run used the plain
    profile (no overrides, no other catalogue), so the repository's figures always come from the reference run."""
    run = run_dir(profile)
    saved = json.loads((run / "config.json").read_text()) if (run / "config.json").exists() else None
    if saved != as_dict(load_config(profile)):
        raise StudyInputError(f"runs/{profile}/ was not made by the plain '{profile}' profile (its config.json is "
                              f"missing or has overrides); rerun ./run_all.sh --profile {profile} before publishing.")
    pngs = sorted((run / "figures").glob("*.png"))
    FIGURES.mkdir(exist_ok=True)
    for png in pngs:
        shutil.copyfile(png, FIGURES / png.name)
    return [FIGURES / p.name for p in pngs]


def main(argv: list[str] | None = None) -> int:
    """``python -m jointsid_utils.notebook publish-figures [PROFILE]``."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] != "publish-figures" or len(args) > 2:
        print("usage: python -m jointsid_utils.notebook publish-figures [PROFILE]", file=sys.stderr)
        return 2
    try:
        published = publish_figures(*args[1:])
    except StudyInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{len(published)} figures copied to {FIGURES}")
    return 0


def record_metrics(notebook: str, cfg: StudyConfig, metrics: Mapping[str, Any]) -> Path:
    """The last cell of each notebook: its headline numbers, for tests and reviewers."""
    path = run_dir(cfg.folder, "metrics") / f"{notebook}.json"
    write_json(path, json.loads(json.dumps(dict(metrics), default=float)))
    return path


if __name__ == "__main__":
    raise SystemExit(main())
