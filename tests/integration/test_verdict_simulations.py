"""Verdicts on simulated hits big enough to decide each way, and F5's one-sided Pareto rule."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from jointsid_utils.config import EvaluationConfig
from jointsid_utils.errors import StudyInputError
from jointsid_utils.evaluation import report as ev
from jointsid_utils.evaluation import statistics as stats

EV = EvaluationConfig()  # the profiles' evaluation settings, passed explicitly as the notebooks pass the run's


def _finding_hits(effect: float, n: int = 400, *, n_seeds: int = 3, extra: dict | None = None,
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


def test_verdicts_on_simulated_effects():
    from jointsid_utils.evaluation import verdicts as vd

    large = vd.verdicts(vd.finding_pairs(_finding_hits(0.3), evaluation=EV), alpha=EV.alpha).set_index(["finding", "task"])
    assert (large.loc[[("F1", "search"), ("F1", "rec"), ("F2", "search"), ("F3", "rec")], "verdict"]
            == "reproduces").all()
    assert large.loc[("F4", "search"), "verdict"] == "reproduces"
    none = vd.verdicts(vd.finding_pairs(_finding_hits(0.0), evaluation=EV), alpha=EV.alpha).set_index(["finding", "task"])
    assert (none.loc[["F1", "F2", "F3"], "verdict"] == "inconclusive").all()
    assert (none.loc[["F1", "F2", "F3"], "detectable"] > 0).all()
    reversed_ = vd.verdicts(vd.finding_pairs(_finding_hits(-0.2), evaluation=EV), alpha=EV.alpha).set_index(["finding", "task"])
    assert (reversed_.loc[["F1", "F2", "F3"], "verdict"] == "contradicted").all()
    # a finding whose schemes were not run gets no row; F5 and F8 are decided over both tasks
    assert "F6" not in set(large.index.get_level_values(0)) and "F7" not in set(large.index.get_level_values(0))
    assert large.loc["F8"].index.tolist() == ["both"]
    # F8 uses the declared relative margin: multitask equal to the single-task IDs is above 0.9 x theirs
    big = _finding_hits(0.3, n=4000, n_seeds=5)
    table = vd.verdicts(vd.finding_pairs(big, evaluation=EV), alpha=EV.alpha).set_index(["finding", "task"])
    assert table.loc[("F8", "both"), "verdict"] == "reproduces"
    no_margin = replace(EV, noninferiority_margin=0.0, pareto_margin=0.0)
    strict = vd.verdicts(vd.finding_pairs(big, evaluation=no_margin), alpha=EV.alpha).set_index(["finding", "task"])
    assert strict.loc[("F8", "both"), "verdict"] == "inconclusive"  # no margin: equal recall cannot be shown
    pairs = vd.finding_pairs(_finding_hits(0.3), evaluation=EV)
    assert set(pairs) >= {"F1", "F2", "F3", "F4", "F8"} and "F5" not in pairs  # F5 needs constructions beyond
    assert (pairs["F8"].sided == "one").all() and (pairs["F1"].sided == "two").all()
    f4 = pairs["F4"]
    assert set(f4.weight) == {1.0, 0.8} and (f4.m == len(f4)).all()
    assert list(vd.pairs_file(f4).columns[:11]) == ["a", "b", "task", "diff", "ci_low", "ci_high", "p_value",
                                                    "p_holm", "detectable", "sided", "rec_protocol"]
    shown = ev.verdicts_table(large.reset_index(), run=["F1", "F6"])
    assert shown.set_index("finding").loc["F6", "verdict"] == "not run"


def test_f5_pareto_better_needs_a_win_and_non_inferiority_one_sided():
    from jointsid_utils.evaluation import verdicts as vd

    # multitask at 0.6 on both tasks; "win" is better on rec and equal on search, "loss" better on rec but
    # 0.15 below on search (outside a 10% margin), "equal" equal on both
    extra = {"win/rq_kmeans": (0.6, 0.75), "loss/rq_kmeans": (0.45, 0.75), "equal/rq_kmeans": (0.6, 0.6)}
    hits = _finding_hits(0.3, n=3000, n_seeds=5, extra=extra)
    pairs = vd.finding_pairs(hits, joint=list(extra), evaluation=replace(EV, pareto_margin=0.1))["F5"]
    assert set(pairs.candidate) == set(extra) and len(pairs) == 12 and (pairs.m == 12).all()
    assert (pairs.sided == "one").all() and set(pairs.test) == {"superiority", "noninferiority"}
    ni = pairs[pairs.test == "noninferiority"]
    assert set(ni.weight) == {0.9}
    assert set(vd.finding_pairs(hits, evaluation=EV, joint=["win/rq_kmeans"])["F5"].weight) == {1.0, 0.95}  # the declared 5%
    # one-sided numbers: p of H1 a - w b > 0, and a one-sided detectable difference
    row = pairs.iloc[0]
    assert row.p_value == pytest.approx(float(1 - __import__("scipy").stats.t.cdf(row["diff"] / row.se, row.df)))
    two = stats.minimum_detectable_difference(row.se, alpha=0.05 / 12, power=EV.power, df=row.df)
    assert row.detectable == pytest.approx(stats.minimum_detectable_difference(row.se, alpha=0.05 / 12, power=EV.power, df=row.df,
                                                                               sided="one")) and row.detectable < two
    verdict = vd.verdicts({"F5": pairs}, alpha=EV.alpha).set_index("finding").loc["F5"]
    assert verdict.verdict == "reproduces" and verdict.candidate == "win/rq_kmeans" and verdict.sided == "one"
    # each candidate alone, with the family's Holm p (m = 12)
    only_loss = vd.verdicts({"F5": pairs[pairs.candidate == "loss/rq_kmeans"]}, alpha=EV.alpha).iloc[0]
    assert only_loss.verdict == "contradicted"  # significantly below 0.9 x multitask on search
    only_equal = vd.verdicts({"F5": pairs[pairs.candidate == "equal/rq_kmeans"]}, alpha=EV.alpha).iloc[0]
    assert only_equal.verdict == "inconclusive"  # non-inferior on both, better on neither
    with pytest.raises(StudyInputError, match="pareto_margin"):
        from jointsid_utils.config import EvaluationConfig
        EvaluationConfig(pareto_margin=0.2)


