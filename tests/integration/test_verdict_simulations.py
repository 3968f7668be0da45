"""Verdicts on simulated hits big enough to decide each way, and F5's one-sided Pareto rule."""

from dataclasses import replace

import pytest

from jointsid_utils.config import EvaluationConfig
from jointsid_utils.errors import StudyInputError
from jointsid_utils.evaluation import report as ev
from jointsid_utils.evaluation import statistics as stats

from finding_hits import finding_hits

EV = EvaluationConfig()  # the profiles' evaluation settings, passed explicitly as the notebooks pass the run's


def test_verdicts_on_simulated_effects():
    from jointsid_utils.evaluation import verdicts as vd

    large = vd.verdicts(vd.finding_pairs(finding_hits(0.3), evaluation=EV), alpha=EV.alpha).set_index(["finding", "task"])
    assert (large.loc[[("F1", "search"), ("F1", "rec"), ("F2", "search"), ("F3", "rec")], "verdict"]
            == "reproduces").all()
    assert large.loc[("F4", "search"), "verdict"] == "reproduces"
    none = vd.verdicts(vd.finding_pairs(finding_hits(0.0), evaluation=EV), alpha=EV.alpha).set_index(["finding", "task"])
    assert (none.loc[["F1", "F2", "F3"], "verdict"] == "inconclusive").all()
    assert (none.loc[["F1", "F2", "F3"], "detectable"] > 0).all()
    reversed_ = vd.verdicts(vd.finding_pairs(finding_hits(-0.2), evaluation=EV), alpha=EV.alpha).set_index(["finding", "task"])
    assert (reversed_.loc[["F1", "F2", "F3"], "verdict"] == "contradicted").all()
    # a finding whose schemes were not run gets no row; F5 and F8 are decided over both tasks
    assert "F6" not in set(large.index.get_level_values(0)) and "F7" not in set(large.index.get_level_values(0))
    assert large.loc["F8"].index.tolist() == ["both"]
    # F8 uses the declared relative margin: multitask equal to the single-task IDs is above 0.9 x theirs
    big = finding_hits(0.3, n=4000, n_seeds=5)
    table = vd.verdicts(vd.finding_pairs(big, evaluation=EV), alpha=EV.alpha).set_index(["finding", "task"])
    assert table.loc[("F8", "both"), "verdict"] == "reproduces"
    no_margin = replace(EV, noninferiority_margin=0.0, pareto_margin=0.0)
    strict = vd.verdicts(vd.finding_pairs(big, evaluation=no_margin), alpha=EV.alpha).set_index(["finding", "task"])
    assert strict.loc[("F8", "both"), "verdict"] == "inconclusive"  # no margin: equal recall cannot be shown
    pairs = vd.finding_pairs(finding_hits(0.3), evaluation=EV)
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
    hits = finding_hits(0.3, n=3000, n_seeds=5, extra=extra)
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


