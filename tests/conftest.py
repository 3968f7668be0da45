import os
import subprocess
import time
from pathlib import Path

import pytest

from jointsid_utils.runtime.environment import configure_runtime

# Keep tests on one thread each: the machine has two cores and papermill runs a kernel beside pytest.
configure_runtime(1)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    """An isolated runs/ directory so tests never touch the user's runs."""
    path = tmp_path / "runs"
    monkeypatch.setenv("JOINTSID_RUNS_DIR", str(path))
    return path


def run_smoke(runs: Path, *args: str) -> tuple[Path, dict, float]:
    """``./run_all.sh --profile smoke`` into ``runs``: (runs/smoke, its environment, wall seconds)."""
    env = os.environ | {"JOINTSID_RUNS_DIR": str(runs)}
    started = time.perf_counter()
    result = subprocess.run([str(ROOT / "run_all.sh"), "--profile", "smoke", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return runs / "smoke", env, time.perf_counter() - started


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """One smoke run of every notebook per session, shared by every test that reads its outputs (a smoke
    run costs minutes on the 2-core machine)."""
    return run_smoke(tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="session")
def second_smoke_run(tmp_path_factory):
    """Another smoke run into another runs directory, for test_determinism.py to compare byte for byte."""
    return run_smoke(tmp_path_factory.mktemp("runs_again"))
