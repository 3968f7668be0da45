"""A fine-tune's stdout: progress lines, no raw metrics dict."""

from __future__ import annotations

import logging
import re
import sys

import numpy as np
import pandas as pd

from jointsid_utils.config import load_config
from jointsid_utils.driver.progress import ProgressRelay

RAW_DICT = re.compile(r"^\s*\{'\w+': ")


def test_finetune_stdout_has_progress_lines_and_no_raw_dict(runs_dir, capsys, tmp_path):
    """The fine-tune of notebook 02 on MiniLM for a few steps, with the kernel's stdout log handler."""
    from jointsid_utils.embeddings.finetune import ValidationEvaluator, finetune

    texts = [f"Title: Movie {i}. Genres: {('Comedy', 'Drama', 'Horror', 'Western')[i % 4]}." for i in range(24)]
    pairs = pd.DataFrame({"anchor": [f"film number {i % 24} please {i}" for i in range(48)],
                          "positive": [texts[i % 24] for i in range(48)]})
    val = pd.DataFrame({"query": [f"movie {i}" for i in range(8)], "item_id": np.arange(8)})
    cfg = load_config("smoke", {"embeddings.finetune_batch_size": 16, "embeddings.finetune_lr": 1e-4})
    handler = logging.StreamHandler(sys.stdout)  # what driver.progress.use_text_progress installs in a kernel
    package = logging.getLogger("jointsid_utils")
    level = package.level
    package.addHandler(handler)
    package.setLevel(logging.INFO)
    try:
        finetune(method="search", cfg=cfg, train_sets={"search": pairs},
                 evaluator=ValidationEvaluator(item_texts=texts, k=cfg.evaluation.k, val_queries=val),
                 key={"test": "quiet"},
                 out=tmp_path / "model", checkpoints=tmp_path / "checkpoints")
    finally:
        package.removeHandler(handler)
        package.setLevel(level)
    out = capsys.readouterr().out
    lines = [line for line in re.split(r"[\r\n]", out) if line.strip()]
    assert not [line for line in lines if RAW_DICT.match(line)], out
    assert any(line.startswith("search: step ") and "score" in line for line in lines), out
    shown: list[str] = []  # and what the runner would show of it: the same lines, no dict among them
    relay = ProgressRelay(shown.append)
    relay.stdout.write(out)
    relay.close()
    assert shown and not [line for line in shown if RAW_DICT.match(line)], shown
