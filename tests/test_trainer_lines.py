"""A fine-tune reports through progress lines: bars and one line per evaluation on stdout, never a raw log dict."""

from __future__ import annotations

import logging
import re
import sys

import numpy as np
import pandas as pd

from jointsid_utils.config import load_config
from jointsid_utils.driver.progress import ProgressRelay
from jointsid_utils.runtime.trainer_lines import evaluation_line

RAW_DICT = re.compile(r"^\s*\{'\w+': ")


def test_evaluation_line_names_the_step_loss_and_results_not_timings():
    history = [{"loss": 2.5, "step": 1}, {"eval_score": 0.1}, {"loss": 1.91234, "step": 2}]
    metrics = {"eval_search_recall_at_30": 0.41234, "eval_score": 0.41234, "eval_runtime": 3.2,
               "eval_samples_per_second": 10.0, "epoch": 1.0}
    line = evaluation_line("search", 2, 6, history, metrics)
    assert line == "search: step 2/6, train loss 1.912, search_recall_at_30 0.4123, score 0.4123"
    assert evaluation_line("generator", 0, 6, [], {"eval_loss": 3.0}) == "generator: step 0/6, loss 3"


def test_finetune_stdout_has_progress_lines_and_no_raw_dict(runs_dir, capsys):
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
                 evaluator=ValidationEvaluator(item_texts=texts, val_queries=val), key={"test": "quiet"})
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
