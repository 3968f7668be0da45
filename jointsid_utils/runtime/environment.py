"""The one place that sets thread counts and the libraries' environment variables.

Every Python entry point that computes (the runner, a notebook's ``setup``, a spawned worker, the explore
and ``torchrun`` command lines, the test session, a bench) calls ``configure_runtime`` first; the command
lines that load no model (config, assets, store, runs, markdown) need not. On the study's 2-core machines,
OpenMP threads that busy-wait and a tokenizer pool beside torch's slow every step many times over
(docs/FEASIBILITY.md), and the assets are fetched through pip, never from the Hugging Face hub. Each
variable is a default: one already set by the user wins, so an experiment can change it from the shell.

Only glibc's ``MALLOC_*_`` settings cannot be made here: glibc reads them once, when the interpreter
starts, so ``run_all.sh`` exports them. OpenMP reads its variables when torch (or faiss) is first imported,
which is why ``configure_runtime`` runs before the first heavy import, and why a parent sets them before
it spawns workers (a child inherits its parent's environment).
"""

from __future__ import annotations

import os
import sys

from jointsid_utils.errors import StudyInputError
from jointsid_utils.runtime.workers import machine_cores

LIBRARY_DEFAULTS = {
    "OMP_WAIT_POLICY": "PASSIVE",  # idle OpenMP threads sleep instead of spinning against the other core
    "TOKENIZERS_PARALLELISM": "false",  # no Rust tokenizer pool beside torch's threads (and no fork warning)
    "HF_HUB_OFFLINE": "1",  # models come from the fetched assets; a hub lookup would only wait for a timeout
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",  # transformers' advice lines stay out of the notebooks' logs
}


def configure_runtime(threads: int | None = None) -> int | None:
    """Set the library defaults in ``os.environ`` and, when ``threads`` is given, this process's thread count.

    ``threads``: None leaves the thread count alone (a command line that computes nothing), 0 means every
    core this process may use, n >= 1 means n. A count goes to ``OMP_NUM_THREADS``, which torch and faiss
    read when they load (and the processes this one starts inherit), and to torch and faiss directly where
    they are loaded already; neither is imported here, so a process that needs neither does not pay for it.
    Returns the thread count set, or None.
    """
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 0):
        raise StudyInputError(f"threads must be a non-negative int (0: every core this process may use) or None, "
                              f"not {threads!r}.")
    for name, value in LIBRARY_DEFAULTS.items():
        os.environ.setdefault(name, value)
    if threads is None:
        return None
    count = threads or machine_cores()
    os.environ["OMP_NUM_THREADS"] = str(count)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(count)
    if "faiss" in sys.modules:
        sys.modules["faiss"].omp_set_num_threads(count)
    return count

