"""The smoke generator with a short warm start, for the warm-start tests."""

from __future__ import annotations

from dataclasses import replace

from jointsid_utils.config import load_config


# The smoke profile's generator (its FAST_CPU options: restricted output, grouped rec prompts) warm-started,
# on the toy data: one pretraining epoch and one fine-tune epoch keep this test at seconds.
SMOKE_WARM = replace(load_config("smoke").generator, warm_start=True, pretrain_epochs=1.0, epochs=1.0,
                     history_k=4, rec_windows_per_user=4, beam_size=10, top_k=10, val_queries=10, warmup_steps=0,
                     search_eval_cases=20, vocab_size=200)
