"""The HF trainers' progress as the study's progress lines: their bars, one line per evaluation, no log dicts.

With text bars, a trainer writes each log dict (``{'loss': '2.667', 'grad_norm': ...}``) under its bar on
stdout, where the runner (``driver.progress``) passes every line on. ``progress_lines(trainer, name)``
keeps the bars (the runner throttles them into lines), drops those dicts, and logs one line per
evaluation through the package's logger, which a kernel started by the runner prints:

    search: step 40/120, train loss 1.912, search_recall_at_30 0.412, score 0.412

The dicts still reach ``trainer.state.log_history`` (and so ``training_log.json``).
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

from transformers.trainer_callback import PrinterCallback, ProgressCallback, TrainerCallback

LOG = logging.getLogger("jointsid_utils.trainer")
NOT_SHOWN = ("runtime", "samples_per_second", "steps_per_second", "epoch")  # evaluation timings, not results


class BarsWithoutDicts(ProgressCallback):
    """The trainer's tqdm bars named after the fine-tune, without the log dict written under them at every log
    step."""

    def __init__(self, name: str = ""):
        super().__init__()
        self.name = name

    def on_train_begin(self, args, state, control, **kwargs):
        super().on_train_begin(args, state, control, **kwargs)
        if self.training_bar is not None and self.name:
            self.training_bar.set_description(self.name)

    def on_log(self, args, state, control, logs=None, **kwargs):
        pass


class EvaluationLines(TrainerCallback):
    """One progress line per evaluation: the step, the last logged training loss and the evaluation's numbers."""

    def __init__(self, name: str):
        self.name = name

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if state.is_world_process_zero and metrics:
            LOG.info(evaluation_line(self.name, state.global_step, state.max_steps, state.log_history, metrics))


def evaluation_line(name: str, step: int, max_steps: int, log_history: list[Mapping[str, Any]],
                    metrics: Mapping[str, Any]) -> str:
    """``name: step 40/120, train loss 1.912, <metric> <value>, ...`` (metrics without their ``eval_`` prefix)."""
    parts = [f"{name}: step {step}/{max_steps}"]
    loss = next((row["loss"] for row in reversed(log_history) if "loss" in row), None)
    if isinstance(loss, (int, float)):
        parts.append(f"train loss {loss:.3f}")
    for key, value in metrics.items():
        short = key.removeprefix("eval_")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and short not in NOT_SHOWN:
            parts.append(f"{short} {value:.4g}")
    return ", ".join(parts)


def progress_lines(trainer, name: str):
    """Make ``trainer`` report as progress lines (see the module's docstring); returns the trainer.

    Bars stay only where the trainer drew them (``disable_tqdm=False``); a trainer without bars loses
    its ``PrinterCallback``, which would print every log dict instead."""
    had_bars = trainer.callback_handler.pop_callback(ProgressCallback) is not None
    trainer.callback_handler.pop_callback(PrinterCallback)
    if had_bars:
        trainer.add_callback(BarsWithoutDicts(name))
    trainer.add_callback(EvaluationLines(name))
    return trainer
