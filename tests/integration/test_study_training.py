"""The orchestration with trained toy generators: every scheme trained, scored, cached; baselines; workers."""

import json
from dataclasses import replace

import numpy as np
import pandas as pd

from generator_fixtures import TINY, toy_data
from jointsid_utils.config import StudyConfig, load_config
from jointsid_utils.evaluation import report as ev
from jointsid_utils.evaluation import results as results_io
from jointsid_utils.generator import orchestration as study
from jointsid_utils.generator import report as gr
from jointsid_utils.generator.examples import generator_test_cases

from study_fixtures import SCHEMES


def _write_ids(runs_dir, codes):
    ids = runs_dir / "smoke" / "ids"
    ids.mkdir(parents=True)
    np.save(ids / "content__rq_kmeans.npy", codes)
    (ids / "content__rq_kmeans.json").write_text("{}")
    np.save(ids / "separate__rq_kmeans.npy", np.hstack([codes, codes[::-1]]))
    (ids / "separate__rq_kmeans.json").write_text(json.dumps({"layout": {"search": [0, 3], "rec": [3, 6]}}))


def test_train_all_schemes_scores_caches_and_retrains_on_change(runs_dir):
    items, inter, queries, codes = toy_data()
    _write_ids(runs_dir, codes)
    cfg = StudyConfig(name="smoke", run_name="smoke", generator=TINY)
    kw = dict(workers=1, items=items, interactions=inter, queries=queries, progress=False)
    first = study.train_all_schemes(cfg, SCHEMES, [0], **kw)
    assert first.status.tolist() == ["trained", "trained"]
    assert [tuple(x) for x in first[["embedding", "quantizer"]].to_numpy()] == SCHEMES
    results = pd.read_csv(runs_dir / "smoke/results/recall_at_30.csv")
    for emb, quant in SCHEMES:
        got = results[(results.embedding == emb) & (results.quantizer == quant)]
        assert {"search", "rec"} <= set(got.task) and {"all", "exclude_history"} <= set(got.protocol)
        assert (runs_dir / f"smoke/results/predictions/{emb}__{quant}__search.parquet").exists()
    model = runs_dir / "smoke/models/generator/separate__rq_kmeans__seed0/model.safetensors"
    before = model.stat().st_mtime_ns
    summary = json.loads((runs_dir / "smoke/results/generator_runs/separate__rq_kmeans__seed0.json").read_text())
    info = json.loads((model.parent / "train_info.json").read_text())
    assert summary["key"] == info["key"]  # the summary names the model stage it scored

    again = study.train_all_schemes(cfg, SCHEMES, [0], **kw)
    assert again.status.tolist() == ["cached", "cached"]
    assert model.stat().st_mtime_ns == before
    assert again.recall.tolist() == first.recall.tolist()

    # notebook 06: the paper's decoding is a job of its own that decodes the saved model again
    diverse = study.train_all_schemes(replace(cfg, generator=replace(TINY, decoding="diverse")), SCHEMES[1:], [0], **kw)
    assert diverse.status.tolist() == ["trained"] and diverse.decoding.tolist() == ["diverse"]
    assert model.stat().st_mtime_ns == before
    assert (runs_dir / "smoke/results/generator_runs/separate__rq_kmeans__seed0__diverse.json").exists()

    # validation scores for a scheme asked for them: the saved model is decoded again, not retrained
    validated = study.train_all_schemes(cfg, SCHEMES, [0], validate=SCHEMES[1:], **kw)
    assert validated.status.tolist() == ["cached", "trained"] and model.stat().st_mtime_ns == before
    table = study.validation_table("smoke", k=cfg.evaluation.k)
    assert set(table.task) == {"search", "rec"} and set(table.embedding) == {"separate"}
    assert table.recall_at_30.between(0, 1).all() and (table.n_cases > 0).all()
    assert (table.ci_low <= table.recall_at_30).all() and (table.recall_at_30 <= table.ci_high).all()
    assert study.train_all_schemes(cfg, SCHEMES, [0], validate=SCHEMES[1:], **kw).status.tolist() == ["cached"] * 2

    changed_cfg = replace(cfg, generator=replace(TINY, warmup_steps=1))  # another setting: a new job
    changed = study.train_all_schemes(changed_cfg, SCHEMES[1:], [0], **kw)
    assert changed.status.tolist() == ["trained"] and model.stat().st_mtime_ns != before


