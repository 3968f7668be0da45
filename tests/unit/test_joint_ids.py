"""Notebook 07's joint ID constructions (``jointsid_utils.joint``): shapes, unique IDs, seeds, caching, and each idea's property."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest

from jointsid_utils.errors import StudyInputError
from jointsid_utils.generator.tokenization import make_id_scheme
from jointsid_utils.study import INCUMBENT, TWO_ID_SCHEMES
from jointsid_utils.ids import schemes as sid
from jointsid_utils.joint import constructions as joint
from jointsid_utils.joint import report as joint_report
from jointsid_utils.joint.balanced import capacitated_assign, greedy_residual_codes, unique_residual_codes
from jointsid_utils.joint.shared_task import shared_then_task_fit, unit_rows
from jointsid_utils.quantizers.rq_kmeans import RQKMeans

from joint_fixtures import N, config, runs, unique_rows, vectors


# the pure balanced assignment -------------------------------------------------------------------

def test_capacitated_assign_keeps_the_nearest_and_never_exceeds_capacity():
    g = np.random.default_rng(1)
    dist, groups = g.random((200, 5)), g.integers(0, 7, 200)
    codes = capacitated_assign(dist, groups, 8)
    _, counts = np.unique(np.c_[groups, codes], axis=0, return_counts=True)
    assert counts.max() <= 8 and (codes >= 0).all()
    nearest = dist.argmin(1)
    assert (codes != nearest).any()  # some codes overflowed, so the rule below is exercised
    for grp in range(7):
        for code in range(5):
            chose = np.flatnonzero((groups == grp) & (nearest == code))
            kept = chose[np.argsort(dist[chose, code], kind="stable")[:8]]
            assert (codes[kept] == code).all()  # the nearest `capacity` of a code keep it
            if len(chose) <= 8:
                assert (codes[chose] == code).all()  # a code with room moves nobody
    with pytest.raises(StudyInputError, match="cannot fit 5 codes x 2 items"):
        capacitated_assign(dist, np.zeros(200, dtype=int), 2)


def test_unique_codes_move_only_colliding_items_when_level_one_has_room():
    g = np.random.default_rng(2)
    centres = np.eye(8, 16, dtype=np.float32) * 10
    X = (np.repeat(centres, 5, axis=0) + g.normal(scale=0.3, size=(40, 16))).astype(np.float32)
    cents = [centres, g.normal(scale=0.3, size=(8, 16)).astype(np.float32)]
    free, codes = greedy_residual_codes(X, cents), unique_residual_codes(X, cents)
    assert (codes[:, 0] == free[:, 0]).all()  # 5 items per first-level code: level 1 never overflows
    assert unique_rows(codes) and not unique_rows(free)
    _, inverse, counts = np.unique(free, axis=0, return_inverse=True, return_counts=True)
    moved = (codes != free).any(1)
    assert not moved[counts[inverse.reshape(-1)] == 1].any()  # items with an ID of their own keep it
    assert moved.sum() == len(X) - len(counts)  # one item per colliding group keeps the shared ID


def test_unique_codes_hold_when_a_first_level_code_overflows_and_fail_when_impossible():
    g = np.random.default_rng(3)
    X = g.normal(scale=0.1, size=(60, 4)).astype(np.float32)
    cents = [np.r_[np.zeros((1, 4)), np.full((7, 4), 5.0)].astype(np.float32), g.normal(size=(8, 4)).astype(np.float32)]
    assert (greedy_residual_codes(X, cents)[:, 0] == 0).all()  # every item wants the same first code
    codes = unique_residual_codes(X, cents)
    assert unique_rows(codes) and np.bincount(codes[:, 0]).max() <= 8
    with pytest.raises(StudyInputError, match="65 items cannot all get distinct IDs from codebooks of sizes \\[8, 8\\]"):
        unique_residual_codes(np.vstack([X, X[:5]]), cents)


# the three constructions -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["multitask_cf", "shared_then_task"])
def test_a_training_seed_refits_a_construction_beside_the_study_seed(name, runs):
    """``seed=1`` under study seed 0 fits the construction with seed 1 into ``<scheme>__seed1``: the same codes
    as a study seed of 1, while the study seed's files keep their name and codes."""
    v, quantizer = vectors(), joint.construction(name).quantizer
    study, _ = joint.build_joint_ids(config(0), name, v)
    refit, diag = joint.build_joint_ids(config(0), name, v, seed=1)
    alone, _ = joint.build_joint_ids(config(1), name, v, runs / "study_seed1")
    assert (runs / config(0).folder / "ids" / f"{name}__{quantizer}__seed1.npy").exists() and diag["config"]["seed"] == 1
    np.testing.assert_array_equal(refit, alone)
    np.testing.assert_array_equal(sid.load_ids(config(0), name, quantizer, seed=1).codes, refit)
    np.testing.assert_array_equal(sid.load_ids(config(0), name, quantizer).codes, study)
    assert (refit != study).any()


