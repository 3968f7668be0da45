"""Simulated hits for the declared findings: big enough to decide each way, seeded."""

import numpy as np
import pandas as pd

from jointsid_utils.evaluation import statistics as stats


def finding_hits(effect: float, n: int = 400, *, n_seeds: int = 3, extra: dict | None = None,
                  excluded_rec: float | None = None) -> pd.DataFrame:
    """Every scheme F1-F4 name at 0.3 on both tasks, except that the declared winners get ``effect``; ``extra``:
    more schemes, ``embedding/quantizer`` -> (search rate, rec rate); ``excluded_rec``: add rec hits under
    "exclude_history" where every rate is this much higher for multitask x RQ-KMeans and the extras."""
    gen = np.random.default_rng(7)
    targets = np.repeat(np.arange(n // 2), 2)
    rates = {}
    for emb, quant in [(e, "rq_kmeans") for e in ("content", "search", "rec", *stats.JOINT)] + \
            [("multitask", q) for q in ("rq_vae", "rq_vae_fixed", "residual_lfq", "dict_learning")]:
        for task in ("search", "rec"):
            own = (emb, quant) == ("multitask", "rq_kmeans") or (emb == task and quant == "rq_kmeans")
            rate = 0.3 + (effect if own else 0.0)
            if (emb, quant) == ("multitask", "rq_vae_fixed"):
                rate = 0.3 + effect  # fixed beats rq_vae and reaches 0.8 x kmeans when effect > 0
            rates[(emb, quant, task, "all")] = rate
    for name, (search_rate, rec_rate) in (extra or {}).items():
        emb, quant = name.split("/")
        rates.update({(emb, quant, "search", "all"): search_rate, (emb, quant, "rec", "all"): rec_rate})
    if excluded_rec is not None:
        lifted = {("multitask", "rq_kmeans"), *(tuple(k.split("/")) for k in (extra or {}))}
        rates.update({(e, q, t, "exclude_history"): r + (excluded_rec if (e, q) in lifted else 0.0)
                      for (e, q, t, p), r in list(rates.items()) if t == "rec"})
    parts = []
    for (emb, quant, task, protocol), rate in rates.items():
        base = gen.random(n)
        parts.append(pd.DataFrame({
            "embedding": emb, "quantizer": quant, "task": task, "protocol": protocol, "decoding": "beam",
            "seed": np.repeat(np.arange(n_seeds), n), "case_id": np.tile([f"c{i}" for i in range(n)], n_seeds),
            "query_id": np.tile(np.arange(n), n_seeds), "target": np.tile(targets, n_seeds),
            "hit": np.concatenate([(np.clip(base + gen.normal(0, 0.05, n), 0, 1) < max(rate, 0.0)).astype(float)
                                   for _ in range(n_seeds)]), "list_length": 30}))
    return pd.concat(parts, ignore_index=True)
