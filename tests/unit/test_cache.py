import json
import os

import numpy as np
import pytest

from jointsid_utils import cache
from jointsid_utils.errors import StudyInputError


def writer(array):
    return lambda path: cache.save_numpy(path, array)


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError):
        with cache.atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_cached_builds_once_and_rebuilds_on_key_or_input_change(tmp_path, runs_dir):
    calls = []
    upstream = tmp_path / "up.npy"
    cache.save_numpy(upstream, np.arange(3))
    art = tmp_path / "a.npy"
    for _ in range(2):
        cache.cached(art, {"k": 1}, writer(np.ones(4)), seed=0, inputs=(upstream,))
    first = json.loads(cache.manifest_path(art).read_text())
    assert first["config"] == {"k": 1} and first["seed"] == 0 and "numpy" in first["versions"]
    mtime = art.stat().st_mtime_ns
    cache.cached(art, {"k": 1}, lambda p: calls.append(1), seed=0, inputs=(upstream,))
    assert art.stat().st_mtime_ns == mtime and not calls
    cache.cached(art, {"k": 2}, writer(np.zeros(4)), seed=0, inputs=(upstream,))
    assert np.load(art).sum() == 0
    cache.save_numpy(upstream, np.arange(4))
    cache.cached(art, {"k": 2}, writer(np.full(4, 2.0)), seed=0, inputs=(upstream,))
    assert np.load(art).sum() == 8


def test_corrupted_artifact_is_detected_and_rebuilt(tmp_path, runs_dir):
    art = tmp_path / "a.npy"
    cache.cached(art, "k", writer(np.arange(100)))
    art.write_bytes(art.read_bytes()[:40])  # truncated by a crash or a full disk
    with pytest.warns(UserWarning, match="does not match its recorded size"):
        cache.cached(art, "k", writer(np.arange(100)))
    assert np.load(art).tolist() == list(range(100))


def test_read_only_directory_fails_with_one_sentence(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root ignores directory permissions; see test_unwritable_location")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(StudyInputError, match="Cannot write to"):
        cache.write_json(ro / "x.json", {})


def test_unwritable_location(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("JOINTSID_RUNS_DIR", str(blocker))
    with pytest.raises(StudyInputError, match="Cannot create the output directory .*JOINTSID_RUNS_DIR"):
        cache.run_dir("smoke", "data")