def test_shared_then_task_shares_column_zero_and_refines_each_task(runs):
    v = vectors()
    codes, diag = joint.build_joint_ids(config(0), "shared_then_task", v)
    ids = sid.load_ids(config(0), "shared_then_task", "rq_kmeans")
    assert diag["layout"]["shared_columns"] == [0, 3]
    np.testing.assert_array_equal(ids.search[:, 0], ids.rec[:, 0])
    assert (ids.search[:, 1] != ids.rec[:, 1]).any()  # task levels come from different spaces
    assert make_id_scheme("shared_then_task", codes).namespaces == {"search": ("L", "s", "s"), "rec": ("L", "r", "r")}
    assert set(diag["blocks"]) == {"search", "rec"} and len(sid.diagnostics_table({("shared_then_task", "rq_kmeans"):
                                                                                 (codes, diag)})) == 2
    # level 0 depends on the shared vectors only; the task levels on the task vectors only
    shuffled = {**v, "search": v["search"][::-1].copy()}
    a, _ = shared_then_task_fit(v["multitask"], {"search": v["search"], "rec": v["rec"]}, codebook_size=4, seed=0)
    b, _ = shared_then_task_fit(v["multitask"], {"search": shuffled["search"], "rec": v["rec"]}, codebook_size=4, seed=0)
    np.testing.assert_array_equal(a["search"][:, 0], b["search"][:, 0])
    np.testing.assert_array_equal(a["rec"], b["rec"])
    assert (a["search"][:, 1] != b["search"][:, 1]).any()
    with pytest.raises(StudyInputError, match="use levels >= 2"):
        shared_then_task_fit(v["multitask"], {"rec": v["rec"]}, levels=1, codebook_size=4)


def test_shared_then_task_options_change_what_they_should(runs):
    v = vectors()
    base, _ = joint.build_joint_ids(config(0, shared_input="multitask"), "shared_then_task", v)
    cf, diag = joint.build_joint_ids(config(0, shared_input="multitask_cf", cf_weight=2.0), "shared_then_task", v,
                                     runs / "cf")
    assert diag["config"]["cf_weight"] == 2.0 and (cf[:, 0] != base[:, 0]).any()
    assert "cf_weight" not in joint.resolved_settings(config(0, shared_input="multitask"), "shared_then_task")
    mt, _ = joint.build_joint_ids(config(0, shared_input="multitask", search_space="multitask"), "shared_then_task",
                                  v, runs / "mt")
    np.testing.assert_array_equal(mt[:, 3:], base[:, 3:])  # the rec block does not read the search space
    assert (mt[:, 1] != base[:, 1]).any()
    with pytest.raises(StudyInputError, match="joint_ids.search_space='text' is not supported"):
        joint.build_joint_ids(config(0, search_space="text"), "shared_then_task", v)


def test_balanced_unique_has_no_dedup_token_and_reports_what_it_moved(runs):
    v = vectors()
    codes, diag = joint.build_joint_ids(config(0), "balanced_unique", v)
    assert diag["config"]["codebook_size"] == 8  # 4 x 4 IDs cannot name 60 items: grown to 8 (64 IDs)
    assert diag["collision_rate"] == 0 and diag["max_items_per_prefix"] == 1 and diag["dedup_level_size"] is None
    assert diag["collision_rate_before_reassignment"] > 0 and 0 < diag["moved_share"] < 1
    assert diag["reconstruction_mse"] >= diag["reconstruction_mse_before_reassignment"]
    q = RQKMeans(levels=2, codebook_size=8, seed=0, niter=25).fit(unit_rows(v["multitask"]))
    free = greedy_residual_codes(unit_rows(v["multitask"]), q.centroids)
    assert diag["moved_items"] == int((codes != free).any(1).sum())
    with pytest.raises(StudyInputError, match="unique_codebook_size=5 gives 25 IDs of 2 levels for 60 items; "
                                              "use at least 8"):
        joint.build_joint_ids(config(0, unique_codebook_size=5), "balanced_unique", v, runs / "small")


