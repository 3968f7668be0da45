"""The shared store (``jointsid_utils.store``), stages and ``cache.cached`` over it, run folders and their listing."""

from __future__ import annotations

import functools
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jointsid_utils import store
from jointsid_utils.cache import cached, run_dir
from jointsid_utils.config import load_config
from jointsid_utils.driver import runs
from jointsid_utils.driver.runner import RunLock
from jointsid_utils.errors import StudyInputError
from jointsid_utils.stages import Stage, Workspace, produce

ROOT = Path(__file__).resolve().parents[1]


def _write_matrix_and_encoder(calls: list, value: float, ws: Workspace) -> None:
    calls.append(ws.out)
    with open(ws.out / "x.npy", "wb") as fh:
        np.save(fh, np.full(3, value), allow_pickle=False)
    (ws.out / "encoder").mkdir()
    (ws.out / "encoder" / "weights.txt").write_text(str(value))


def _produce(calls: list, value: float, folder: str, key: dict, stage: str = "embeddings") -> Path:
    """A matrix and a model directory (two outputs of one stage) linked into run folder ``folder``."""
    produce(Stage(stage, functools.partial(_write_matrix_and_encoder, calls, value), outputs=("x.npy", "encoder"),
                  config=key),
            {"x.npy": run_dir(folder, stage) / "x.npy", "encoder": run_dir(folder, "models") / "encoder"})
    return run_dir(folder, stage) / "x.npy"


def test_a_second_run_folder_links_the_stored_artifact_instead_of_building(runs_dir):
    calls: list = []
    a = _produce(calls, 1.0, "a", {"k": 1})
    b = _produce(calls, 1.0, "b", {"k": 1})
    assert len(calls) == 1
    assert os.path.samefile(a, b) and np.load(b).tolist() == [1.0] * 3
    # the build's side output (a model directory) is linked into the second folder too
    assert (runs_dir / "b" / "models" / "encoder" / "weights.txt").read_text() == "1.0"
    keys = json.loads((runs_dir / "b" / store.KEYS_FILE).read_text())
    assert keys["embeddings/x.npy"].startswith("embeddings/")


def test_another_key_never_overwrites_an_entry_and_going_back_loads(runs_dir):
    calls: list = []
    path = _produce(calls, 1.0, "a", {"k": 1})
    _produce(calls, 2.0, "a", {"k": 2})
    assert np.load(path)[0] == 2.0 and len(store.entries()) == 2
    _produce(calls, 1.0, "a", {"k": 1})  # back to the first configuration
    assert len(calls) == 2 and np.load(path)[0] == 1.0
    assert (runs_dir / "a" / "models" / "encoder" / "weights.txt").read_text() == "1.0"


def test_a_failed_build_leaves_no_entry_and_no_artifact(runs_dir):
    path = run_dir("a", "embeddings") / "x.npy"

    def broken(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        cached(path, {"k": 1}, broken)
    assert not path.exists()
    assert not list((runs_dir / store.STORE).rglob("out"))
    calls: list = []
    cached(path, {"k": 1}, lambda tmp: tmp.write_bytes(b"ok") and calls.append(tmp))
    assert len(calls) == 1 and path.read_bytes() == b"ok"


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
    _produce(calls, 1.0, "a", {"k": 1})
    _produce(calls, 2.0, "b", {"k": 2}, stage="ids")
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


def test_run_folders_are_named_by_the_profile_its_overrides_or_a_name():
    assert load_config("default").folder == "default"
    assert load_config("default", {"ids.codebook_size": 32}).folder == "default+ids.codebook_size=32"
    catalogue = load_config("default", {"data.source": "movielens-csv", "data.path": "/data/ml-latest-small"})
    assert catalogue.folder == "default+data.path=ml-latest-small+data.source=movielens-csv"
    assert load_config("smoke", {"run_name": "mine", "seed": 3}).folder == "mine"
    long = load_config("default", {"generator.seeds": list(range(40))}).folder
    assert long.startswith("default+") and len(long) < 40
    with pytest.raises(StudyInputError, match="plain folder name"):
        load_config("default", {"run_name": "../elsewhere"})


def test_a_second_run_on_one_folder_stops_with_a_sentence(runs_dir):
    with RunLock("default"):
        with pytest.raises(StudyInputError, match="in use by another run.*--name"):
            with RunLock("default"):
                pass
        with RunLock("other"):  # another folder runs beside it
            pass


def _fake_run(runs_dir: Path, folder: str, overrides: dict, recall: dict, started: str) -> None:
    from jointsid_utils.config import as_dict

    base = runs_dir / folder
    (base / "results").mkdir(parents=True)
    (base / "config.json").write_text(json.dumps(as_dict(load_config("smoke", overrides))))
    (base / "run.json").write_text(json.dumps({"started": started, "status": "finished"}))
    rows = [{"embedding": e, "quantizer": "rq_kmeans", "task": t, "seed": s, "recall_at_30": v + 0.01 * s,
             "protocol": "all", "decoding": "beam", "segment": "all"}
            for (e, t), v in recall.items() for s in (0, 1)]
    pd.DataFrame(rows).to_csv(base / "results" / "recall_at_30.csv", index=False)


def test_runs_are_listed_and_compared_side_by_side(runs_dir):
    _fake_run(runs_dir, "smoke", {}, {("content", "search"): 0.30, ("content", "rec"): 0.10},
              "2026-12-05 10:00:00")
    _fake_run(runs_dir, "smoke+ids.codebook_size=4", {"ids.codebook_size": 4},
              {("content", "search"): 0.20, ("content", "rec"): 0.12}, "2026-12-05 11:00:00")
    table = runs.list_runs()
    assert table.run.tolist() == ["smoke", "smoke+ids.codebook_size=4"]
    assert table.settings.tolist() == ["(the profile)", "ids.codebook_size=4"]
    assert table["best search"].tolist() == ["content/rq_kmeans 0.305", "content/rq_kmeans 0.205"]
    config, recall = runs.compare(["smoke", "smoke+ids.codebook_size=4"])
    assert config.loc["ids.codebook_size"].tolist() == ["(profile)", 4]
    assert recall.loc[("content/rq_kmeans", "rec")].tolist() == [0.105, 0.125]
    with pytest.raises(StudyInputError, match="No run folder nope"):
        runs.compare(["smoke", "nope"])


@pytest.mark.slow
def test_two_smoke_runs_at_once_build_each_artifact_once_and_agree(runs_dir):
    """Notebooks 01-03 of two smoke runs started together in two folders over one store: both finish, and every
    embedding and ID file of the two folders is one stored file (built once, by whichever run came first)."""
    env = os.environ | {"JOINTSID_RUNS_DIR": str(runs_dir)}
    command = [str(ROOT / "run_all.sh"), "--profile", "smoke", "--only", "01,02,03"]
    procs = [subprocess.Popen(command + ["--name", name], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for name in ("first", "second")]
    outputs = [p.communicate(timeout=1200)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-3000:] for o in outputs)
    first, second = runs_dir / "first", runs_dir / "second"
    shared = [p.relative_to(first) for stage in ("data", "embeddings", "ids") for p in (first / stage).glob("*.*")
              if p.suffix in (".npy", ".parquet", ".json") and not p.name.startswith(".")]
    assert len(shared) > 10
    for rel in shared:
        assert os.path.samefile(first / rel, second / rel), rel
    assert (first / "models" / "multitask").resolve() == (second / "models" / "multitask").resolve()
