"""The semantic-ID stage: config mapping, every scheme built and cached, blocks split, bad schemes rejected."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jointsid_utils import study
from jointsid_utils.ids import schemes as sid
from jointsid_utils.config import load_config
from jointsid_utils.errors import StudyInputError
from jointsid_utils.quantizers import QUANTIZERS, RQVAE, deduplicate


# small budgets: the stage logic is under test, not the quantizers (tests/unit/test_quantizers.py)
FAST = {"ids.codebook_size": 4, "ids.rq_vae_steps": 10, "ids.rq_vae_log_every": 5, "ids.lfq_steps": 10,
        "ids.dict_max_iter": 2}


def vectors(n: int = 60, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    dims = {"content": 16, "search": 16, "rec": 8, "fused_concat": 24, "fused_svd": 8, "multitask": 16}
    return {m: rng.normal(size=(n, d)).astype(np.float32) for m, d in dims.items()}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JOINTSID_RUNS_DIR", str(runs))
        cfg = load_config("smoke", {**FAST, "seed": 5})  # not the default 0, so a dropped seed shows
        yield cfg, runs, sid.prepare_ids(cfg, vectors(), progress=False)


def test_quantizer_kwargs_maps_config():
    cfg = load_config("default", {"seed": 3, "ids.codebook_size": 32, "ids.rq_vae_steps": 77, "ids.lfq_steps": 11,
                                  "ids.dict_alpha": 0.5, "ids.rq_kmeans_niter": 9})
    base = {"levels": 2, "codebook_size": 32, "seed": 3}
    assert sid.quantizer_kwargs(cfg, "rq_kmeans") == {**base, "backend": "kmeans", "niter": 9}
    assert sid.quantizer_kwargs(cfg, "rq_vae")["steps"] == 77
    assert sid.quantizer_kwargs(cfg, "residual_lfq")["steps"] == 11
    assert sid.quantizer_kwargs(cfg, "dict_learning")["alpha"] == 0.5
    for name in QUANTIZERS:  # every mapping is a valid config of its quantizer
        QUANTIZERS[name](**sid.quantizer_kwargs(cfg, name))
    with pytest.raises(StudyInputError, match="Unknown quantizer"):
        sid.quantizer_kwargs(cfg, "kmeans++")
    assert sid.scheme_kwargs(load_config("default", {"ids.prefix_share_codebook_size": 16}), "prefix_share",
                             "rq_kmeans")["codebook_size"] == 16


def test_a_later_subclass_gets_budget_knobs_only(monkeypatch):
    class Fixed(RQVAE):
        name = "rq_vae_fixed"

    monkeypatch.setitem(QUANTIZERS, "rq_vae_fixed", Fixed)
    cfg = load_config("default", {"ids.rq_vae_steps": 55, "ids.rq_vae_lr": 0.5})
    kw = sid.quantizer_kwargs(cfg, "rq_vae_fixed")
    assert kw["steps"] == 55 and "lr" not in kw


def test_schemes_cover_study_tables_with_registered_quantizers():
    got = set(sid.SCHEMES)
    assert {q for _, q in got} <= set(QUANTIZERS)
    assert {(e, "rq_kmeans") for e in study.TABLE_A} <= got
    assert {("multitask", q) for q in study.TABLE_B_QUANTIZERS} <= got
    assert {("content", q) for q in study.TABLE_B_QUANTIZERS} <= got


def test_prepare_ids_builds_every_scheme_with_unique_ids(built):
    cfg, runs, results = built
    assert set(results) == set(sid.SCHEMES)
    for (emb, quant), (codes, diag) in results.items():
        assert (runs / cfg.folder / "ids" / f"{emb}__{quant}.npy").exists()
        loaded = sid.load_ids(cfg, emb, quant)
        np.testing.assert_array_equal(loaded.codes, codes)
        for block in (loaded.search, loaded.rec):
            assert block.shape == (60, cfg.ids.levels + 1)
            assert len(np.unique(block, axis=0)) == len(block), f"{emb}__{quant}: IDs not unique"


def test_load_ids_splits_two_block_schemes(built):
    cfg, _, results = built
    for emb in ("separate", "prefix_share"):
        ids = sid.load_ids(cfg, emb, "rq_kmeans")
        L = cfg.ids.levels + 1
        assert ids.two_block and ids.codes.shape[1] == 2 * L
        np.testing.assert_array_equal(ids.search, ids.codes[:, :L])
        np.testing.assert_array_equal(ids.for_task("rec"), ids.codes[:, L:])
    shared = sid.load_ids(cfg, "prefix_share", "rq_kmeans")
    np.testing.assert_array_equal(shared.search[:, 0], shared.rec[:, 0])
    one = sid.load_ids(cfg, "content", "rq_kmeans")
    assert not one.two_block and one.search is one.rec


def test_dedup_level_follows_the_study_seed(built):
    cfg, _, results = built
    differs = 0
    for emb, quant in results:
        ids = sid.load_ids(cfg, emb, quant)
        for block in (ids.search, ids.rec):
            np.testing.assert_array_equal(block, deduplicate(block[:, :-1], seed=cfg.seed), f"{emb}__{quant}")
            differs += not np.array_equal(block, deduplicate(block[:, :-1], seed=0))
    assert differs > 0  # another seed numbers some group differently: the check can fail


def test_a_training_seed_refits_every_quantizer_into_its_own_files(built):
    """Seed s's IDs are fit with seed s (the embeddings are the same); the study seed's keep the plain name."""
    cfg, runs, results = built
    ids_dir = runs / cfg.folder / "ids"
    plain = {p.name: p.stat().st_mtime_ns for p in ids_dir.glob("*.npy")}
    todo = [("multitask", q) for q in study.TABLE_B_QUANTIZERS] + [("prefix_share", "rq_kmeans")]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JOINTSID_RUNS_DIR", str(runs))
        refit = sid.prepare_ids(cfg, vectors(), todo, seed=1, progress=False)
        assert sid.ids_stem(cfg, "multitask", "rq_vae", cfg.seed) == "multitask__rq_vae"
        for emb, quant in todo:
            codes, diag = refit[(emb, quant)]
            assert (ids_dir / f"{emb}__{quant}__seed1.npy").exists() and diag["config"]["seed"] == 1
            np.testing.assert_array_equal(sid.load_ids(cfg, emb, quant, seed=1).codes, codes)
            assert sid.load_ids(cfg, emb, quant, seed=cfg.seed).diagnostics["config"]["seed"] == cfg.seed
        with pytest.raises(StudyInputError, match="content__rq_kmeans__seed2.npy is missing"):
            sid.load_ids(cfg, "content", "rq_kmeans", seed=2)
    # the study seed's files are untouched, and a refit gives other codes for some quantizer (the check can fail)
    assert {n: t for n, t in plain.items()} == {p.name: p.stat().st_mtime_ns for p in ids_dir.glob("*.npy")
                                                if "__seed" not in p.name}
    assert any(not np.array_equal(refit[s][0], results[s][0]) for s in todo)


def test_second_call_reuses_the_cache(built):
    cfg, runs, results = built
    ids_dir = runs / cfg.folder / "ids"
    before = {p.name: p.stat().st_mtime_ns for p in ids_dir.glob("*.npy")}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JOINTSID_RUNS_DIR", str(runs))
        again = sid.prepare_ids(cfg, vectors(), progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in ids_dir.glob("*.npy")} == before
    for key, (codes, diag) in results.items():
        np.testing.assert_array_equal(again[key][0], codes)
        assert again[key][1]["cache_key"] == diag["cache_key"]


def test_diagnostics_table_has_a_row_per_id_set(built):
    _, _, results = built
    table = sid.diagnostics_table(results)
    assert len(table) == len(results) + 2  # separate and prefix_share: a search row and a rec row
    assert {"used L1", "ppl L2", "top L1", "collision_rate", "max_per_prefix", "recon_mse", "fit_s"} <= set(table)
    assert (table["used L1"] <= table["codebook"]).all()


@pytest.mark.parametrize("scheme, match", [
    (("content", "kmeans++"), "unknown quantizer"),
    (("bm25", "rq_kmeans"), "unknown embedding"),
    (("prefix_share", "rq_vae"), "residual k-means only"),
    ("content", "not an \\(embedding, quantizer\\) pair"),
])
def test_bad_schemes_fail_with_one_sentence(runs_dir, scheme, match):
    cfg = load_config("smoke", FAST)
    with pytest.raises(StudyInputError, match=match):
        sid.prepare_ids(cfg, vectors(), [scheme], progress=False)


def test_missing_embedding_fails_before_fitting(runs_dir):
    cfg = load_config("smoke", FAST)
    vecs = {k: v for k, v in vectors().items() if k != "rec"}
    with pytest.raises(StudyInputError, match="needs the rec embedding"):
        sid.prepare_ids(cfg, vecs, [("content", "rq_kmeans"), ("separate", "rq_kmeans")], progress=False)
    assert not list((runs_dir / "smoke" / "ids").glob("*.npy"))
    with pytest.raises(StudyInputError, match="run notebook 03"):
        sid.load_ids(cfg, "content", "rq_kmeans")


def test_codebook_sweep_and_genre_tools():
    cfg = load_config("smoke")
    X = vectors(n=80)["content"]
    sweep = sid.codebook_sweep(cfg, {"content": X}, sizes=(4, 8, 200))  # 200 > 80 items: skipped
    assert sorted(sweep.codebook_size.unique()) == [4, 8] and len(sweep) == 4
    summary = sid.sweep_summary(sweep)
    assert list(summary.codebook_size) == [4, 8] and summary.min_used_share.between(0, 1).all()
    items = pd.DataFrame({"title": [f"Movie {i}" for i in range(6)],
                          "genres": [["Drama"], ["Drama", "Comedy"], ["Comedy"], ["Drama"], ["Horror"], ["Comedy"]]})
    codes = np.array([[0, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 1], [2, 0, 0], [1, 1, 0]])
    m = sid.genre_code_matrix(items, codes, top=2)
    assert list(m.columns) == [0, 1] and m.loc["Drama (3)", 0] == 1.0 and m.loc["Comedy (3)", 1] == pytest.approx(2 / 3)
    ex = sid.example_ids(items, codes, ["movie 0"], levels=2)
    assert list(ex.title) == ["Movie 0", "Movie 3"] and ex.shared_levels.iloc[1] == 2


def test_recommend_codebook_size_takes_the_largest_size_with_every_level_in_use():
    summary = pd.DataFrame({"embedding": ["a", "a", "a", "b", "b", "b"], "codebook_size": [16, 32, 64] * 2,
                            "min_perplexity_share": [0.8, 0.5, 0.1, 0.7, 0.3, 0.2]})
    assert sid.recommend_codebook_size(summary) == 16
    assert sid.recommend_codebook_size(summary, min_perplexity_share=0.25) == 32
    assert sid.recommend_codebook_size(summary, min_perplexity_share=0.95) == 16
    assert sid.recommend_codebook_size(summary, embeddings=["a"]) == 32
