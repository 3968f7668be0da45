"""The session's smoke runs (``./run_all.sh --profile smoke``), started together as soon as pytest has
collected the tests that read them, and awaited by the first such test.

Each notebook kernel runs on one thread, so two runs started at once take about the wall time of one, and
they use the core that the (single-process) test session leaves idle while the other tiers run.
"""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# fixture name -> (runs directory, run_all.sh arguments after --profile smoke, run folder). smoke_run and
# concurrent_smoke_run share one runs directory, hence one store, and start at the same moment, so each
# artifact of notebooks 01-03 is needed by two processes at once; second_smoke_run has a store of its own,
# so test_determinism.py compares two independent builds. extra_smoke_run adds a matrix of item vectors the
# session writes (``GENRE_VECTORS``, under the runs' base folder) as one more Table A row, over smoke_run's
# store, so it builds only what that row needs.
GENRE_VECTORS = "genre_vectors.parquet"
SMOKE_RUNS = {
    "smoke_run": ("runs", (), "smoke"),
    "concurrent_smoke_run": ("runs", ("--only", "01,02,03", "--name", "concurrent"), "concurrent"),
    "second_smoke_run": ("runs_again", (), "smoke"),
    "extra_smoke_run": ("runs", ("--only", "01,02,03,05,06", "--name", "extra",
                                 "-p", "embeddings.extra", "genres={base}/" + GENRE_VECTORS), "extra"),
}


def write_genre_vectors(path: Path, seed: int = 0) -> Path:
    """An item-vector file as a user would bring one: every MovieLens-100K movie (the smoke catalogue is a slice
    of them) by its movieId, its genres one-hot and its release decade, with a little seeded noise so that
    movies of one genre set differ; parquet with ``item_id`` and one column per dimension."""
    import numpy as np
    import pandas as pd

    from jointsid_utils.data.movielens import ml100k_catalogue

    items = ml100k_catalogue().items
    genres = sorted({g for gs in items["genres"] for g in gs})
    onehot = np.array([[g in set(gs) for g in genres] for gs in items["genres"]], dtype=np.float32)
    decade = ((items["year"].fillna(1990).to_numpy(dtype=np.float32) - 1900) / 100)[:, None]
    noise = np.random.default_rng(seed).normal(scale=0.05, size=(len(items), len(genres) + 1)).astype(np.float32)
    vectors = np.hstack([onehot, decade]) + noise
    frame = pd.DataFrame(vectors, columns=[f"d{i}" for i in range(vectors.shape[1])])
    frame.insert(0, "item_id", items["item_id"].to_numpy(dtype=np.int64))
    frame.to_parquet(path, index=False)
    return path


@dataclass(frozen=True)
class SmokeRun:
    process: subprocess.Popen
    folder: Path
    env: dict  # the environment it runs with (its JOINTSID_RUNS_DIR), for a rerun into the same store
    log: Path

    def folder_and_env(self) -> tuple[Path, dict]:
        """Waits for the run; (folder, env), or a failure that shows the end of its log."""
        returncode = self.process.wait()
        assert returncode == 0, f"{self.folder} failed ({returncode}):\n{self.log.read_text()[-6000:]}"
        return self.folder, self.env


def start_smoke_runs(names: set[str], base: Path) -> dict[str, SmokeRun]:
    """Starts the named runs (keys of SMOKE_RUNS) at once under ``base``, without waiting."""
    unknown = set(names) - SMOKE_RUNS.keys()
    if unknown:
        raise ValueError(f"Unknown smoke run(s) {sorted(unknown)}; choose from {sorted(SMOKE_RUNS)}.")
    started = {}
    if "extra_smoke_run" in names:
        write_genre_vectors(base / GENRE_VECTORS)
    for name in sorted(names):
        runs_name, args, folder = SMOKE_RUNS[name]
        args = tuple(a.format(base=base) for a in args)
        env = os.environ | {"JOINTSID_RUNS_DIR": str(base / runs_name)}
        log = base / f"{name}.log"
        with open(log, "w") as out:
            process = subprocess.Popen([str(ROOT / "run_all.sh"), "--profile", "smoke", *args], cwd=ROOT, env=env,
                                       stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        started[name] = SmokeRun(process, base / runs_name / folder, env, log)
    return started


def stop_smoke_runs(runs: dict[str, SmokeRun]) -> None:
    """Ends the runs still going, kernels included (each run is its own process group), so a session stopped
    early (-x, Ctrl-C) leaves no notebook running."""
    for run in runs.values():
        if run.process.poll() is None:
            os.killpg(run.process.pid, signal.SIGTERM)
            run.process.wait()
