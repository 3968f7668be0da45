"""Notebook 06: baselines, the paper's reference numbers, Tables A and B, findings and the trade-off plot.

Recall@30 itself, its intervals and the prediction files live one layer down in ``jointsid_utils.metrics``,
because notebooks 02 and 05 score with them too.
"""
