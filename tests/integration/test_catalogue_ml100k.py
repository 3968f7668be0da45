"""MovieLens-100K, whole, through the generic catalogue schema: the same data as the built-in loader."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pandas as pd
import pytest

from jointsid_utils.config import load_config
from jointsid_utils.data import catalogue as cat
from jointsid_utils.data import dataset as data
from jointsid_utils.data.movielens import ml100k_catalogue


def catalogue_cfg(path: Path, profile: str = "default", **extra):
    return load_config(profile, {"data.source": "catalogue", "data.path": str(path), **extra})


# ---------------------------------------------------------------------------------- round trip


@pytest.fixture(scope="module")
def ml100k_in_generic_schema(tmp_path_factory):
    """ML-100K as the built-in loader gives it (enriched) written in the generic schema, three ways."""
    items, _ = data.load_dataset(load_config("default"))
    items = items.assign(item_id=items["source_id"].astype("int64"))
    interactions = ml100k_catalogue().interactions  # source user and item ids, file order
    root = tmp_path_factory.mktemp("generic")
    csv_dir, parquet_dir = root / "csv", root / "parquet"
    cat.write_catalogue(items, interactions, csv_dir)
    cat.write_catalogue(items, interactions, parquet_dir, fmt="parquet")
    zipped = root / "ml100k.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        for f in csv_dir.iterdir():
            zf.write(f, f"ml100k-generic/{f.name}")
    return {"csv": csv_dir, "parquet": parquet_dir, "zip": zipped}


@pytest.mark.parametrize("profile", ["default", "smoke"])
@pytest.mark.parametrize("form", ["csv", "parquet", "zip"])
def test_ml100k_round_trip_through_the_generic_schema(ml100k_in_generic_schema, tmp_path, monkeypatch, profile, form):
    monkeypatch.setenv("JOINTSID_RUNS_DIR", str(tmp_path / "runs"))
    built_in = data.prepare_data(load_config(profile))
    monkeypatch.setenv("JOINTSID_RUNS_DIR", str(tmp_path / "runs_generic"))
    generic = data.prepare_data(catalogue_cfg(ml100k_in_generic_schema[form], profile))
    pd.testing.assert_frame_equal(generic[0], built_in[0], check_flags=False)
    pd.testing.assert_frame_equal(generic[1], built_in[1])
    assert generic[0].attrs["repairs"] == built_in[0].attrs["repairs"]  # nothing to repair in either


# ---------------------------------------------------------------------------------- counted repairs


