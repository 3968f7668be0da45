"""Which test queries are scored: one seeded subsample shared by every stage that reads the test split.

The generator decodes ``generator.search_eval_cases`` test queries (decoding all 16,820 of ``default``
would cost more than training), and the dense check of notebook 02 ranks the same ones, so the dense
reference and the generated IDs are compared on identical cases, and the check does not encode every
test query with every encoder (docs/DECISIONS.md, "Search test cases").
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from jointsid_utils.runtime.reproducibility import rng


def search_test_queries(queries: pd.DataFrame, n_cases: int | None, case_seed: int) -> pd.DataFrame:
    """The test rows of ``queries`` in their order; a seeded subsample of ``n_cases`` when there are more
    (None = all). ``case_seed`` is the study seed, so every scheme, training seed and check gets the same."""
    q_test = queries[queries["split"] == "test"]
    if n_cases is not None and n_cases < len(q_test):
        pick = np.sort(rng(case_seed, "generator", "search_eval_cases").choice(len(q_test), n_cases, replace=False))
        q_test = q_test.iloc[pick]
    return q_test
