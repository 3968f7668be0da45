import os

import pytest

# Keep tests on one thread each: the machine has two cores and papermill runs a kernel beside pytest.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    """An isolated runs/ directory so tests never touch the user's runs."""
    path = tmp_path / "runs"
    monkeypatch.setenv("JOINTSID_RUNS_DIR", str(path))
    return path
