"""A changed parameter rebuilds its own stage and the stages downstream of it, and nothing upstream.

Runs the five cached stages (data, queries, embeddings, IDs, generator) at function level on the
9-movie CSV fixture with one embedding (content), one scheme and a one-epoch generator, then changes
one parameter at a time and compares each artifact's modification time: an artifact that was loaded
keeps its mtime, a rebuilt one is written anew (atomic rename, so a new mtime). Each configuration has its
own run folder; an artifact it shares with an earlier one is a link to the same stored file, so it keeps
that file's mtime.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jointsid_utils.generator import orchestration as study
from jointsid_utils.cache import run_dir
from jointsid_utils.config import load_config
from jointsid_utils.data.dataset import prepare_data
from jointsid_utils.embeddings import prepare_embeddings
from jointsid_utils.queries.stage import prepare_queries
from jointsid_utils.ids.schemes import load_ids, prepare_ids


FIXTURE = Path(__file__).parents[1] / "fixtures" / "ml_csv"
SCHEME = ("content", "rq_kmeans")
BASE = {"data.source": "movielens-csv", "data.path": str(FIXTURE), "data.enrich": False, "ids.codebook_size": 4,
        "generator.epochs": 1.0, "generator.beam_size": 5, "generator.top_k": 5, "evaluation.k": 5}
STAGES = ("items", "interactions", "queries", "embeddings", "ids", "generator")


def run_stages(overrides: dict) -> None:
    """What notebooks 01, 02, 03 and 05 call, for one embedding and one scheme."""
    cfg = load_config("smoke", {**BASE, **overrides})
    items, interactions = prepare_data(cfg)
    queries = prepare_queries(items, cfg, run_dir(cfg.folder, "data"))
    vectors = prepare_embeddings(cfg, items, interactions, queries, methods=[SCHEME[0]])
    prepare_ids(cfg, vectors, [SCHEME], progress=False)
    study.train_all_schemes(cfg, [SCHEME], items=items, interactions=interactions, queries=queries, workers=1,
                            progress=False)


def mtimes(runs: Path, overrides: dict) -> dict[str, int]:
    out = runs / load_config("smoke", {**BASE, **overrides}).folder
    paths = {"items": out / "data" / "items.parquet", "interactions": out / "data" / "interactions.parquet",
             "queries": out / "data" / "queries.parquet", "embeddings": out / "embeddings" / "content.npy",
             "ids": out / "ids" / "content__rq_kmeans.npy",
             "generator": out / "models" / "generator" / "content__rq_kmeans__seed0" / "train_info.json"}
    return {stage: p.stat().st_mtime_ns for stage, p in paths.items()}


def rebuilt(before: dict[str, int], after: dict[str, int]) -> list[str]:
    return [s for s in STAGES if after[s] != before[s]]


def test_a_change_rebuilds_its_stage_and_downstream_only(runs_dir):
    run_stages({})
    first = mtimes(runs_dir, {})
    run_stages({})
    assert rebuilt(first, mtimes(runs_dir, {})) == []  # nothing changed: everything loaded
    run_stages({"evaluation.k": 3})  # the Recall@k cut-off: these stages neither rank at k nor choose on it
    assert rebuilt(first, mtimes(runs_dir, {"evaluation.k": 3})) == []
    assert (run_dir(load_config("smoke", {**BASE, "evaluation.k": 3}).folder, "results") / "recall_at_3.csv").exists()

    run_stages({"ids.codebook_size": 3})  # a later stage: IDs and the generator trained on them
    after_ids = mtimes(runs_dir, {"ids.codebook_size": 3})
    assert rebuilt(first, after_ids) == ["ids", "generator"]
    assert load_ids(load_config("smoke", {**BASE, "ids.codebook_size": 3}), *SCHEME).codes[:, :2].max() <= 2  # 0..2
    assert rebuilt(first, mtimes(runs_dir, {})) == []  # the first configuration's folder is as it was

    run_stages({"ids.codebook_size": 3, "generator.lr": 1e-3})  # the last stage alone
    after_gen = mtimes(runs_dir, {"ids.codebook_size": 3, "generator.lr": 1e-3})
    assert rebuilt(after_ids, after_gen) == ["generator"]

    # an early stage: one movie fewer changes items, hence queries, item vectors, IDs and the generator
    last = {"ids.codebook_size": 3, "generator.lr": 1e-3, "data.max_items": 8}
    run_stages(last)
    assert rebuilt(after_gen, mtimes(runs_dir, last)) == list(STAGES)
    assert len(np.load(runs_dir / load_config("smoke", {**BASE, **last}).folder / "embeddings" / "content.npy")) == 8


@pytest.mark.parametrize("override, expected", [
    ({"queries.per_item": 12, "queries.train_per_item": 6}, ["queries", "generator"]),  # content reads items only
    ({"seed": 1}, list(STAGES)),  # the seed keys every stage
])
def test_query_and_seed_changes(runs_dir, override, expected):
    run_stages({})
    before = mtimes(runs_dir, {})
    run_stages(override)
    assert rebuilt(before, mtimes(runs_dir, override)) == expected
