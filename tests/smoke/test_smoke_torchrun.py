"""torchrun retrains one scheme of the session's smoke run."""

import json

from torchrun import run_torchrun


def test_launch_under_torchrun_retrains_one_scheme_of_a_smoke_run(smoke_run, tmp_path):
    """The `paper` entry point end to end: two processes retrain one scheme of a finished smoke run
    (a changed learning rate changes its key), the main one scores it, and both leave cleanly."""
    import shutil

    import pandas as pd

    runs = tmp_path / "runs"
    shutil.copytree(smoke_run[0], runs / "smoke", ignore=shutil.ignore_patterns("notebooks", "figures"))
    run = run_torchrun("-m", "jointsid_utils.generator.launch", "--profile", "smoke", "--scheme", "content/rq_kmeans",
                    "-p", "generator.lr", "0.003", "--name", "smoke", runs=runs, port=29518)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert run.stdout.count("content/rq_kmeans seed 0: rec/all") == 1  # printed by the main process only
    assert " trained " in run.stdout
    info = json.loads((runs / "smoke/models/generator/content__rq_kmeans__seed0/train_info.json").read_text())
    assert info["world_size"] == 2 and info["generator"]["lr"] == 0.003
    marker = json.loads((runs / "smoke/results/generator_runs/content__rq_kmeans__seed0.json").read_text())
    assert marker["key"] != json.loads((smoke_run[0] / "results/generator_runs/content__rq_kmeans__seed0.json")
                                       .read_text())["key"]
    table = pd.read_csv(runs / "smoke/results/recall_at_30.csv")
    assert {"search", "rec"} <= set(table[(table.embedding == "content") & (table.quantizer == "rq_kmeans")].task)
