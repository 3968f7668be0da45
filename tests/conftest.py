"""Fixtures shared by the three tiers: tests/unit, tests/integration and tests/smoke (docs/RUNNING.md)."""

import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from jointsid_utils.runtime.environment import configure_runtime

# Keep tests on one thread each: the machine has two cores and papermill runs a kernel beside pytest.
configure_runtime(1)

# tests/helpers holds the modules several tiers import (toy data, fake servers, the smoke runs), importable
# from any tier and from the child processes some tests start.
sys.path.insert(0, str(Path(__file__).resolve().parent / "helpers"))

from smoke_runs import SMOKE_RUNS, start_smoke_runs, stop_smoke_runs  # noqa: E402

_smoke = {}  # the session's smoke runs by fixture name, and the folder they write to


def pytest_collection_finish(session):
    """Starts every smoke run the collected tests read, at once and right away, so they run beside the unit
    and integration tiers (a smoke run costs minutes on the 2-core machine)."""
    wanted = {name for item in session.items for name in item.fixturenames} & SMOKE_RUNS.keys()
    if wanted and not session.config.option.collectonly:
        _smoke["base"] = Path(tempfile.mkdtemp(prefix="jointsid-smoke-"))
        _smoke["runs"] = start_smoke_runs(wanted, _smoke["base"])


def pytest_sessionfinish(session):
    if _smoke:
        stop_smoke_runs(_smoke["runs"])
        shutil.rmtree(_smoke["base"], ignore_errors=True)


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    """An isolated runs/ directory so tests never touch the user's runs."""
    path = tmp_path / "runs"
    monkeypatch.setenv("JOINTSID_RUNS_DIR", str(path))
    return path


@pytest.fixture(scope="session")
def smoke_run():
    """(runs/smoke, its environment): one smoke run of every notebook, shared by every test that reads it."""
    return _smoke["runs"]["smoke_run"].folder_and_env()


@pytest.fixture(scope="session")
def second_smoke_run():
    """Another smoke run into another runs directory and store, for test_determinism.py to compare."""
    return _smoke["runs"]["second_smoke_run"].folder_and_env()


@pytest.fixture(scope="session")
def extra_smoke_run():
    """Notebooks 01-03, 05 and 06 into runs/extra over smoke_run's store, with a supplied item-vector matrix
    (``-p embeddings.extra genres=...``) as one more Table A row (test_smoke_extra.py)."""
    return _smoke["runs"]["extra_smoke_run"].folder_and_env()


@pytest.fixture(scope="session")
def concurrent_smoke_run():
    """Notebooks 01-03 into runs/concurrent over smoke_run's store, started with it (test_smoke_store.py)."""
    return _smoke["runs"]["concurrent_smoke_run"].folder_and_env()
