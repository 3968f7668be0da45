"""Same seed, same bytes; another seed, other results.

(a) A second ``./run_all.sh --profile smoke`` into another runs directory must reproduce the session's
smoke run exactly (both are fixtures in tests/conftest.py): every ID and embedding file byte for byte,
recall_at_30.csv and every notebook's metrics (wall times, and how many jobs the run trained itself rather than
found in its store, aside). (b) At function level on the first
run's artifacts, seed 1 must give other IDs, another user sample and other queries, so the seed is not
ignored somewhere.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jointsid_utils.data import dataset as data
from jointsid_utils.ids import schemes as sid
from jointsid_utils.config import load_config
from jointsid_utils.ids.build import build_ids
from jointsid_utils.queries.templates import template_queries

# build_seconds/..., fit_seconds, train_seconds_total, ...; and trained_now, which counts the jobs this run trained
# itself: another run over the same store (extra_smoke_run) may have trained some of them first.
WALL_TIME = re.compile(r"seconds|^pid$|^trained_now$")


def files(root: Path, pattern: str) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.glob(pattern) if p.is_file())


def without_wall_time(obj):
    if isinstance(obj, dict):
        return {k: without_wall_time(v) for k, v in obj.items() if not WALL_TIME.search(str(k))}
    if isinstance(obj, list):
        return [without_wall_time(v) for v in obj]
    return obj


@pytest.mark.parametrize("pattern", ["ids/**/*.npy", "embeddings/*.npy"])
def test_same_seed_gives_byte_identical_artifacts(smoke_run, second_smoke_run, pattern):
    a, b = smoke_run[0], second_smoke_run[0]
    names = files(a, pattern)
    assert names and names == files(b, pattern)
    differ = [str(n) for n in names if (a / n).read_bytes() != (b / n).read_bytes()]
    assert not differ, f"not byte-identical across two runs with the same seed: {differ}"


def test_same_seed_gives_identical_metrics(smoke_run, second_smoke_run):
    a, b = smoke_run[0], second_smoke_run[0]
    pd.testing.assert_frame_equal(pd.read_csv(a / "results" / "recall_at_30.csv"),
                                  pd.read_csv(b / "results" / "recall_at_30.csv"), check_exact=True)
    names = files(a, "metrics/*.json")
    assert len(names) == 7 and names == files(b, "metrics/*.json")
    for name in names:
        # compared as canonical JSON text, so NaN (a missing baseline, say) equals NaN
        first, again = (json.dumps(without_wall_time(json.loads((r / name).read_text())), sort_keys=True)
                        for r in (a, b))
        assert first == again, f"{name} differs between two runs with the same seed"


def test_another_seed_gives_other_ids_users_and_queries(smoke_run, tmp_path):
    out = smoke_run[0]
    X = np.load(out / "embeddings" / "content.npy")
    stored = np.load(out / "ids" / "content__rq_kmeans.npy")
    codes = {}
    for seed in (0, 1):
        cfg = load_config("smoke", {"seed": seed})
        codes[seed], _ = build_ids("content", "rq_kmeans", X, tmp_path / f"seed{seed}",
                                   **sid.scheme_kwargs(cfg, "content", "rq_kmeans"))
    np.testing.assert_array_equal(codes[0], stored)  # the function rebuilds the run's IDs exactly
    assert (codes[1][:, :2] != stored[:, :2]).any(axis=1).mean() > 0.2  # not a relabelling of a few items

    items, interactions = data.load_saved(out / "data")
    for seed in (0, 1):  # the split does not depend on enrich (the item text does)
        split = data.load_dataset(load_config("smoke", {"seed": seed, "data.enrich": False}))[1]
        assert split.equals(interactions) == (seed == 0)  # seed 1 samples other users

    queries = pd.read_parquet(out / "data" / "queries.parquet")
    again = template_queries(items, load_config("smoke"))
    pd.testing.assert_frame_equal(again, queries, check_dtype=False)  # same seed: the same queries
    other = template_queries(items, load_config("smoke", {"seed": 1}))
    assert len(other) == len(queries) and (other["query"] != queries["query"]).mean() > 0.5
    assert (other["split"] != queries["split"]).any()
