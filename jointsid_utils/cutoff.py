"""The Recall@k cut-off in table columns: ``recall_at_<k>``, with k = ``evaluation.k`` (30, the paper's).

A module of its own, importing nothing of the study's but its errors, so that the embeddings stages, which
name their validation Recall@k with it, do not reach ``metrics`` in their code fingerprint
(``jointsid_utils.fingerprint``): editing how results are scored then never retrains an encoder.
``metrics`` re-exports both names.
"""

from __future__ import annotations

import re

import pandas as pd

from jointsid_utils.errors import StudyInputError


def recall_column(k: int) -> str:
    """The name of the Recall@k column in every table that holds one: ``recall_at_30`` at the paper's cut-off
    (``metrics.metric_column`` of ``recall@<k>``)."""
    return f"recall_at_{int(k)}"


def recall_column_in(frame: pd.DataFrame) -> str:
    """The one Recall@k column of a results frame written at its run's ``evaluation.k`` (``recall_column``)."""
    found = [c for c in frame.columns if re.fullmatch(r"recall_at_\d+", str(c))]
    if len(found) != 1:
        raise StudyInputError(f"Expected one recall_at_<k> column in the table, found {found or 'none'} among "
                              f"{list(frame.columns)}; pass a table written by the study at one evaluation.k.")
    return found[0]
