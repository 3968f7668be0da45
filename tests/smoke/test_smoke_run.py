"""End to end: ./run_all.sh on the smoke profile executes every notebook headless with papermill."""

import subprocess
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
# smoke_run (tests/conftest.py): one ./run_all.sh --profile smoke per session, shared by tests/smoke


def test_every_notebook_ran_and_was_timed(smoke_run):
    out, _ = smoke_run
    timings = pd.read_csv(out / "timings.csv")
    assert timings.notebook.tolist() == NOTEBOOKS
    assert (timings.seconds > 0).all() and (timings.peak_rss_mb > 0).all()
    for name in NOTEBOOKS:
        assert (out / "notebooks" / f"{name}.ipynb").exists()


def test_data_contract(smoke_run):
    data = smoke_run[0] / "data"
    items = pd.read_parquet(data / "items.parquet")
    inter = pd.read_parquet(data / "interactions.parquet")
    queries = pd.read_parquet(data / "queries.parquet")
    assert {"item_id", "title", "year", "genres", "text"} <= set(items.columns)
    assert {"user_id", "item_id", "timestamp", "split"} <= set(inter.columns)
    assert {"item_id", "query", "split", "source"} <= set(queries.columns)
    assert items.item_id.tolist() == list(range(len(items)))
    assert (queries.groupby("item_id").size() == 20).all()
    assert (inter[inter.split == "test"].groupby("user_id").size() == 1).all()
    assert inter[inter.split == "test"].user_id.nunique() == inter.user_id.nunique()


def test_rerun_with_nothing_changed_reuses_the_cache(smoke_run):
    out, env = smoke_run
    data_files = sorted((out / "data").glob("*.parquet"))
    before = {p: p.stat().st_mtime_ns for p in data_files}
    result = subprocess.run([str(ROOT / "run_all.sh"), "--profile", "smoke"], cwd=ROOT,
                            env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"0 executed, {len(NOTEBOOKS)} unchanged" in result.stdout  # every notebook's executed copy stands
    forced = subprocess.run([str(ROOT / "run_all.sh"), "--profile", "smoke", "--only", "01", "--force"], cwd=ROOT,
                            env=env, capture_output=True, text=True)
    assert forced.returncode == 0 and "1 executed, 0 unchanged" in forced.stdout, forced.stderr[-2000:]
    assert {p: p.stat().st_mtime_ns for p in data_files} == before  # executed again, every stage loaded
