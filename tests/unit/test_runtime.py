"""Threads and the libraries' environment (``runtime.configure_runtime``): set in one function, and only there."""

from __future__ import annotations

import os
import re
from pathlib import Path

import faiss
import pytest
import torch

from jointsid_utils.errors import StudyInputError
from jointsid_utils.runtime.environment import LIBRARY_DEFAULTS, configure_runtime
from jointsid_utils.runtime.workers import machine_cores

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def threads_back(monkeypatch):
    """Give the test session its own thread counts back (monkeypatch restores the environment itself)."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    before = torch.get_num_threads(), faiss.omp_get_max_threads()
    yield
    torch.set_num_threads(before[0])
    faiss.omp_set_num_threads(before[1])


def test_library_defaults_are_set_and_a_users_value_wins(monkeypatch):
    for name in LIBRARY_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "true")  # the user's choice, from the shell
    assert configure_runtime() is None
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert os.environ["TOKENIZERS_PARALLELISM"] == "true"


def test_no_count_leaves_the_threads_alone(threads_back):
    torch.set_num_threads(2)
    configure_runtime(None)
    assert torch.get_num_threads() == 2 and os.environ["OMP_NUM_THREADS"] == "1"


@pytest.mark.parametrize("threads", [1, 2])
def test_a_count_reaches_torch_faiss_and_the_processes_to_come(threads, threads_back):
    assert configure_runtime(threads) == threads
    assert torch.get_num_threads() == threads
    assert faiss.omp_get_max_threads() == threads
    assert os.environ["OMP_NUM_THREADS"] == str(threads)


def test_zero_means_every_core_this_process_may_use(threads_back):
    assert configure_runtime(0) == machine_cores() == torch.get_num_threads()


@pytest.mark.parametrize("bad", [-1, 1.5, "2", True])
def test_a_bad_count_fails_in_one_sentence(bad):
    with pytest.raises(StudyInputError, match=r"threads must be a non-negative int .* not "):
        configure_runtime(bad)


THREAD_SETTERS = re.compile(r"set_num_threads\(|omp_set_num_threads\(|os\.environ(\[|\.setdefault\()\s*[\"'](OMP_|MKL_|"
                            r"TOKENIZERS_PARALLELISM|HF_HUB_OFFLINE|TRANSFORMERS_NO_ADVISORY)")


def test_threads_and_library_variables_are_set_in_the_runtime_module_only():
    """The package and the benches leave these settings to ``configure_runtime``; ``run_all.sh`` exports only
    what glibc needs before Python starts."""
    own = ROOT / "jointsid_utils" / "runtime" / "environment.py"
    sources = [*(ROOT / "jointsid_utils").rglob("*.py"), *(ROOT / "bench").glob("*.py")]
    setters = [f"{p.relative_to(ROOT)}:{i}" for p in sources if p != own
               for i, line in enumerate(p.read_text().splitlines(), 1) if THREAD_SETTERS.search(line)]
    assert not setters, setters
    exported = re.findall(r"^export (\w+)=", (ROOT / "run_all.sh").read_text(), flags=re.M)
    assert exported and all(name.startswith("MALLOC_") for name in exported), exported
