"""Embeddings stage: ENMF's efficient loss, fusions, the dense check, pair construction, fine-tuning, caching.

Kept tiny (a 24-item catalogue, one fine-tune of a few MiniLM steps) so the file runs in well under 90 s.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from jointsid_utils.config import load_config
from jointsid_utils.embeddings import registry
from jointsid_utils.embeddings.dense_check import dense_recall_at_30
from jointsid_utils.embeddings.enmf import ENMF, batch_pair_index, efficient_loss, naive_loss, pairs_of
from jointsid_utils.embeddings.fusion import fuse_concat, fuse_svd
from jointsid_utils.embeddings.inputs import (EmbeddingData, consecutive_item_pairs, finetune_queries, histories,
                                              item_text_pairs)
from jointsid_utils.embeddings.retrieval import top_k
from jointsid_utils.errors import StudyInputError

from embedding_fixtures import tiny


# ----------------------------------------------------------------------------- ENMF

def test_enmf_efficient_loss_equals_naive_loss_over_every_pair():
    gen = torch.Generator().manual_seed(0)
    n_users, n_items, dim, c0 = 5, 7, 3, 0.2
    p, q, h = (torch.randn(n_users, dim, generator=gen), torch.randn(n_items, dim, generator=gen),
               torch.randn(dim, generator=gen))
    r = (torch.rand(n_users, n_items, generator=gen) < 0.4).float()
    users, items = r.nonzero(as_tuple=True)
    efficient = efficient_loss(p, q, h, users, items, c0) + r.sum()  # + |obs|, the dropped constant
    assert torch.allclose(efficient, naive_loss(p, q, h, r, c0), rtol=1e-5)


def test_enmf_item_vectors_reproduce_the_score():
    model = ENMF(4, 6, 3)
    torch.nn.init.normal_(model.h)
    expected = torch.stack([(model.user[u] * model.item * model.h).sum(-1) for u in range(4)])
    assert torch.allclose(model.scores(), expected, atol=1e-6)


def test_batch_pair_index_selects_what_the_isin_mask_selects():
    rng = np.random.default_rng(0)
    hist = {u: rng.integers(0, 50, size=rng.integers(1, 9)) for u in range(0, 60, 2)}  # users with gaps
    pair_user, _ = pairs_of(hist)
    starts = np.searchsorted(pair_user, np.arange(61))
    for _ in range(20):
        batch = rng.permutation(np.array(sorted(hist)))[: rng.integers(1, 12)]
        expected = np.flatnonzero(np.isin(pair_user, batch))
        assert np.array_equal(batch_pair_index(batch, starts), expected)


# ----------------------------------------------------------------------------- fusions

def test_fusions_shapes_and_norms():
    rng = np.random.default_rng(0)
    search, rec = rng.normal(size=(30, 12)) * 5, rng.normal(size=(30, 4))
    concat = fuse_concat(search, rec)
    assert concat.shape == (30, 16) and concat.dtype == np.float32
    assert np.allclose(np.linalg.norm(concat[:, :12], axis=1), 1, atol=1e-5)
    assert np.allclose(np.linalg.norm(concat[:, 12:], axis=1), 1, atol=1e-5)
    svd = fuse_svd(search, rec)
    assert svd.shape == (30, 4) and svd.dtype == np.float32 and np.isfinite(svd).all()
    assert fuse_svd(rec, search).shape == (30, 4)  # argument order does not matter
    # equal dimensions: no SVD, just the sum of unit vectors
    assert np.allclose(fuse_svd(rec, rec), 2 * rec / np.linalg.norm(rec, axis=1, keepdims=True), atol=1e-5)


# ----------------------------------------------------------------------------- dense check

def test_dense_recall_on_a_constructed_case(tiny, runs_dir):
    items, interactions, queries = tiny
    cfg = load_config("smoke", {"embeddings.history_k": 2})
    # Item i's vector is one-hot on its genre: a user's history mean points at their genre.
    vectors = {"genre": np.eye(4, dtype=np.float32)[np.arange(24) % 4]}
    table = dense_recall_at_30(cfg, vectors, interactions, queries)
    rec = table.set_index("protocol")
    assert set(table.columns) >= {"embedding", "task", "recall_at_30", "n_cases", "protocol"}
    assert (table.n_cases == 12).all()
    # 6 items per genre, all tie at the top, so every test item is within the 30 returned
    assert rec.loc["all", "recall_at_30"] == 1.0 and rec.loc["exclude_history", "recall_at_30"] == 1.0
    results = runs_dir / cfg.folder / "results"
    assert len(pd.read_csv(results / "dense_recall_at_30_detail.csv")) == len(table)
    contract = pd.read_csv(results / "dense_recall_at_30.csv")  # STUDY.md §4: one row per (embedding, task)
    assert not contract.duplicated(["embedding", "task"]).any() and set(contract.protocol) == {"all"}


def test_dense_check_ranks_the_generators_search_cases(tiny, runs_dir, monkeypatch):
    import jointsid_utils.embeddings.dense_check as dc
    from jointsid_utils.generator.examples import generator_test_cases

    items, interactions, queries = tiny
    cfg = load_config("smoke", {"generator.search_eval_cases": 5})
    encoder = cfg.embeddings.base_encoder
    vectors = {"content": dc.encode(dc.load_encoder(encoder), items["text"].tolist())}
    encoded, real_encode = [], dc.encode

    def spy(model, texts, **kwargs):  # the real encoder; records which queries the check encodes
        encoded.extend(texts)
        return real_encode(model, texts, **kwargs)

    monkeypatch.setattr(dc, "encode", spy)
    table = dense_recall_at_30(cfg, vectors, interactions, queries, query_encoders={"content": encoder})
    search_cases, _ = generator_test_cases(cfg, items, interactions, queries)
    assert encoded == search_cases["query"].tolist() and len(encoded) == 5
    assert table[table.task == "search"].n_cases.tolist() == [5]


def test_dense_check_is_loaded_when_nothing_changed_and_recomputed_when_an_input_did(tiny, runs_dir, monkeypatch):
    from jointsid_utils.assets import encoder_path
    from jointsid_utils.embeddings import dense_check, finetune

    items, interactions, queries = tiny
    cfg = load_config("smoke", {"embeddings.history_k": 2})
    texts = items["text"].tolist()
    genre = dense_check.encode(dense_check.load_encoder(cfg.embeddings.base_encoder), texts)  # content vectors
    loads = []

    def counting_load(path):  # the real encoder, counted: a cache hit must not load (let alone run) it
        loads.append(str(path))
        return load_encoder(path)

    load_encoder = dense_check.load_encoder
    monkeypatch.setattr(dense_check, "load_encoder", counting_load)

    def check(vectors=None, qs=queries, encoder=cfg.embeddings.base_encoder, k_cfg=cfg):
        vectors = {"genre": genre} if vectors is None else vectors
        return dense_recall_at_30(k_cfg, vectors, interactions, qs, query_encoders={"genre": encoder})

    first = check()
    artifact = dense_check.dense_check_path(cfg)
    built = artifact.stat().st_mtime_ns
    assert len(loads) == 1 and set(first.task) == {"search", "rec"}
    (runs_dir / cfg.folder / "results" / "dense_recall_at_30.csv").unlink()
    again = check()
    assert len(loads) == 1 and artifact.stat().st_mtime_ns == built  # loaded, not recomputed
    pd.testing.assert_frame_equal(again, first)
    assert (runs_dir / cfg.folder / "results" / "dense_recall_at_30.csv").exists()  # the contract file rewritten

    check(qs=queries.assign(query=queries["query"] + " film"))  # other test queries
    assert len(loads) == 2
    shuffled = {"genre": genre[np.r_[1:24, 0]]}  # other vectors
    check(vectors=shuffled)
    assert len(loads) == 3 and artifact.stat().st_mtime_ns != built
    copy = shutil.copytree(encoder_path(cfg.embeddings.base_encoder), runs_dir / "encoder_copy")
    check(encoder=str(copy))  # another encoder: a local directory is known by its weights' sha256
    assert len(loads) == 4 and loads[-1] == str(copy)
    (copy / finetune.INFO).write_text('{"key_hash": "abc"}')  # a fine-tune's directory: by its own cache key
    assert dense_check.encoder_fingerprint(copy) == "trained:abc" and dense_check.TRAINED_INFO == finetune.INFO
    check(encoder=str(copy))
    assert len(loads) == 5
    check(k_cfg=load_config("smoke", {"embeddings.history_k": 3}))  # a config field the check reads
    assert len(loads) == 6
    check()  # back to the first inputs: the store still holds that table, so it loads, nothing is computed
    assert len(loads) == 6 and check().equals(first) and len(loads) == 6


def test_dense_checks_and_metrics_read_the_table():
    from jointsid_utils.embeddings.dense_check import columns, recall_of
    from jointsid_utils.embeddings.report import dense_checks, dense_metrics

    scores = {("content", "search"): 0.4, ("search", "search"): 0.56, ("multitask", "search"): 0.55,
              ("content", "rec"): 0.03, ("search", "rec"): 0.05, ("rec", "rec"): 0.14, ("multitask", "rec"): 0.06}
    rows = [(m, t, r, 10, protocol, "query" if t == "search" else "history_mean_10")
            for (m, t), r in scores.items() for protocol in ("all", "exclude_history")]
    rows += [("rec", "rec", 0.07, 10, "all", "enmf_user"), ("rec", "rec", 0.2, 10, "exclude_history", "enmf_user")]
    table = pd.DataFrame(rows, columns=columns(30))
    assert recall_of(table, "rec", "rec", user_vector="enmf_user") == 0.07
    assert np.isnan(recall_of(table, "rec", "search"))  # rec has no query encoder
    checks = dense_checks(table)
    assert len(checks) == 5 and all(checks.values())
    stronger_content = table.assign(recall_at_30=table.recall_at_30.where(
        (table.embedding != "content") | (table.task != "search"), 0.9))
    assert not dense_checks(stronger_content)["search beats content on search"]
    timings = pd.DataFrame({"method": ["content", "rec"], "build_seconds": [1.5, 2.0]})
    metrics = dense_metrics(table, ["content", "rec"], timings, checks)
    assert metrics["search_recall_at_30/search"] == 0.56 and metrics["rec_recall_at_30/rec_enmf_user"] == 0.07
    assert metrics["rec_recall_at_30_exclude_history/rec_enmf_user"] == 0.2
    assert metrics["build_seconds/rec"] == 2.0 and (metrics["checks_passed"], metrics["checks_total"]) == (5, 5)


def test_exclusion_removes_history_items_from_the_ranking():
    items = np.eye(5, dtype=np.float32)
    users = np.array([[1, 0.9, 0, 0, 0]], dtype=np.float32)
    assert top_k(users, items, k=2).tolist() == [[0, 1]]
    assert top_k(users, items, k=2, exclude=[np.array([0])])[0, 0] == 1


# ----------------------------------------------------------------------------- training pairs

def test_a_finetune_fits_every_train_query_and_validates_on_the_shared_validation_split(tiny):
    _, _, queries = tiny
    fit, val = finetune_queries(queries, n_val=5, seed=0)
    assert (fit.split == "train").all() and len(fit) == 48  # no train query is held out
    assert (val.split == "validation").all() and len(val) == 5  # the cap, drawn by the study seed
    every = finetune_queries(queries, n_val=None, seed=0)[1]
    assert len(every) == 24 and set(val["query"]) <= set(every["query"])  # one set, capped alike everywhere
    assert set(finetune_queries(queries, n_val=3, seed=0)[1]["query"]) <= set(val["query"])  # nested caps
    with pytest.raises(StudyInputError, match="no validation rows"):
        finetune_queries(queries[queries.split != "validation"], n_val=5, seed=0)


def test_multitask_item_pairs_are_consecutive_train_items_of_one_user(tiny):
    items, interactions, _ = tiny
    pairs = consecutive_item_pairs(interactions)
    train = histories(interactions, ("train",))
    expected = {(u, int(a), int(b)) for u, seq in train.items() for a, b in zip(seq[:-1], seq[1:])}
    assert set(zip(pairs.user_id, pairs.item_a, pairs.item_b)) == expected
    held_out = set(interactions.loc[interactions.split != "train", "item_id"]) - set(
        interactions.loc[interactions.split == "train", "item_id"])
    assert not held_out & (set(pairs.item_a) | set(pairs.item_b))
    text = item_text_pairs(interactions, items, n_pairs=5, seed=0)
    assert len(text) == 5 and (text.anchor == items.text.to_numpy()[text.item_a]).all()


# ----------------------------------------------------------------------------- cache and registry

def test_prepare_embeddings_reuses_the_cache_and_rebuilds_on_change(tiny, runs_dir, monkeypatch):
    items, interactions, queries = tiny
    calls = []

    def fake(data, cfg):
        calls.append(cfg.embeddings.enmf_dim)
        return np.ones((data.n_items, 3), dtype=np.float32)

    monkeypatch.setitem(registry.EMBEDDING_METHODS, "fake", fake)
    monkeypatch.setitem(registry.READS, "fake", ("interactions",))
    cfg = load_config("smoke")
    first = registry.prepare_embeddings(cfg, items, interactions, queries, methods=["fake"])["fake"]
    registry.prepare_embeddings(cfg, items, interactions, queries, methods=["fake"])
    assert calls == [cfg.embeddings.enmf_dim] and first.shape == (24, 3)
    assert (runs_dir / "smoke" / "embeddings" / "fake.npy").exists()
    registry.prepare_embeddings(load_config("smoke", {"embeddings.enmf_dim": 8}), items, interactions, queries,
                                methods=["fake"])
    assert calls[-1] == 8 and len(calls) == 2
    with pytest.raises(StudyInputError, match="Unknown embedding method"):
        registry.prepare_embeddings(cfg, items, interactions, queries, methods=["nope"])


def test_a_builder_with_the_wrong_shape_fails_clearly(tiny, runs_dir, monkeypatch):
    items, interactions, queries = tiny
    monkeypatch.setitem(registry.EMBEDDING_METHODS, "bad", lambda data, cfg: np.full((3, 2), np.nan))
    monkeypatch.setitem(registry.READS, "bad", ())
    with pytest.raises(StudyInputError, match="one row per item"):
        registry.prepare_embeddings(load_config("smoke"), items, interactions, queries, methods=["bad"])


def test_evaluation_k_is_in_the_keys_of_what_it_changes_only(tiny):
    """-p evaluation.k 10 rebuilds the embeddings chosen on validation Recall@k (and, through their matrices, the
    fusions), the dense check and the tuned baselines; the content embedding keeps its key."""
    from jointsid_utils.embeddings import dense_check
    from jointsid_utils.evaluation import tuned

    items, interactions, queries = tiny
    at30, at10 = load_config("smoke"), load_config("smoke", {"evaluation.k": 10})
    data = EmbeddingData(items, interactions, queries)
    for method in ("search", "rec", "multitask"):  # checkpoint or epoch chosen on validation Recall@k
        assert registry.cache_key(method, at30, data) != registry.cache_key(method, at10, data), method
    for method in ("content", "fused_concat", "fused_svd"):
        assert registry.cache_key(method, at30, data) == registry.cache_key(method, at10, data), method
    vectors = {"genre": np.eye(4, dtype=np.float32)[np.arange(24) % 4]}
    keys = [dense_check.cache_key(c, vectors, interactions, queries, {}, {}, None) for c in (at30, at10)]
    assert keys[0] != keys[1] and {keys[0]["k"], keys[1]["k"]} == {30, 10}
    assert tuned._grid_key(at30, interactions, 24) != tuned._grid_key(at10, interactions, 24)
    assert dense_check.contract_file(10) == "dense_recall_at_10.csv" and dense_check.columns(10)[2] == "recall_at_10"


def test_items_must_be_in_row_order(tiny):
    items, interactions, queries = tiny
    with pytest.raises(StudyInputError, match="row i = item i"):
        EmbeddingData(items.iloc[::-1], interactions, queries)


# ----------------------------------------------------------------------------- fine-tuning (MiniLM, a few steps)


def test_a_fusion_rebuilds_when_a_matrix_it_combines_changes(tiny, runs_dir, monkeypatch):
    import json

    items, interactions, queries = tiny
    rec_seeds = iter([1, 2])
    monkeypatch.setattr(registry, "MODEL_METHODS", ())
    monkeypatch.setitem(registry.EMBEDDING_METHODS, "search", lambda data, cfg: np.ones((data.n_items, 4), np.float32))
    monkeypatch.setitem(registry.EMBEDDING_METHODS, "rec",
                        lambda data, cfg: np.random.default_rng(next(rec_seeds)).normal(size=(data.n_items, 3)))
    cfg = load_config("smoke")
    first = registry.prepare_embeddings(cfg, items, interactions, queries, methods=["fused_concat"])["fused_concat"]
    (rec_entry,) = [m.parents[1] for m in (runs_dir / ".store" / "embeddings").glob("*/out/stage.json")
                    if "rec.npy" in json.loads(m.read_text())["sizes"]]
    shutil.rmtree(rec_entry)  # rec is built again and comes out different: the fusion must follow
    again = registry.prepare_embeddings(cfg, items, interactions, queries, methods=["fused_concat"])["fused_concat"]
    assert not np.array_equal(first, again)
