"""The tuned baselines: SASRec learns, is deterministic and chooses on validation only; BM25's
k1/b are chosen on validation queries only; the rec predictions carry both protocols and every seed."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jointsid_utils.config import load_config
from jointsid_utils.errors import StudyInputError
from jointsid_utils.evaluation.bm25_tuning import bm25_tuned, tune_bm25
from jointsid_utils.evaluation.sasrec import SasrecSetting, train_sasrec

from sasrec_fixtures import N_ITEMS, TINY


def test_unknown_loss_fails_with_one_sentence():
    with pytest.raises(StudyInputError, match="sasrec_losses"):
        train_sasrec([np.arange(5)], N_ITEMS, SasrecSetting(8, 1, 1, "bpr"), TINY, seed=0)


def bm25_frames():
    items = pd.DataFrame({"item_id": range(4), "text": ["space wars robots robots", "robots love story",
                                                        "love story in paris paris", "space robots in paris"]})
    queries = pd.DataFrame({"item_id": [0, 1, 2, 3, 0, 1, 2, 3, 0, 2],
                            "query": ["space wars", "robots love", "paris love story", "space paris",
                                      "robots", "love story robots", "paris", "space robots paris",
                                      "space wars robots", "love paris"],
                            "split": ["train"] * 4 + ["validation"] * 4 + ["test"] * 2})
    return items, queries


def test_bm25_tuning_chooses_on_validation_only():
    items, queries = bm25_frames()
    table, chosen = tune_bm25(items, queries, (0.6, 1.5), (0.3, 0.9), seed=0, k=1)
    assert len(table) == 4 and table["chosen"].sum() == 1 and set(table["n_cases"]) == {4}
    assert "recall_at_1" in table  # the validation column names the cut-off it was scored at
    poisoned = queries.copy()
    poisoned.loc[poisoned["split"] == "test", "query"] = "nothing matches this"
    poisoned.loc[poisoned["split"] == "test", "item_id"] = 3
    table2, chosen2 = tune_bm25(items, poisoned, (0.6, 1.5), (0.3, 0.9), seed=0, k=1)
    assert chosen2 == chosen
    pd.testing.assert_frame_equal(table, table2)
    cases = queries[queries["split"] == "test"].rename(columns={"item_id": "target"}).assign(case_id=["q0", "q1"])
    preds = bm25_tuned(cases, items, chosen, k=2)
    assert set(preds["decoding"]) == {"bm25_tuned"} and set(preds["protocol"]) == {"all"}
    assert preds["ranked"].map(len).tolist() == [2, 2]


def test_bm25_tuning_without_validation_queries_fails_with_one_sentence():
    items, queries = bm25_frames()
    old_style = queries.assign(split=queries["split"].replace({"validation": "train"}))
    with pytest.raises(StudyInputError, match="validation"):
        tune_bm25(items, old_style, (1.5,), (0.75,), seed=0, k=30)


def test_default_grid_puts_the_bench_best_inside_it_and_drops_bce():
    """The grid extends past the validation curve's best point on both axes (bench/bench_sasrec_grid.py measured
    the curve to its plateau), so the chosen setting is not a corner; BCE stays in the paper's grid only."""
    record = json.loads((Path(__file__).resolve().parents[2] / "bench" / "results" / "bench_sasrec_grid.json").read_text())
    score, dim, epochs = max((value, run["dim"], epoch) for run in record["runs"]
                             for epoch, value in zip(run["epochs"], run["recall_at_30"]))
    grid = load_config("default").baselines
    assert min(grid.sasrec_dims) < dim < max(grid.sasrec_dims), (score, dim)
    assert min(grid.sasrec_epochs) < epochs < max(grid.sasrec_epochs), (score, epochs)
    assert grid.sasrec_losses == ("ce",) and "bce" in load_config("paper").baselines.sasrec_losses


def test_smoke_profile_has_a_small_grid():
    smoke, default = load_config("smoke").baselines, load_config("default").baselines
    assert max(smoke.sasrec_epochs) < max(default.sasrec_epochs) and len(smoke.sasrec_seeds) < 5
    assert default.sasrec_seeds == (0, 1, 2, 3, 4)
