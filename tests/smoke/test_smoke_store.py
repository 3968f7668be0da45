"""Two smoke runs over one store at once: each stored artifact is built once and both folders link it.

The session's smoke run and a run of notebooks 01-03 in another folder start at the same moment over the
same runs directory (``concurrent_smoke_run`` in tests/conftest.py), so every data, embedding and ID stage is
needed by two processes at once.
"""

from __future__ import annotations

import os


def test_two_smoke_runs_at_once_build_each_artifact_once_and_agree(smoke_run, concurrent_smoke_run):
    """Both finish, and every data, embedding and ID file of the 01-03 run is the same stored file as the full
    run's (built once, by whichever run came first); the full run has more (notebook 04's IDs, say)."""
    first, second = smoke_run[0], concurrent_smoke_run[0]
    assert first.parent == second.parent  # one runs directory, so one store
    shared = [p.relative_to(second) for stage in ("data", "embeddings", "ids") for p in (second / stage).glob("*.*")
              if p.suffix in (".npy", ".parquet", ".json") and not p.name.startswith(".")]
    assert len(shared) > 10
    for rel in shared:
        assert os.path.samefile(first / rel, second / rel), rel
    assert (first / "models" / "multitask").resolve() == (second / "models" / "multitask").resolve()
