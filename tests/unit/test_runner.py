"""run_all.sh and the papermill runner: ordering, filtering, live progress, failure reporting, timings."""


import pandas as pd
import pytest

from jointsid_utils.errors import StudyInputError
from jointsid_utils.driver.runner import numbered_notebooks, update_timings

from notebook_fixtures import make_notebook


def test_numbered_notebooks_in_order_and_filtered(tmp_path):
    for name in ["02_b.ipynb", "01_a.ipynb", "10_c.ipynb", "scratch.ipynb"]:
        (tmp_path / name).write_text("{}")
    assert [p.name for p in numbered_notebooks(None, tmp_path)] == ["01_a.ipynb", "02_b.ipynb", "10_c.ipynb"]
    assert [p.name for p in numbered_notebooks("10,1", tmp_path)] == ["01_a.ipynb", "10_c.ipynb"]
    with pytest.raises(StudyInputError, match="No notebook numbered 07; available: 01, 02, 10"):
        numbered_notebooks("07", tmp_path)


def test_timings_keep_other_notebooks(tmp_path):
    path = tmp_path / "timings.csv"
    update_timings(path, [{"notebook": "01_a", "seconds": 1.0, "peak_rss_mb": 10.0},
                          {"notebook": "02_b", "seconds": 2.0, "peak_rss_mb": 20.0}])
    update_timings(path, [{"notebook": "02_b", "seconds": 3.0, "peak_rss_mb": 30.0}])
    frame = pd.read_csv(path)
    assert frame.to_dict("list") == {"notebook": ["01_a", "02_b"], "seconds": [1.0, 3.0], "peak_rss_mb": [10.0, 30.0]}


def test_a_notebooks_key_moves_with_each_thing_it_depends_on(tmp_path):
    from jointsid_utils.driver import stamps
    from jointsid_utils.config import load_config

    nb = tmp_path / "01_a.ipynb"
    make_notebook(nb, "print(1)")
    cfg = load_config("smoke")
    key = stamps.notebook_key(nb, cfg, upstream=None)
    assert stamps.notebook_key(nb, load_config("smoke"), upstream=None) == key  # stable across calls
    assert stamps.notebook_key(nb, load_config("smoke", {"generator.lr": 0.003}), upstream=None) != key
    assert stamps.notebook_key(nb, load_config("smoke", {"scope.joint_ids": False}), upstream=None) != key
    assert stamps.notebook_key(nb, cfg, upstream="0123") != key
    make_notebook(nb, "print(2)")
    assert stamps.notebook_key(nb, cfg, upstream=None) != key
    assert stamps.library_versions()["torch"] and stamps.machine()["cpus"] >= 1


def test_each_notebooks_timing_and_the_run_record_are_written_as_it_ends(tmp_path, monkeypatch):
    """A run killed by SIGKILL never reaches ``finally``: what it finished must already be on disk, and a
    resumed run must keep the first start."""
    import argparse
    import json
    from types import SimpleNamespace

    from jointsid_utils.driver import runner

    monkeypatch.setenv("JOINTSID_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setattr(runner, "current_commit", lambda repo=None: "abc1234")
    nb_dir = tmp_path / "notebooks"
    nb_dir.mkdir()
    for name in ["01_a.ipynb", "02_b.ipynb"]:
        (nb_dir / name).write_text("{}")
    folder = tmp_path / "runs" / "mine"
    seen = {}

    def fake_run(nb, out_dir, profile, overrides, upstream, force):
        if nb.stem == "02_b":  # what a kill at this moment would leave behind
            seen["timings"] = pd.read_csv(folder / "timings.csv").notebook.tolist()
            seen["log"] = pd.read_csv(folder / "timings_log.csv").notebook.tolist()
            seen["record"] = json.loads((folder / "run.json").read_text())
            raise RuntimeError("killed")
        return "executed", 12.5, 100.0

    monkeypatch.setattr(runner, "run_or_reuse", fake_run)
    args = argparse.Namespace(notebook_dir=nb_dir, profile="smoke", force=False)
    cfg = SimpleNamespace(folder="mine")
    with pytest.raises(RuntimeError, match="killed"):
        runner.run_notebooks(args, cfg, {}, runner.numbered_notebooks(None, nb_dir))
    assert seen["timings"] == ["01_a"] and seen["log"] == ["01_a"]
    assert seen["record"]["status"] == "running"
    first = seen["record"]["first_started"]
    assert json.loads((folder / "run.json").read_text())["status"] == "failed"

    monkeypatch.setattr(runner, "run_or_reuse", lambda *a: ("unchanged", 0.1, 0.0))
    monkeypatch.setattr(runner.time, "strftime", lambda fmt: "2999-01-01 00:00:00")  # the resume starts later
    runner.run_notebooks(args, cfg, {}, runner.numbered_notebooks(None, nb_dir))
    record = json.loads((folder / "run.json").read_text())
    assert record["status"] == "finished" and record["first_started"] == first
    assert record["started"] == "2999-01-01 00:00:00"
    assert pd.read_csv(folder / "timings.csv").notebook.tolist() == ["01_a"]
    assert pd.read_csv(folder / "timings_log.csv").status.tolist() == ["executed", "unchanged", "unchanged"]
