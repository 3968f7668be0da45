"""The shared store (``jointsid_utils.store``), stages and ``cache.cached`` over it, run folders and their listing."""

from __future__ import annotations

import json
import os
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

from store_builds import produce_counted


def test_a_second_run_folder_links_the_stored_artifact_instead_of_building(runs_dir):
    calls: list = []
    a = produce_counted(calls, 1.0, "a", {"k": 1})
    b = produce_counted(calls, 1.0, "b", {"k": 1})
    assert len(calls) == 1
    assert os.path.samefile(a, b) and np.load(b).tolist() == [1.0] * 3
    # the build's side output (a model directory) is linked into the second folder too
    assert (runs_dir / "b" / "models" / "encoder" / "weights.txt").read_text() == "1.0"
    keys = json.loads((runs_dir / "b" / store.KEYS_FILE).read_text())
    assert keys["embeddings/x.npy"].startswith("embeddings/")


def test_another_key_never_overwrites_an_entry_and_going_back_loads(runs_dir):
    calls: list = []
    path = produce_counted(calls, 1.0, "a", {"k": 1})
    produce_counted(calls, 2.0, "a", {"k": 2})
    assert np.load(path)[0] == 2.0 and len(store.entries()) == 2
    produce_counted(calls, 1.0, "a", {"k": 1})  # back to the first configuration
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


