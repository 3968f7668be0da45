"""Bad input refused in one sentence by the command-line entry points (each in a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from run_outputs import nothing_published
from bad_catalogues import CAT_ITEMS, catalogue_dir

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------------- catalogue


# ---------------------------------------------------------------------------------- item text


# ---------------------------------------------------------------------------------- users


# ---------------------------------------------------------------------------------- duplicate ids


# ---------------------------------------------------------------------------------- codebook size


# ---------------------------------------------------------------------------------- non-finite embeddings


# ---------------------------------------------------------------------------------- notebook parameters


@pytest.mark.parametrize("argv, needle", [
    (["-m", "jointsid_utils.driver.runner", "--profile", "smoke", "-p", "ids.codebook_size", "eight"],
     "Parameter 'ids.codebook_size' expects int, got str 'eight'"),
    (["-m", "jointsid_utils.driver.runner", "--profile", "7"], "Unknown profile '7'"),
    (["-m", "jointsid_utils.config", "smoke", "generator.seeds", "zero"], "Parameter 'generator.seeds' expects"),
])
def test_cli_rejects_wrong_parameter_types(runs_dir, argv, needle):
    result = subprocess.run([sys.executable, *argv], capture_output=True, text=True, cwd=ROOT,
                            env=os.environ | {"JOINTSID_RUNS_DIR": str(runs_dir)})
    assert result.returncode != 0
    assert needle in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr  # one line
    assert nothing_published(runs_dir)


# ---------------------------------------------------------------------------------- generic catalogue (issue 17)


@pytest.mark.parametrize("args, needle", [
    (["--profile", "paper"], "data.source 'movielens-csv' needs data.path"),
    (["--profile", "smoke", "-p", "data.source", "catalogue", "-p", "data.path", "{missing_column}"],
     "lacks the column(s) text (header read with separator ','"),
    (["--profile", "smoke", "-p", "data.source", "catalogue", "-p", "data.path", "{tmp}/nowhere"], "does not exist"),
    (["--profile", "smoke", "-p", "data.source", "imdb"], "Unknown data.source 'imdb'"),
])
def test_runner_checks_the_data_before_any_notebook(tmp_path, runs_dir, args, needle):
    """The runner (and run_all.sh's first step, the config CLI) refuse a bad data section before any kernel."""
    missing_column = catalogue_dir(tmp_path, items=CAT_ITEMS.replace("text", "body"))
    args = [a.format(missing_column=missing_column, tmp=tmp_path) for a in args]
    empty_notebooks = tmp_path / "no_notebooks"  # a kernel start would fail differently: there is none to start
    empty_notebooks.mkdir()
    result = subprocess.run([sys.executable, "-m", "jointsid_utils.driver.runner", *args, "--notebook-dir",
                             str(empty_notebooks)], capture_output=True, text=True, cwd=ROOT,
                            env=os.environ | {"JOINTSID_RUNS_DIR": str(runs_dir)})
    assert result.returncode == 1 and needle in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "No notebooks found" not in result.stderr  # refused before the notebooks were even listed
    assert nothing_published(runs_dir)
    if "paper" in args:
        cli = subprocess.run([sys.executable, "-m", "jointsid_utils.config", "paper"], capture_output=True, text=True,
                             cwd=ROOT)
        assert cli.returncode == 2 and needle in cli.stderr
