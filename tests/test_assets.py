"""Offline assets: sha256 checks, caching in the data dir, encoder names, the fetch CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jointsid_utils import assets
from jointsid_utils.config import load_config
from jointsid_utils.errors import StudyInputError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def tmp_data_dir(tmp_path, monkeypatch):
    """A fresh data dir holding a copy of the real recbole wheel (no second download)."""
    real = assets.pip_download(assets.RECBOLE_SPEC)
    (tmp_path / "wheels").mkdir()
    shutil.copy(real, tmp_path / "wheels" / real.name)
    monkeypatch.setenv("JOINTSID_DATA_DIR", str(tmp_path))
    return tmp_path


def test_data_dir_follows_env(tmp_path, monkeypatch):
    monkeypatch.setenv("JOINTSID_DATA_DIR", str(tmp_path / "d"))
    assert assets.data_dir() == tmp_path / "d" and (tmp_path / "d").is_dir()


def test_movielens_100k_raw(tmp_data_dir):
    inter, item = assets.movielens_100k()
    assert len(inter) == 100_000 and inter["user_id:token"].nunique() == 943
    assert len(item) == 1682 and list(item.columns)[:2] == ["item_id:token", "movie_title:token_seq"]
    assert (tmp_data_dir / "ml-100k" / "ml-100k.inter").exists()


def test_sha_mismatch_deletes_and_names_the_file(tmp_data_dir):
    assets.movielens_100k()
    bad = tmp_data_dir / "ml-100k" / "ml-100k.inter"
    bad.write_bytes(bad.read_bytes()[:-100])  # truncated copy
    with pytest.raises(StudyInputError, match=r"ml-100k\.inter has sha256 .* expected .*deleted"):
        assets.movielens_100k()
    assert not bad.exists()
    inter, _ = assets.movielens_100k()  # the next call extracts a good copy again
    assert len(inter) == 100_000


def test_corrupt_wheel_is_deleted(tmp_data_dir):
    wheel = next((tmp_data_dir / "wheels").glob("recbole-*.whl"))
    wheel.write_bytes(b"garbage")
    with pytest.raises(StudyInputError, match="recbole-1.2.1-py3-none-any.whl has sha256"):
        assets.pip_download(assets.RECBOLE_SPEC)
    assert not wheel.exists()


def test_encoder_path_names():
    local = assets.encoder_path("all-MiniLM-L6-v2")
    assert (Path(local) / "model.safetensors").exists() and (Path(local) / "modules.json").exists()
    assert assets.encoder_path("sentence-transformers/all-MiniLM-L6-v2") == local
    assert assets.encoder_path("BAAI/bge-small-en-v1.5") == "BAAI/bge-small-en-v1.5"
    assert assets.encoder_path("/some/local/dir") == "/some/local/dir"


def test_enrichment_sources():
    movies = assets.ggplot2movies()
    assert len(movies) == 58_788 and {"title", "year", "length", "rating", "mpaa"} <= set(movies.columns)
    summaries = assets.plot_summaries()
    assert len(summaries) == 997 and "Vertigo (film)" in summaries


@pytest.mark.network  # the plot-summaries wheel is downloaded into the fresh data dir
def test_fetch_default_profile(tmp_data_dir):
    done = assets.fetch(load_config("default"), log=lambda _: None)
    assert {"all-MiniLM-L6-v2", "ml-100k.inter", "ml-100k.item", "ggplot2movies", "plot_summaries"} <= set(done)


def _cli(*args, env_extra=None):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "jointsid_utils.assets", *args], capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=120)


def test_cli_fetch_smoke(tmp_data_dir):
    proc = _cli("fetch", "--profile", "smoke", "-p", "data.enrich", "false",
                env_extra={"JOINTSID_DATA_DIR": str(tmp_data_dir)})
    assert proc.returncode == 0, proc.stderr
    assert "MovieLens-100K" in proc.stdout and proc.stdout.strip().endswith("assets ready")


def test_cli_fails_in_one_sentence():
    proc = _cli("fetch", "--profile", "nope")
    assert proc.returncode != 0
    assert proc.stderr.strip().startswith("error: Unknown profile 'nope'")
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.network
@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("JOINTSID_TEST_MPNET") != "1",
                    reason="downloads 386 MB; set JOINTSID_TEST_MPNET=1 to run")
def test_mpnet_fetch_and_load():
    path = assets.encoder_path("all-mpnet-base-v2")
    assert assets.file_sha256(Path(path) / "model.safetensors") == assets.SHA256["mpnet/model.safetensors"]
    assert assets.encoder_path("sentence-transformers/all-mpnet-base-v2") == path
    from sentence_transformers import SentenceTransformer

    vec = SentenceTransformer(path, device="cpu").encode(["a film about heists"])
    assert vec.shape == (1, 768)
