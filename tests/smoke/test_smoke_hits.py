"""The smoke run's hits rederive its verdicts and pairs, and its cutoffs agree with Recall@30."""

import numpy as np
import pandas as pd

from jointsid_utils.evaluation.markdown import cutoffs_markdown
from jointsid_utils.evaluation.results import HITS_FILE

from hits_checks import assert_recomputed


def test_smoke_run_hits_recompute_its_verdicts_and_pairs(smoke_run):
    results = smoke_run[0] / "results"
    assert_recomputed(results)
    size = (results / HITS_FILE).stat().st_size
    rows = len(pd.read_parquet(results / HITS_FILE))
    print(f"smoke hits.parquet: {rows} rows, {size / 1024:.1f} KiB")
    assert size < 40 * rows + 20_000  # compact: well under a byte per column per row


def test_smoke_run_cutoffs_agree_with_recall_at_30(smoke_run):
    results = smoke_run[0] / "results"
    table = pd.read_csv(results / "metrics_by_cutoff.csv")
    assert {"recall_at_30", "recall_at_10", "ndcg_at_10"} <= set(table.columns)
    assert (table.recall_at_10 <= table.recall_at_30 + 1e-12).all() and (table.ndcg_at_10 <= table.recall_at_10 + 1e-12).all()
    over_seeds = pd.read_csv(results / "recall_at_30_over_seeds.csv")
    over_seeds = over_seeds[over_seeds.segment == "all"]
    keys = ["embedding", "quantizer", "task", "protocol", "decoding"]
    both = table.merge(over_seeds, on=keys, suffixes=("", "_seeds"))
    assert len(both) == len(over_seeds) > 0
    np.testing.assert_allclose(both.recall_at_30, both.recall_at_30_seeds, atol=1e-12)
    assert "Pending" not in cutoffs_markdown(results) and "NDCG@10" in cutoffs_markdown(results)


