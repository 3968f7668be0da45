"""The runner refuses a catalogue too small for the study before any notebook (in a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from catalogue_exports import movielens_export


ROOT = Path(__file__).resolve().parents[2]


def test_the_runner_refuses_before_any_notebook(tmp_path):
    export = movielens_export(tmp_path / "ml", movies=3, users=5)
    runs = tmp_path / "runs"
    result = subprocess.run([sys.executable, "-m", "jointsid_utils.driver.runner", "--profile", "smoke",
                             "-p", "data.source", "movielens-csv", "-p", "data.path", str(export),
                             "-p", "data.enrich", "false", "--notebook-dir", str(tmp_path)],
                            capture_output=True, text=True, cwd=ROOT, env=os.environ | {"JOINTSID_RUNS_DIR": str(runs)})
    assert result.returncode == 1 and "too small for the study" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.strip().count("\n") == 0
    assert not runs.exists() or not any(p.is_file() for p in runs.rglob("*"))