def test_baselines_on_the_generators_cases(runs_dir):
    items, inter, queries, _ = toy_data()
    cfg = StudyConfig(name="smoke", run_name="smoke", generator=TINY, baselines=load_config("smoke").baselines)
    table = results_io.run_baselines(cfg, items, inter, queries)
    assert (runs_dir / "smoke/results/baselines.csv").exists()
    assert {"random", "most_popular", "bm25", "sasrec", "bm25_tuned"} <= set(table.method)
    sasrec = table[(table.method == "sasrec") & (table.segment == "all")]  # one row per training seed
    assert set(sasrec.seed) == set(cfg.baselines.sasrec_seeds) and set(sasrec.protocol) == {"all", "exclude_history"}
    assert sasrec.setting.str.startswith("dim=").all() and table[table.method == "bm25_tuned"].setting.str.startswith("k1=").all()
    validation = pd.read_csv(runs_dir / "smoke/results/baselines_validation.csv")
    assert set(validation.method) == {"sasrec", "bm25_tuned"} and validation.groupby("method").chosen.sum().eq(1).all()
    bm = ev.baseline_value(table, "bm25", "search")
    assert bm > ev.baseline_value(table, "random", "search")  # toy queries contain the title
    mp = table[(table.method == "most_popular") & (table.segment == "all")]
    assert set(mp.protocol) == {"all", "exclude_history"}
    search_cases, rec_cases = generator_test_cases(cfg, items, inter, queries)
    assert table[(table.method == "bm25")].n_cases.iloc[0] == len(search_cases)
    assert mp.n_cases.iloc[0] == len(rec_cases) == inter.user_id.nunique()
    assert not table.method.str.startswith("dense").any()  # notebook 02 has not run: no item vectors

    rec_vectors = np.random.default_rng(0).normal(size=(len(items), 8)).astype(np.float32)
    (runs_dir / "smoke/embeddings").mkdir(parents=True, exist_ok=True)
    np.save(runs_dir / "smoke/embeddings/rec.npy", rec_vectors)  # rec has no query encoder: rec rows only
    table = results_io.run_baselines(cfg, items, inter, queries)
    dense_rec = table[(table.method == "dense_rec") & (table.segment == "all")]
    assert set(dense_rec.protocol) == {"all", "exclude_history"} and set(dense_rec.task) == {"rec"}
    assert dense_rec.n_cases.iloc[0] == len(rec_cases)
    hits = results_io.load_hits("smoke", results_io.baseline_schemes(table), k=cfg.evaluation.k)
    assert {"bm25", "bm25_tuned", "dense_rec", "most_popular", "random", "sasrec"} == set(hits.quantizer)
    assert (runs_dir / "smoke/results/hits/baseline__dense_rec__rec.parquet").exists()


def test_a_worker_job_trains_without_drawing_bars_on_the_terminal(runs_dir, capfd, monkeypatch):
    """Spawned workers write to the terminal's descriptors directly, past the runner's relay: after
    ``worker_init`` the trainer draws no bars and prints no log dicts (the loss history is still kept)."""
    import torch
    from transformers.utils import logging as hf_logging

    from jointsid_utils.generator import training

    monkeypatch.setattr(training, "SHOW_TRAINER_PROGRESS", True)
    for name in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "TOKENIZERS_PARALLELISM"):
        monkeypatch.delenv(name, raising=False)  # monkeypatch puts the session's values back after the test
    threads = torch.get_num_threads()
    try:
        study.worker_init()
        assert training.SHOW_TRAINER_PROGRESS is False
        items, inter, queries, codes = toy_data()
        _write_ids(runs_dir, codes)
        cfg = StudyConfig(name="smoke", run_name="smoke", generator=replace(TINY, epochs=2.0))
        runs = study.train_all_schemes(cfg, SCHEMES[:1], [0], workers=1, items=items, interactions=inter,
                                       queries=queries, progress=False)
    finally:  # this process is the test session, not a worker: its threads and bars come back
        torch.set_num_threads(threads)
        hf_logging.enable_progress_bar()
    out, err = capfd.readouterr()
    assert runs.status.tolist() == ["trained"]
    assert "it/s]" not in out + err and "{'loss'" not in out + err, (out + err)[-2000:]
    assert gr.loss_curves(cfg, SCHEMES[:1], 0).shape[0] > 0
