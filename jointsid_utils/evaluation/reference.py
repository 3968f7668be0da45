"""The paper's Recall@30 numbers (REFERENCE.md), for the side-by-side columns of notebook 06.

Penha et al., "Semantic IDs for Joint Generative Search and Recommendation", RecSys 2025 LBR,
arXiv 2508.10478: MovieLens-25M, flan-t5-base, mean of 5 seeds. Compare orderings and ratios, not
absolute values (our catalogue, queries and generator differ). Keys are this study's scheme names
(``(embedding, quantizer)``); ``rq_vae_fixed`` is ours and has no reference.
"""

from __future__ import annotations

import math

import pandas as pd

NaN = math.nan

# Table 1: single-task IDs (RQ-KMeans, 2 x 256): search, rec.
TABLE_1 = {"content": (0.013, 0.023), "search": (0.072, 0.026), "rec": (0.004, 0.062)}
# Table 2: joint constructions (RQ-KMeans): search, rec, rec head, rec torso. As transcribed, several rows
# have rec below both head and torso, which an average cannot be; treat head/torso as indicative.
TABLE_2 = {"search": (0.072, 0.026, 0.090, 0.070), "rec": (0.004, 0.062, 0.170, 0.035),
           "separate": (0.028, 0.032, 0.120, 0.051), "prefix_share": (0.007, 0.021, 0.058, 0.010),
           "fused_concat": (0.048, 0.018, 0.045, 0.041), "fused_svd": (0.033, 0.038, 0.105, 0.060),
           "multitask": (0.046, 0.049, 0.135, 0.024)}
# Table 3: quantizers on the multi-task embedding: search, rec.
TABLE_3 = {"rq_kmeans": (0.046, 0.049), "dict_learning": (0.019, 0.029), "residual_lfq": (0.018, 0.023),
           "rq_vae": (0.002, 0.024)}


def reference_table() -> pd.DataFrame:
    """One row per (embedding, quantizer) the paper reports: ``paper_search``, ``paper_rec``,
    ``paper_rec_head``, ``paper_rec_torso`` (NaN where not reported) and the paper's ``table``."""
    rows: dict[tuple[str, str], dict] = {}
    for emb, (s, r) in TABLE_1.items():
        rows[(emb, "rq_kmeans")] = {"table": "1", "paper_search": s, "paper_rec": r,
                                    "paper_rec_head": NaN, "paper_rec_torso": NaN}
    for emb, (s, r, h, t) in TABLE_2.items():
        prev = rows.get((emb, "rq_kmeans"), {}).get("table")
        rows[(emb, "rq_kmeans")] = {"table": f"{prev}+2" if prev else "2", "paper_search": s, "paper_rec": r,
                                    "paper_rec_head": h, "paper_rec_torso": t}
    for quant, (s, r) in TABLE_3.items():
        old = rows.get(("multitask", quant))
        if old is not None:
            old["table"] += "+3"
            continue
        rows[("multitask", quant)] = {"table": "3", "paper_search": s, "paper_rec": r,
                                      "paper_rec_head": NaN, "paper_rec_torso": NaN}
    frame = pd.DataFrame([{"embedding": e, "quantizer": q, **v} for (e, q), v in rows.items()])
    return frame[["embedding", "quantizer", "table", "paper_search", "paper_rec", "paper_rec_head", "paper_rec_torso"]]


def paper_value(embedding: str, quantizer: str, column: str = "paper_search") -> float:
    """One reference number, NaN where the paper has none (e.g. ``rq_vae_fixed``)."""
    t = reference_table()
    hit = t[(t.embedding == embedding) & (t.quantizer == quantizer)]
    return float(hit[column].iloc[0]) if len(hit) else NaN
