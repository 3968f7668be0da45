"""The experiment over schemes: train_all_schemes caches per (scheme, seed), baselines, reference numbers, findings."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from jointsid_utils.evaluation import report as ev
from jointsid_utils.evaluation import results as results_io
from jointsid_utils.generator import orchestration as study
from jointsid_utils.config import StudyConfig
from jointsid_utils.evaluation.reference import TABLE_2, TABLE_3, paper_value, reference_table
from test_generator import TINY, toy_data

SCHEMES = [("content", "rq_kmeans"), ("separate", "rq_kmeans")]


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
    cfg = StudyConfig(name="smoke", generator=TINY)
    kw = dict(workers=1, items=items, interactions=inter, queries=queries, progress=False, val_queries=10)
    first = study.train_all_schemes(cfg, SCHEMES, [0], warmup_steps=0, **kw)
    assert first.status.tolist() == ["trained", "trained"]
    assert [tuple(x) for x in first[["embedding", "quantizer"]].to_numpy()] == SCHEMES
    results = pd.read_csv(runs_dir / "smoke/results/recall_at_30.csv")
    for emb, quant in SCHEMES:
        got = results[(results.embedding == emb) & (results.quantizer == quant)]
        assert {"search", "rec"} <= set(got.task) and {"all", "exclude_history"} <= set(got.protocol)
        assert (runs_dir / f"smoke/results/predictions/{emb}__{quant}__search.parquet").exists()
    model = runs_dir / "smoke/models/generator/separate__rq_kmeans__seed0/model.safetensors"
    before = model.stat().st_mtime_ns

    again = study.train_all_schemes(cfg, SCHEMES, [0], warmup_steps=0, **kw)
    assert again.status.tolist() == ["cached", "cached"]
    assert model.stat().st_mtime_ns == before
    assert again.recall.tolist() == first.recall.tolist()

    changed = study.train_all_schemes(cfg, SCHEMES[1:], [0], warmup_steps=1, **kw)  # another setting: a new job
    assert changed.status.tolist() == ["trained"] and model.stat().st_mtime_ns != before


def test_baselines_on_the_generators_cases(runs_dir):
    items, inter, queries, _ = toy_data()
    cfg = StudyConfig(name="smoke", generator=TINY)
    table = results_io.run_baselines(cfg, items, inter, queries)
    assert (runs_dir / "smoke/results/baselines.csv").exists()
    assert {"random", "most_popular", "bm25"} <= set(table.method)
    bm = ev.baseline_value(table, "bm25", "search")
    assert bm > ev.baseline_value(table, "random", "search")  # toy queries contain the title
    mp = table[(table.method == "most_popular") & (table.segment == "all")]
    assert set(mp.protocol) == {"all", "exclude_history"}
    search_cases, rec_cases = study.generator_test_cases(cfg, items, inter, queries)
    assert table[(table.method == "bm25")].n_cases.iloc[0] == len(search_cases)
    assert mp.n_cases.iloc[0] == len(rec_cases) == inter.user_id.nunique()


def test_reference_numbers_match_reference_md():
    t = reference_table()
    assert len(t) == 11 and not t.duplicated(["embedding", "quantizer"]).any()
    assert paper_value("multitask", "rq_kmeans", "paper_rec") == TABLE_3["rq_kmeans"][1] == TABLE_2["multitask"][1]
    assert paper_value("rec", "rq_kmeans", "paper_rec_head") == 0.170
    assert paper_value("content", "rq_kmeans", "paper_search") == 0.013
    assert math.isnan(paper_value("multitask", "rq_vae_fixed"))


def test_findings_on_the_papers_own_numbers():
    """F1-F3 must hold on the paper's numbers: the checks encode the paper's claims, not ours."""
    t = reference_table().drop(columns="table")
    for col in ("search", "rec", "rec_head", "rec_torso"):
        t[col] = t[f"paper_{col}"]
        t[f"{col}_lo"] = t[f"{col}_hi"] = t[col]
    found = ev.findings(t)
    holds = found["holds"]["paper"]
    assert [bool(holds[f]) for f in holds.index if not f.startswith("F4")] == [True, True, True]
    assert holds[[f for f in holds.index if f.startswith("F4")][0]] is None


def test_study_schemes_are_the_twelve_of_study_md():
    schemes = study.study_schemes()
    assert len(schemes) == 12 and ("multitask", "rq_vae_fixed") in schemes
    assert len(study.study_schemes(include_content_quantizers=True)) == 16


def test_auto_workers_reads_idle_cpu_now_and_keeps_one_job_per_gpu(monkeypatch):
    import psutil
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(study.os, "cpu_count", lambda: 2)
    # the load average of a study whose previous notebook just ended must not matter, only usage now
    monkeypatch.setattr(study.os, "getloadavg", lambda: (2.0, 2.0, 2.0), raising=False)
    for percent, expected in ((5.0, 2), (40.0, 2), (60.0, 1), (100.0, 1)):
        monkeypatch.setattr(psutil, "cpu_percent", lambda interval=None, p=percent: p)
        assert study.auto_workers() == expected, percent
    monkeypatch.setattr(study.os, "cpu_count", lambda: 1)
    assert study.auto_workers() == 1
    monkeypatch.setattr(study.os, "cpu_count", lambda: 16)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(psutil, "cpu_percent", lambda interval=None: 0.0)
    assert study.auto_workers() == 1


def test_auto_workers_samples_the_machine():
    import time

    started = time.perf_counter()
    assert study.auto_workers(sample_s=0.3) in (1, 2)
    assert time.perf_counter() - started >= 0.25
