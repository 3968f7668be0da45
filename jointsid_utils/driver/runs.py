"""The runs under ``runs/``, listed and side by side.

    python -m jointsid_utils.driver.runs list                       # every run folder: settings, date, best Recall@k
    python -m jointsid_utils.driver.runs compare default default+ids.codebook_size=32

Each run folder holds its resolved ``config.json``, ``run.json`` (profile, overrides, commit, when, how it
ended) and ``results/recall_at_<k>.csv`` (k: its ``evaluation.k``); these tables read only those files. A plain
table was chosen over a tracking server (MLflow's local file store would add a tracking client, its dependencies
and a UI for what two CSV reads answer): docs/DECISIONS.md ("Comparing runs").
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from jointsid_utils.cache import runs_root
from jointsid_utils.cutoff import recall_column, recall_column_in
from jointsid_utils.errors import StudyInputError
from jointsid_utils.store import STORE

MAIN = {"protocol": "all", "decoding": "beam", "segment": "all"}  # the rows the study's tables report


def run_folders() -> list[Path]:
    """Every folder under ``runs/`` that a run made (it has a ``config.json``), oldest first."""
    root = runs_root()
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name != STORE and (p / "config.json").exists()]
    return sorted(found, key=lambda p: (_record(p).get("started") or "", p.name))


def _record(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / "run.json").read_text())
    except (OSError, ValueError):
        return {}


def settings(folder: Path) -> dict[str, Any]:
    """The run's differences from its profile (dotted key -> value), from its ``config.json``."""
    from jointsid_utils.config import PROFILES, as_dict

    config = json.loads((folder / "config.json").read_text())
    base = as_dict(PROFILES[config["name"]]) if config.get("name") in PROFILES else {}
    out = {}
    for section, value in config.items():
        if section in ("name", "run_name"):
            continue
        if isinstance(value, dict):
            for leaf, v in value.items():
                if base.get(section, {}).get(leaf) != v:
                    out[f"{section}.{leaf}"] = v
        elif base.get(section) != value:
            out[section] = value
    return out


def run_k(folder: Path) -> int:
    """The run's Recall@k cut-off, ``evaluation.k`` of its ``config.json`` (the config's default where the file
    has no evaluation section)."""
    from jointsid_utils.config import EvaluationConfig

    config = json.loads((folder / "config.json").read_text())
    return int(config.get("evaluation", {}).get("k", EvaluationConfig().k))


def recall_means(folder: Path) -> pd.DataFrame:
    """Mean Recall@k over seeds per (scheme, task) of the run's main rows (column ``recall_at_<k>``, k the
    run's ``evaluation.k``), with the seed count."""
    recall = recall_column(run_k(folder))
    path = folder / "results" / f"{recall}.csv"
    if not path.exists():
        return pd.DataFrame(columns=["scheme", "task", recall, "seeds"])
    frame = pd.read_csv(path)
    for column, value in MAIN.items():
        if column in frame:
            frame = frame[frame[column] == value]
    frame = frame.assign(scheme=frame.embedding + "/" + frame.quantizer)
    return (frame.groupby(["scheme", "task"], sort=True)
            .agg(**{recall: (recall, "mean")}, seeds=("seed", "nunique")).reset_index())


def list_runs() -> pd.DataFrame:
    """One row per run folder: profile, what differs from it, last run, status, seeds and the best scheme per task."""
    rows = []
    for folder in run_folders():
        record, means = _record(folder), recall_means(folder)
        row = {"run": folder.name, "profile": json.loads((folder / "config.json").read_text()).get("name"),
               "settings": ", ".join(f"{k}={v}" for k, v in settings(folder).items()) or "(the profile)",
               "last run": record.get("started"), "status": record.get("status"),
               "seeds": int(means.seeds.max()) if len(means) else 0}
        recall = recall_column_in(means)
        for task in ("search", "rec"):
            best = means[means.task == task].sort_values(recall, ascending=False).head(1)
            row[f"best {task}"] = (f"{best.scheme.iloc[0]} {best[recall].iloc[0]:.3f}" if len(best) else "")
        rows.append(row)
    return pd.DataFrame(rows, columns=["run", "profile", "settings", "last run", "status", "seeds", "best search",
                                       "best rec"])


def compare(names: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(settings that differ between the runs, mean Recall@k per scheme and task with one column per run, each
    at its run's ``evaluation.k``: a differing k is among the settings)."""
    folders = [runs_root() / n for n in names]
    missing = [f.name for f in folders if not (f / "config.json").exists()]
    if missing:
        known = ", ".join(f.name for f in run_folders()) or "none yet"
        raise StudyInputError(f"No run folder {', '.join(missing)} under {runs_root()}; runs there: {known}.")
    per_run = {f.name: settings(f) for f in folders}
    keys = sorted({k for s in per_run.values() for k in s})
    differing = [k for k in keys if len({json.dumps(s.get(k), sort_keys=True) for s in per_run.values()}) > 1]
    config = pd.DataFrame({name: [s.get(k, "(profile)") for k in differing] for name, s in per_run.items()},
                          index=pd.Index(differing, name="setting"))
    tables = []
    for f in folders:
        means = recall_means(f).set_index(["scheme", "task"])
        tables.append(means[recall_column_in(means)].rename(f.name))
    recall = pd.concat(tables, axis=1).round(4) if tables else pd.DataFrame()
    return config, recall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jointsid_utils.driver.runs", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="every run folder")
    p = sub.add_parser("compare", help="two or more runs side by side")
    p.add_argument("runs", nargs="+", help="run folder names (see list)")
    args = parser.parse_args(argv)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_colwidth", 80)
    try:
        if args.command == "list":
            table = list_runs()
            print(table.to_string(index=False) if len(table) else f"no runs under {runs_root()} yet")
            return 0
        config, recall = compare(args.runs)
        print("settings that differ:" if len(config) else "no settings differ")
        if len(config):
            print(config.to_string())
        ks = sorted({run_k(runs_root() / name) for name in args.runs})
        print(f"\nmean Recall@{'/'.join(map(str, ks))} over seeds (beam decoding, all cases):")
        print(recall.to_string() if len(recall) else "(no results yet)")
    except StudyInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
