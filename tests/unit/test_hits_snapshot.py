"""Hits a reader can recompute: the run writes its per-(scheme, seed, case) hits to ``results/hits.parquet``,
the snapshot copies them, and ``snapshot.recompute`` rederives ``verdicts.csv``, ``variance.csv`` and every
``pairs_*.csv`` from them, byte for byte. Recall and NDCG at the extra cut-offs come from the same predictions."""

import numpy as np
import pandas as pd
import pytest

from jointsid_utils.config import EvaluationConfig
from jointsid_utils.errors import StudyInputError
from jointsid_utils.evaluation.markdown import cutoffs_markdown
from jointsid_utils.evaluation.results import HITS_FILE, inference, read_hits, save_hits
from jointsid_utils.evaluation.snapshot import SNAPSHOT, recompute
from jointsid_utils.evaluation.statistics import HIT_COLUMNS
from jointsid_utils.metrics import cutoff_metrics, cutoff_rows

from hits_checks import assert_recomputed

SCHEMES = [("content", "rq_kmeans", 0.30), ("search", "rq_kmeans", 0.45), ("rec", "rq_kmeans", 0.25),
           ("multitask", "rq_kmeans", 0.40), ("separate", "rq_kmeans", 0.38)]


def synthetic_hits(seed: int = 0) -> pd.DataFrame:
    """Three seeds of five schemes on 40 search cases (two per item) and 30 rec users, both rec protocols."""
    gen = np.random.default_rng(seed)
    rows = []
    for emb, quant, rate in SCHEMES:
        for s in range(3):
            for c in range(40):
                rows.append((emb, quant, "search", "all", "beam", s, f"q{c}", c, c // 2, float(gen.random() < rate), 30))
            for protocol in ("all", "exclude_history"):
                for u in range(30):
                    rows.append((emb, quant, "rec", protocol, "beam", s, f"u{u}", np.nan, 100 + u,
                                 float(gen.random() < rate - 0.1), 30))
    return pd.DataFrame(rows, columns=HIT_COLUMNS)


def written_results(folder, hits, known, joint=(), evaluation=EvaluationConfig()):
    """What ``results.write_inference`` leaves in a results folder, without a run around it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in inference(hits, known_item_cases=known, joint=joint, evaluation=evaluation)["files"].items():
        frame.to_csv(folder / name, index=False)
    save_hits(folder / HITS_FILE, hits, known_item_cases=known, joint=joint, evaluation=evaluation)
    return folder


def test_hits_round_trip_compactly_with_what_the_inference_read(tmp_path):
    hits = synthetic_hits()
    evaluation = EvaluationConfig(alpha=0.1, noninferiority_margin=0.05)
    path = save_hits(tmp_path / HITS_FILE, hits, known_item_cases=["q1", "q3"], joint=["separate/rq_kmeans"],
                     evaluation=evaluation)
    stored = pd.read_parquet(path)
    assert stored["hit"].dtype == "int8" and stored["seed"].dtype == "int8"
    assert isinstance(stored["case_id"].dtype, pd.CategoricalDtype)
    back, known, joint, ev = read_hits(path)
    pd.testing.assert_frame_equal(back, hits, check_dtype=False)
    assert back["hit"].dtype == "float64" and known == ["q1", "q3"] and joint == ["separate/rq_kmeans"]
    assert ev == evaluation


def test_recompute_rederives_every_table_and_sees_a_changed_hit(tmp_path):
    hits = synthetic_hits()
    folder = written_results(tmp_path / "results", hits, known=["q0", "q2", "q4"])
    files = assert_recomputed(folder)
    assert {"verdicts.csv", "variance.csv", "pairs_F1.csv", "pairs_F8.csv"} <= set(files)
    flipped = hits.copy()
    flipped.loc[flipped.index[:200], "hit"] = 1.0 - flipped.loc[flipped.index[:200], "hit"]
    save_hits(folder / HITS_FILE, flipped, known_item_cases=["q0", "q2", "q4"], joint=[], evaluation=EvaluationConfig())
    with pytest.raises(AssertionError, match="differs"):
        assert_recomputed(folder)


def test_recompute_without_hits_fails_in_one_sentence(tmp_path):
    with pytest.raises(StudyInputError, match="hits.parquet is missing"):
        recompute(tmp_path)


def test_cutoff_rows_score_recall_and_ndcg_at_each_cutoff():
    frame = pd.DataFrame({"case_id": ["a", "b", "c"], "task": "rec", "target": [1, 2, 3],
                          "ranked": [[1, 5, 6], [5, 6, 2, 7], [9, 8]]})
    row = cutoff_rows(frame, cutoff_metrics(30, (2,))).iloc[0]
    assert row["recall_at_30"] == pytest.approx(2 / 3) and row["recall_at_2"] == pytest.approx(1 / 3)
    assert row["ndcg_at_2"] == pytest.approx(1 / 3)  # only "a", at rank 1
    ndcg3 = cutoff_rows(frame, ["ndcg@3"]).iloc[0]["ndcg_at_3"]
    assert ndcg3 == pytest.approx((1 + 1 / np.log2(4)) / 3)  # "b" at rank 3 counts 1 / log2(3 + 1)
    with pytest.raises(StudyInputError, match="extra_k"):
        cutoff_metrics(30, (0,))


def test_cutoffs_block_waits_for_a_run_that_wrote_them(tmp_path):
    assert "Pending the next reference run" in cutoffs_markdown(tmp_path)


@pytest.mark.skipif(not (SNAPSHOT / HITS_FILE).exists(), reason="the committed snapshot predates hits.parquet")
def test_committed_snapshot_recomputes_from_its_hits():
    assert_recomputed(SNAPSHOT)
