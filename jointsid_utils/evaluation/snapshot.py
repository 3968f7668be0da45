"""The results snapshot: the small tables of one run, gathered in one folder with where they came from.

``collect(profile, dest)`` copies a run's result tables (no predictions), its per-(scheme, seed, case) hits
(``hits.parquet``), its timings and its validation scores into ``dest`` with ``meta.json`` (commit, config
hash, date, machine). The committed snapshot is ``docs/results/``, taken from the plain ``default`` run only;
``evaluation.markdown`` renders the README's result blocks and ``docs/RESULTS.md`` from it, and a test checks
that they match. ``recompute(folder)`` redoes the verdicts and every pairs table from the hits alone, through
the functions the run used, so a reader can check each row.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from jointsid_utils.cache import REPO_ROOT, atomic_path, run_dir, write_json
from jointsid_utils.config import EvaluationConfig, stable_hash
from jointsid_utils.errors import StudyInputError
from jointsid_utils.metrics import recall_column
from jointsid_utils.runtime.reproducibility import current_commit

SNAPSHOT = REPO_ROOT / "docs" / "results"


def tables(k: int) -> tuple[str, ...]:
    """What a snapshot holds of a run scored at Recall@``k``: the tables notebooks 02-06 write (a missing one is
    left out) and the hits behind the tests, never predictions."""
    recall = recall_column(k)
    return ("hits.parquet", "metrics_by_cutoff.csv", f"{recall}.csv", f"{recall}_over_seeds.csv", "table_a.csv",
            "table_b.csv", "table_beyond.csv", "verdicts.csv", "variance.csv",
            *(f"pairs_F{i}.csv" for i in range(1, 9)), "pairs_joint.csv", "pairs_beyond.csv", f"dense_{recall}.csv",
            "baselines.csv", "baselines_validation.csv", "search_by_query_kind.csv", "search_set_relevance.csv",
            "decoding.csv")


def folder_k(folder: Path) -> int:
    """The Recall@k cut-off a results folder was scored at, from its ``recall_at_<k>.csv``; a folder without one
    (tables only) is read at ``EvaluationConfig``'s k."""
    found = sorted({int(m.group(1)) for p in Path(folder).glob("recall_at_*.csv")
                    if (m := re.fullmatch(r"recall_at_(\d+)\.csv", p.name))})
    if len(found) > 1:
        raise StudyInputError(f"{folder} holds results at several cut-offs ({', '.join(map(str, found))}); keep one "
                              "recall_at_<k>.csv per results folder.")
    return found[0] if found else EvaluationConfig().k


def collect(profile: str, dest: Path) -> Path:
    """Copy ``runs/<folder>``'s tables into ``dest`` (skipping those already there when ``dest`` is the run's own
    results folder), with ``timings.csv``, ``validation.csv`` (the generator jobs' validation scores) and
    ``meta.json``. Fails in one sentence when the run has no results yet."""
    from jointsid_utils.evaluation.report import validation_summary
    from jointsid_utils.generator.orchestration import validation_table

    results = run_dir(profile, "results")
    if not (results / "table_a.csv").exists():
        raise StudyInputError(f"{results} has no table_a.csv; run ./run_all.sh --profile {profile} first.")
    dest, k = Path(dest), folder_k(results)
    dest.mkdir(parents=True, exist_ok=True)
    for name in tables(k):
        source = results / name
        if source.exists() and source.resolve() != (dest / name).resolve():
            with atomic_path(dest / name) as tmp:
                shutil.copyfile(source, tmp)
    if (run_dir(profile) / "timings.csv").exists():
        with atomic_path(dest / "timings.csv") as tmp:
            shutil.copyfile(run_dir(profile) / "timings.csv", tmp)
    with atomic_path(dest / "validation.csv") as tmp:
        validation_summary(validation_table(profile, k=k)).reset_index().to_csv(tmp, index=False)
    write_json(dest / "meta.json", provenance(profile))
    return dest


def recompute(folder: Path) -> dict[str, pd.DataFrame]:
    """``verdicts.csv``, ``variance.csv`` and every ``pairs_*.csv`` of a results folder (a run's, or the snapshot)
    rederived from its ``hits.parquet`` alone, by file name, through the run's own path
    (``results.inference``; the joint and beyond families as notebook 06 tests them)."""
    from jointsid_utils.evaluation.results import HITS_FILE, inference, read_hits
    from jointsid_utils.evaluation.statistics import study_pair_tests

    hits, known, joint, evaluation = read_hits(Path(folder) / HITS_FILE)
    files = dict(inference(hits, known_item_cases=known, joint=joint, evaluation=evaluation)["files"])
    pairs = study_pair_tests(hits, candidates=joint, evaluation=evaluation)
    files.update({f"pairs_{family}.csv": pairs[family] for family in ("joint", "beyond")})
    return files


def provenance(profile: str) -> dict[str, Any]:
    """The run's commit (``run.json``'s, read when the run started), config hash, date (its last timings row) and
    machine, for ``meta.json``."""
    config = run_dir(profile) / "config.json"
    record = run_dir(profile) / "run.json"
    commit = json.loads(record.read_text()).get("commit") if record.exists() else None
    return {"profile": profile, "commit": commit or current_commit(REPO_ROOT),
            "config_hash": stable_hash(json.loads(config.read_text())) if config.exists() else None,
            "date": _run_date(run_dir(profile) / "timings_log.csv"), "machine": _machine()}


def _run_date(log: Path) -> str | None:
    """When the last executed notebook of the run started (``timings_log.csv``'s ``run_started``)."""
    if not log.exists():
        return None
    rows = pd.read_csv(log)
    executed = rows[rows["status"] == "executed"] if "status" in rows else rows
    return str(executed["run_started"].iloc[-1]) if len(executed) else None


def read_meta(folder: Path) -> dict[str, Any]:
    path = Path(folder) / "meta.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"
