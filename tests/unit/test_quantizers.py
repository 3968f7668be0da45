"""Quantizers' collision handling, ID diagnostics, the ID build step and bad input, on small synthetic data.

Each quantizer's fit on planted clusters is in tests/integration/test_quantizer_fits.py.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from jointsid_utils.errors import StudyInputError
from jointsid_utils.ids.build import build_ids
from jointsid_utils.quantizers import (QUANTIZERS, collision_rate, deduplicate, level_stats,
                                       make_quantizer, max_items_per_prefix, perplexity, prefix_share_ids,
                                       scheme_diagnostics, separate_ids)

from planted_clusters import K, L, data, planted


def test_rq_kmeans_faiss_residual_quantizer_backend(data):
    X, labels = data
    a = make_quantizer("rq_kmeans", levels=L, codebook_size=K, backend="residual_quantizer").fit(X)
    b = make_quantizer("rq_kmeans", levels=L, codebook_size=K, backend="residual_quantizer").fit(X)
    np.testing.assert_array_equal(a.encode(X), b.encode(X))
    assert a.encode(X).max() < K and adjusted_rand_score(labels, a.encode(X)[:, 0]) > 0.5


# --- collisions and diagnostics ------------------------------------------------------------------
def test_deduplicate_numbers_items_per_prefix():
    codes = np.array([[1, 2], [0, 0], [1, 2], [3, 3], [1, 2], [0, 0]])
    out = deduplicate(codes, seed=0)
    np.testing.assert_array_equal(out[:, :2], codes)
    assert sorted(out[[0, 2, 4], 2]) == [0, 1, 2] and sorted(out[[1, 5], 2]) == [0, 1] and out[3, 2] == 0
    assert out.dtype == np.int64 and np.unique(out, axis=0).shape[0] == len(out)
    assert collision_rate(codes) == pytest.approx(5 / 6)
    assert max_items_per_prefix(codes) == 3
    single = np.arange(6)[:, None]
    assert collision_rate(single) == 0.0 and deduplicate(single, seed=0)[:, 1].max() == 0


def test_dedup_order_is_seeded_and_not_the_item_index():
    codes = np.repeat(np.arange(50), 8)[:, None]  # 50 prefixes of 8 items each, in index order
    a, again, other = (deduplicate(codes, seed=s)[:, 1] for s in (0, 0, 1))
    np.testing.assert_array_equal(a, again)
    assert not np.array_equal(a, other)
    index_order = np.tile(np.arange(8), 50)
    for counters in (a, other):  # each group holds 0..7 once: the same counters, in another order
        np.testing.assert_array_equal(np.sort(counters.reshape(50, 8), axis=1), index_order.reshape(50, 8))
    # a uniform order gives counter 0 to the group's first item 1 time in 8; index order always does
    assert np.mean(a.reshape(50, 8)[:, 0] == 0) < 0.4
    assert np.mean(a == index_order) < 0.3
    with pytest.raises(StudyInputError, match="integer seed"):
        deduplicate(codes, seed=None)


def test_level_stats_on_a_constructed_case():
    column = np.array([0] * 4 + [1] * 2 + [2] * 2)  # p = 1/2, 1/4, 1/4 -> H = 1.5 bits
    stats = level_stats(column, codebook_size=8)
    assert stats == {"codebook_size": 8, "used": 3, "perplexity": pytest.approx(2 ** 1.5), "top_code_share": 0.5}
    assert perplexity(np.zeros(10)) == pytest.approx(1.0)
    assert perplexity(np.arange(16)) == pytest.approx(16.0)


def test_scheme_diagnostics_has_the_study_contract_fields():
    codes = np.array([[0, 1], [0, 1], [1, 0], [2, 0]])
    diag = scheme_diagnostics(codes, 4, quantizer="x", config={}, reconstruction_mse=None, fit_seconds=1.0,
                              encode_seconds=0.1)
    assert diag["collision_rate"] == 0.5 and diag["max_items_per_prefix"] == 2 and diag["n_items"] == 4
    assert [lv["used"] for lv in diag["levels"]] == [3, 2]
    assert diag["levels"][0]["top_code_share"] == 0.5 and diag["reconstruction_mse"] is None
    assert {"fit_seconds", "encode_seconds", "quantizer", "config"} <= diag.keys()


# --- prefix_share and separate ------------------------------------------------------------------
def test_prefix_share_shares_column_zero_and_dedups_to_unique_ids():
    s, labels = planted(seed=1)
    r, _ = planted(seed=2)
    sc, rc = prefix_share_ids(s, r, levels=2, codebook_size=K, seed=0)
    assert sc.shape == rc.shape == (400, 2)
    np.testing.assert_array_equal(sc[:, 0], rc[:, 0])
    assert not np.array_equal(sc[:, 1], rc[:, 1])  # task-specific codebooks
    for codes in (sc, rc):
        assert np.unique(deduplicate(codes, seed=0), axis=0).shape[0] == 400
    again = prefix_share_ids(s, r, levels=2, codebook_size=K, seed=0)
    np.testing.assert_array_equal(again[0], sc)


def test_separate_ids_fit_one_quantizer_per_task():
    s, _ = planted(seed=1)
    r, _ = planted(seed=2)
    sc, rc = separate_ids(s, r, lambda: make_quantizer("rq_kmeans", levels=L, codebook_size=K))
    np.testing.assert_array_equal(sc, make_quantizer("rq_kmeans", levels=L, codebook_size=K).fit(s).encode(s))
    assert rc.shape == (400, L)


# --- build_ids: files, layout, cache ------------------------------------------------------------
def test_build_ids_writes_npy_and_json_and_caches(tmp_path, data):
    X, _ = data
    codes, diag = build_ids("content", "rq_kmeans", X, tmp_path, levels=L, codebook_size=K)
    saved = np.load(tmp_path / "content__rq_kmeans.npy")
    np.testing.assert_array_equal(saved, codes)
    assert saved.dtype == np.int64 and saved.shape == (400, L + 1) and np.unique(saved, axis=0).shape[0] == 400
    on_disk = json.loads((tmp_path / "content__rq_kmeans.json").read_text())
    for key in ("collision_rate", "max_items_per_prefix", "levels", "reconstruction_mse", "fit_seconds",
                "encode_seconds", "n_items", "quantizer", "config"):
        assert key in on_disk
    started = time.perf_counter()
    again, diag2 = build_ids("content", "rq_kmeans", X, tmp_path, levels=L, codebook_size=K)
    assert time.perf_counter() - started < 0.5 and diag2 == on_disk
    np.testing.assert_array_equal(again, codes)
    (tmp_path / "content__rq_kmeans.json").unlink()  # a lost JSON triggers a rebuild, not a crash
    build_ids("content", "rq_kmeans", X, tmp_path, levels=L, codebook_size=K)
    assert (tmp_path / "content__rq_kmeans.json").exists()


@pytest.mark.parametrize("scheme", ["separate", "prefix_share"])
def test_build_ids_two_block_layout(tmp_path, scheme):
    s, _ = planted(seed=1)
    r, _ = planted(seed=2)
    codes, diag = build_ids(scheme, "rq_kmeans", (s, r), tmp_path, levels=L, codebook_size=K)
    assert codes.shape == (400, 2 * (L + 1))
    assert diag["layout"]["search"] == [0, L + 1] and diag["layout"]["rec"] == [L + 1, 2 * L + 2]
    for block in (codes[:, :L + 1], codes[:, L + 1:]):
        assert np.unique(block, axis=0).shape[0] == 400
    if scheme == "prefix_share":
        np.testing.assert_array_equal(codes[:, 0], codes[:, L + 1])
    assert len(diag["levels"]) == 2 * L and set(diag["blocks"]) == {"search", "rec"}


# --- bad input: one sentence, one exception type ---------------------------------------------------
GOOD = planted()[0]


@pytest.mark.parametrize("name", list(QUANTIZERS))
@pytest.mark.parametrize("X, needle", [
    (np.zeros((0, 32), np.float32), "empty"),
    (np.where(np.arange(32) == 3, np.nan, 1.0)[None].repeat(50, 0).astype(np.float32), "NaN"),
    (np.full((50, 32), np.inf, np.float32), "infinite"),
    (np.ones(32, np.float32), "2-d"),
    (GOOD[:5], "larger than the 5 items"),
])
def test_bad_input_raises_study_input_error(name, X, needle):
    with pytest.raises(StudyInputError, match=needle):
        make_quantizer(name, levels=L, codebook_size=K).fit(X)


@pytest.mark.parametrize("name", list(QUANTIZERS))
@pytest.mark.parametrize("config, needle", [
    (dict(codebook_size=1), "at least 2"),
    (dict(levels=0), "levels >= 1"),
    (dict(levels=2.5), "expects int"),
    (dict(not_a_knob=1), "unknown parameter 'not_a_knob'"),
])
def test_bad_config_raises_study_input_error(name, config, needle):
    with pytest.raises(StudyInputError, match=needle):
        make_quantizer(name, **{"levels": L, "codebook_size": K, **config})


def test_other_bad_inputs_raise_study_input_error(tmp_path):
    with pytest.raises(StudyInputError, match="choose one of: rq_kmeans, rq_vae, residual_lfq, dict_learning"):
        make_quantizer("rq_vq")
    with pytest.raises(StudyInputError, match="power of two"):
        make_quantizer("residual_lfq", codebook_size=12)
    with pytest.raises(StudyInputError, match="normalize"):
        make_quantizer("rq_vae", normalize="zscore")
    with pytest.raises(StudyInputError, match="before fit"):
        make_quantizer("rq_kmeans").encode(GOOD)
    q = make_quantizer("rq_kmeans", codebook_size=K).fit(GOOD)
    with pytest.raises(StudyInputError, match="columns"):
        q.encode(GOOD[:, :16])
    with pytest.raises(StudyInputError, match="rows"):
        prefix_share_ids(GOOD, GOOD[:10], codebook_size=K)
    with pytest.raises(StudyInputError, match="levels"):
        prefix_share_ids(GOOD, GOOD, levels=0, codebook_size=K)
    with pytest.raises(StudyInputError, match="tuple"):
        build_ids("separate", "rq_kmeans", GOOD, tmp_path, codebook_size=K)
    with pytest.raises(StudyInputError, match="integer"):
        deduplicate(np.zeros((3, 2), np.float32), seed=0)
