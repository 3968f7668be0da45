"""run_all.sh and the runner executing notebooks: failures, bad options, skipping unchanged notebooks."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from notebook_fixtures import make_notebook


ROOT = Path(__file__).resolve().parents[2]


def test_runner_stops_at_first_failure_naming_notebook_and_cell(tmp_path, runs_dir):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    make_notebook(nbs / "01_ok.ipynb", "import transformers.utils\nfrom tqdm.auto import tqdm\n"
                  "for _ in tqdm(range(3), desc='counting'):\n    pass\n"
                  "print(profile, overrides, 'in a notebook' if transformers.utils.is_in_notebook() else 'headless')")
    make_notebook(nbs / "02_fail.ipynb", "from jointsid_utils import StudyInputError\n"
                  "raise StudyInputError('items.parquet is missing; run notebook 01 first.')")
    make_notebook(nbs / "03_never.ipynb", "open('ran', 'w')")
    result = subprocess.run([sys.executable, "-m", "jointsid_utils.driver.runner", "--profile", "smoke",
                             "--notebook-dir", str(nbs), "-p", "ids.codebook_sise", "4"],
                            capture_output=True, text=True, cwd=ROOT, env=os.environ | {"JOINTSID_RUNS_DIR": str(runs_dir)})
    assert result.returncode == 1
    assert "Unknown parameter 'ids.codebook_sise'" in result.stderr  # validated before any notebook ran
    assert not (runs_dir / "smoke" / "notebooks" / "01_ok.ipynb").exists()

    result = subprocess.run([sys.executable, "-m", "jointsid_utils.driver.runner", "--profile", "smoke",
                             "--notebook-dir", str(nbs), "-p", "seed", "3"],
                            capture_output=True, text=True, cwd=ROOT, env=os.environ | {"JOINTSID_RUNS_DIR": str(runs_dir)})
    assert result.returncode == 1, result.stdout + result.stderr
    # live progress: the notebook's bar and print under its name, as text, without the kernel's warnings
    assert re.search(r"\[1/3\] 01_ok\.ipynb\n    counting: 100% 3/3 \[.*\]\n    smoke \{'seed': 3\} headless\n",
                     result.stdout), result.stdout
    assert not re.search("IProgress|without encryption|Warning", result.stdout + result.stderr)
    assert re.search(r"error: 02_fail\.ipynb failed in cell \[\d+\] with StudyInputError: "
                     r"items\.parquet is missing; run notebook 01 first\.", result.stderr)
    executed = runs_dir / "smoke+seed=3" / "notebooks"  # a run with overrides has its own folder
    assert "smoke {'seed': 3}" in (executed / "01_ok.ipynb").read_text()
    assert not (nbs / "ran").exists()
    assert json.loads((runs_dir / "smoke+seed=3" / "run.json").read_text())["status"] == "failed"
    timings = pd.read_csv(runs_dir / "smoke+seed=3" / "timings.csv")
    assert timings.notebook.tolist() == ["01_ok"] and timings.peak_rss_mb[0] > 10


@pytest.mark.parametrize("args,message", [
    (["--profile", "nope"], "Unknown profile 'nope'; choose one of: smoke, default, paper"),
    (["--frobnicate"], "unknown option '--frobnicate'"),
    (["-p", "seed"], "-p needs a KEY and a VALUE"),
    (["-p", "ids.levels", "two"], "Parameter 'ids.levels' expects int"),
])
def test_run_all_rejects_bad_options_in_one_sentence(args, message, runs_dir):
    result = subprocess.run([str(ROOT / "run_all.sh"), *args], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode != 0
    assert message in result.stderr
    assert not runs_dir.exists()


def test_unchanged_notebooks_are_skipped_until_what_they_depend_on_changes(tmp_path, runs_dir):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    made = runs_dir / "smoke" / "data" / "made.txt"
    make_notebook(nbs / "01_write.ipynb", "from jointsid_utils.cache import run_dir\n"
                  "(run_dir(profile, 'data') / 'made.txt').write_text(str(overrides))")
    make_notebook(nbs / "02_read.ipynb", "from jointsid_utils.cache import run_dir\n"
                  "print('reads', (run_dir(profile, 'data') / 'made.txt').read_text())")

    def run(*extra: str) -> str:
        result = subprocess.run([sys.executable, "-m", "jointsid_utils.driver.runner", "--profile", "smoke",
                                 "--notebook-dir", str(nbs), *extra], capture_output=True, text=True, cwd=ROOT,
                                env=os.environ | {"JOINTSID_RUNS_DIR": str(runs_dir)})
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    assert "2 executed, 0 unchanged" in run()
    timings = (runs_dir / "smoke" / "timings.csv").read_text()
    again = run()
    assert "2 notebooks: 0 executed, 2 unchanged" in again and "the executed copy stands" in again
    assert (runs_dir / "smoke" / "timings.csv").read_text() == timings  # the rows of the copies that stand
    made.unlink()  # a deleted output: its writer executes again; same key, same output, so the reader stands
    assert "1 executed, 1 unchanged" in run() and made.exists()
    make_notebook(nbs / "02_read.ipynb", "print('edited')")
    assert "1 executed, 1 unchanged" in run()
    assert "2 executed, 0 unchanged" in run("-p", "seed", "1")  # the config is in every notebook's key
    assert made.read_text() == "{'seed': 1}"
    assert "1 executed, 0 unchanged" in run("-p", "seed", "1", "--only", "02", "--force")
    log = pd.read_csv(runs_dir / "smoke" / "timings_log.csv")
    assert log.status.tolist() == ["executed"] * 2 + ["unchanged"] * 2 + ["executed", "unchanged"] + \
        ["unchanged", "executed"]
    other = pd.read_csv(runs_dir / "smoke+seed=1" / "timings_log.csv")  # another config, its own folder
    assert other.status.tolist() == ["executed"] * 3
    assert json.loads((runs_dir / "smoke+seed=1" / "run.json").read_text())["overrides"] == {"seed": 1}
