"""A fine-tune reports through progress lines: bars and one line per evaluation on stdout, never a raw log dict."""

from __future__ import annotations


from jointsid_utils.runtime.trainer_lines import evaluation_line


def test_evaluation_line_names_the_step_loss_and_results_not_timings():
    history = [{"loss": 2.5, "step": 1}, {"eval_score": 0.1}, {"loss": 1.91234, "step": 2}]
    metrics = {"eval_search_recall_at_30": 0.41234, "eval_score": 0.41234, "eval_runtime": 3.2,
               "eval_samples_per_second": 10.0, "epoch": 1.0}
    line = evaluation_line("search", 2, 6, history, metrics)
    assert line == "search: step 2/6, train loss 1.912, search_recall_at_30 0.4123, score 0.4123"
    assert evaluation_line("generator", 0, 6, [], {"eval_loss": 3.0}) == "generator: step 0/6, loss 3"