def test_multitask_cf_weight_zero_is_multitask_alone_and_the_weight_matters(runs):
    v = vectors()
    zero, diag = joint.build_joint_ids(config(0, cf_weight=0.0), "multitask_cf", v)
    plain = RQKMeans(levels=2, codebook_size=4, seed=0, niter=25).fit(unit_rows(v["multitask"]))
    np.testing.assert_array_equal(zero[:, :2], plain.encode(unit_rows(v["multitask"])))
    heavy, _ = joint.build_joint_ids(config(0, cf_weight=3.0), "multitask_cf", v, runs / "heavy")
    assert (heavy[:, :2] != zero[:, :2]).any() and diag["config"]["cf_weight"] == 0.0
    with pytest.raises(StudyInputError, match="cf_weight is -1.0; use a finite weight >= 0"):
        joint.build_joint_ids(config(0, cf_weight=-1.0), "multitask_cf", v)


# caching, inputs, and the existing schemes' keys ----------------------------------------------------


def test_bad_names_and_missing_embeddings_fail_with_one_sentence(runs):
    v = vectors()
    with pytest.raises(StudyInputError, match="Unknown joint ID construction 'shared'"):
        joint.prepare_joint_ids(config(0), v, ["shared"], progress=False)
    with pytest.raises(StudyInputError, match="need the rec embedding.*run notebook 02"):
        joint.build_joint_ids(config(0), "multitask_cf", {"multitask": v["multitask"]})
    with pytest.raises(StudyInputError, match="different numbers of rows"):
        joint.build_joint_ids(config(0), "multitask_cf", {**v, "rec": v["rec"][:-1]})
    for name, c in joint.JOINT_CONSTRUCTIONS.items():  # the generator's two-block list agrees with the registry
        assert c.two_block == (name in TWO_ID_SCHEMES)


def test_neighbour_agreement_follows_the_space_the_ids_were_built_in(runs):
    v = vectors()
    g = np.random.default_rng(3)
    v["rec"] = g.normal(size=(N, 8)).astype(np.float32)  # a rec space unrelated to the topics
    results = sid.prepare_ids(config(0), v, [("search", "rq_kmeans"), ("rec", "rq_kmeans")], progress=False)
    table = joint_report.neighbour_agreement(results, v, k=5)
    assert ((table >= 0) & (table <= 1)).all().all()
    on_search, on_rec = table.loc[("search", "rq_kmeans")], table.loc[("rec", "rq_kmeans")]
    assert on_search.search_neighbours_same_first_code > on_rec.search_neighbours_same_first_code
    assert on_rec.rec_neighbours_same_first_code > on_search.rec_neighbours_same_first_code
    validation = pd.DataFrame([{"embedding": e, "quantizer": "rq_kmeans", "seed": k, "task": t, "recall_at_30": r}
                               for e in ("search", "rec") for k in (0, 1) for t, r in (("search", 0.5), ("rec", 0.2))])
    fig = joint_report.plot_agreement_vs_recall(table, validation, "test")
    assert len(fig.axes) == 2 and [t.get_text() for t in fig.legends[0].get_texts()] == ["search", "rec"]


def test_generator_jobs_of_a_seed_train_on_that_seeds_ids(runs):
    """Notebook 05's path: ``prepare_scheme_ids`` builds every other seed's IDs from the stored embeddings, and
    each planned job carries the codes of its own seed (a seed replicates the IDs and the model together)."""
    from generator_fixtures import toy_data
    from jointsid_utils.embeddings.registry import embedding_path
    from jointsid_utils.generator import orchestration as study

    cfg, v = config(0), vectors()
    for name, matrix in v.items():
        embedding_path(cfg, name).parent.mkdir(parents=True, exist_ok=True)
        np.save(embedding_path(cfg, name), matrix)
    schemes = [INCUMBENT, ("multitask_cf", "rq_kmeans")]
    with pytest.raises(StudyInputError, match="multitask__rq_kmeans.npy is missing.*notebook 03"):
        study.prepare_scheme_ids(cfg, schemes, [0, 1])  # the study seed's IDs are notebook 03's to build
    sid.prepare_ids(cfg, v, [INCUMBENT], progress=False)
    codes = study.prepare_scheme_ids(cfg, schemes, [0, 1])
    for scheme in schemes:
        np.testing.assert_array_equal(codes[1][scheme], sid.load_ids(cfg, *scheme, seed=1).codes)
        assert sid.load_ids(cfg, *scheme, seed=1).diagnostics["config"]["seed"] == 1
    assert any((codes[0][s] != codes[1][s]).any() for s in schemes)
    items, inter, queries, _ = toy_data()
    jobs = study._plan_jobs(cfg, schemes, [0, 1], items, inter, queries, retrain=False, threads=1)
    assert len(jobs) == 4
    for job in jobs:
        np.testing.assert_array_equal(job["codes"], codes[job["seed"]][job["scheme"]])
    assert len({job["key"] for job in jobs}) == 4
