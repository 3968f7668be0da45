"""A throwaway assets directory for the asset tests."""

from __future__ import annotations

import shutil

import pytest

from jointsid_utils import assets


@pytest.fixture
def tmp_data_dir(tmp_path, monkeypatch):
    """A fresh data dir holding a copy of the real recbole wheel (no second download)."""
    real = assets.pip_download(assets.RECBOLE_SPEC)
    (tmp_path / "wheels").mkdir()
    shutil.copy(real, tmp_path / "wheels" / real.name)
    monkeypatch.setenv("JOINTSID_DATA_DIR", str(tmp_path))
    return tmp_path
