"""Offline assets: sha256 checks, caching in the data dir, encoder names, the fetch CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from jointsid_utils import assets
from jointsid_utils.errors import StudyInputError

from asset_fixtures import tmp_data_dir


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


