"""The store across processes: two processes build one artifact once; the du / prune CLI."""

from __future__ import annotations

import multiprocessing as mp
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from jointsid_utils import store
from jointsid_utils.cache import cached, run_dir
from jointsid_utils.driver import runs

from store_builds import produce_counted

ROOT = Path(__file__).resolve().parents[2]


def _slow_build_in(runs: str, folder: str, log: str) -> str:
    os.environ["JOINTSID_RUNS_DIR"] = runs

    def build(tmp: Path) -> None:
        with open(log, "a") as fh:
            fh.write(f"{os.getpid()}\n")
        time.sleep(1.0)
        with open(tmp, "wb") as fh:
            np.save(fh, np.arange(5), allow_pickle=False)

    path = cached(run_dir(folder, "ids") / "codes.npy", {"k": "shared"}, build)
    return np.load(path).tolist()


def test_two_processes_needing_one_artifact_build_it_once(runs_dir, tmp_path):
    log = tmp_path / "builds.log"
    with mp.get_context("spawn").Pool(2) as pool:
        results = pool.starmap(_slow_build_in, [(str(runs_dir), "a", str(log)), (str(runs_dir), "b", str(log))])
    assert results == [list(range(5))] * 2
    assert len(log.read_text().split()) == 1


def test_du_reports_per_stage_and_prune_removes_only_unused_entries(runs_dir):
    calls: list = []
    produce_counted(calls, 1.0, "a", {"k": 1})
    produce_counted(calls, 2.0, "b", {"k": 2}, stage="ids")
    (runs_dir / "b").joinpath(store.KEYS_FILE).unlink()  # b no longer lists its entry
    for path in (runs_dir / "b").rglob("*"):  # nor links it
        if path.is_symlink():
            path.unlink()
    usage = {r["stage"]: r for r in store.usage()}
    assert usage["embeddings"]["entries"] == 1 and usage["embeddings"]["unreferenced"] == 0
    assert usage["ids"]["unreferenced"] == 1 and usage["ids"]["bytes"] > 0
    assert store.prune(dry_run=True) == store.prune() and len(store.entries()) == 1
    assert (runs_dir / "b" / "ids" / "x.npy").exists()  # the run folder's hard link survives the prune
    out = subprocess.run([sys.executable, "-m", "jointsid_utils.store", "du"], capture_output=True, text=True,
                         env=os.environ | {"JOINTSID_RUNS_DIR": str(runs_dir)}, cwd=ROOT)
    assert out.returncode == 0 and "embeddings" in out.stdout and "total" in out.stdout


