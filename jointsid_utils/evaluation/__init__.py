"""Notebook 06: baselines, the paper's reference numbers, Tables A and B, findings and the trade-off plot.

``statistics`` turns every seed's per-case hits into intervals over seeds and cases, paired tests with
Holm families, power statements and per-query-kind tables. Recall@30 itself, its per-seed intervals and the
prediction files live one layer down in ``jointsid_utils.metrics``, because notebooks 02 and 05 score with
them too.
"""
