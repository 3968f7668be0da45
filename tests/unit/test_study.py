"""The experiment over schemes: train_all_schemes caches per (scheme, seed), baselines, reference numbers, the headline."""

import math
from dataclasses import replace

import numpy as np
import pandas as pd

from generator_fixtures import TINY
from jointsid_utils.config import StudyConfig, load_config
from jointsid_utils.evaluation import report as ev
from jointsid_utils.evaluation import results as results_io
from jointsid_utils.evaluation.reference import TABLE_2, TABLE_3, paper_value, reference_table
from jointsid_utils.generator import orchestration as study
from jointsid_utils.generator import report as gr

from study_fixtures import SCHEMES


def test_dense_query_vectors_are_encoded_once_per_encoder_and_texts(runs_dir):
    from jointsid_utils.embeddings.encoders import encode, load_encoder

    cfg = StudyConfig(name="smoke", run_name="smoke", generator=TINY)
    texts = ["a space horror film", "a romantic comedy in paris"]
    first = results_io.query_vectors(cfg, "content", texts)
    path = runs_dir / "smoke/results/cache/dense_queries_content.npy"
    stamp = path.stat().st_mtime_ns
    again = results_io.query_vectors(cfg, "content", texts)
    assert path.stat().st_mtime_ns == stamp and np.array_equal(first, again)  # loaded, not re-encoded
    np.testing.assert_allclose(first, encode(load_encoder(cfg.embeddings.base_encoder), texts), atol=1e-6)
    other = results_io.query_vectors(cfg, "content", texts[::-1])  # other texts: encoded anew
    assert path.stat().st_mtime_ns != stamp and np.allclose(other, first[::-1], atol=1e-6)


def test_reference_numbers_match_reference_md():
    t = reference_table()
    assert len(t) == 11 and not t.duplicated(["embedding", "quantizer"]).any()
    assert paper_value("multitask", "rq_kmeans", "paper_rec") == TABLE_3["rq_kmeans"][1] == TABLE_2["multitask"][1]
    assert paper_value("rec", "rq_kmeans", "paper_rec_head") == 0.170
    assert paper_value("content", "rq_kmeans", "paper_search") == 0.013
    assert math.isnan(paper_value("multitask", "rq_vae_fixed"))


def test_study_schemes_are_the_twelve_of_study_md():
    schemes = study.study_schemes()
    assert len(schemes) == 12 and ("multitask", "rq_vae_fixed") in schemes
    assert len(study.study_schemes(include_content_quantizers=True)) == 16


def test_scope_section_adds_the_optional_schemes_without_touching_any_key():
    from jointsid_utils.study import JOINT_SCHEMES
    from jointsid_utils.ids.schemes import SCHEMES, schemes_in_scope

    default = load_config("default")
    # the paper's 12 and the joint constructions within the budget; content's Table B opt-in
    assert study.scope_schemes(default) == study.study_schemes() + list(JOINT_SCHEMES)
    assert study.scope_schemes(load_config("default", {"scope.joint_ids": False})) == study.study_schemes()
    assert len(schemes_in_scope(default)) == len(SCHEMES) - 4  # content's rq_kmeans only
    both = load_config("default", {"scope.joint_ids": True, "scope.content_quantizers": True})
    assert study.scope_schemes(both)[-len(JOINT_SCHEMES):] == list(JOINT_SCHEMES)
    assert len(study.scope_schemes(both)) == 16 + len(JOINT_SCHEMES) and schemes_in_scope(both) == SCHEMES
    sections = ("data", "queries", "embeddings", "ids", "joint_ids", "diagnosis", "generator")
    assert default.section_hash(*sections) == both.section_hash(*sections)


def test_auto_workers_reads_idle_cpu_now_and_keeps_one_job_per_gpu(monkeypatch):
    import psutil
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(study, "machine_cores", lambda: 2)
    # the load average of a study whose previous notebook just ended must not matter, only usage now
    monkeypatch.setattr(study.os, "getloadavg", lambda: (2.0, 2.0, 2.0), raising=False)
    for percent, expected in ((5.0, 2), (40.0, 2), (60.0, 1), (100.0, 1)):
        monkeypatch.setattr(psutil, "cpu_percent", lambda interval=None, p=percent: p)
        assert study.auto_workers() == expected, percent
    monkeypatch.setattr(study, "machine_cores", lambda: 1)
    assert study.auto_workers() == 1
    monkeypatch.setattr(study, "machine_cores", lambda: 16)
    monkeypatch.setattr(psutil, "cpu_percent", lambda interval=None: 25.0)  # 4 of 16 cores busy
    assert study.auto_workers() == 12 and study.auto_workers(jobs=5) == 5
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(psutil, "cpu_percent", lambda interval=None: 0.0)
    assert study.auto_workers() == 1


def test_auto_workers_samples_the_machine():
    import time

    started = time.perf_counter()
    assert 1 <= study.auto_workers(sample_s=0.3) <= study.machine_cores()
    assert time.perf_counter() - started >= 0.25


def test_resolve_workers_prefers_the_callers_then_the_profiles():
    cfg = StudyConfig(name="smoke", run_name="smoke", generator=replace(TINY, workers=2))
    assert study.resolve_workers(cfg) == 2 and study.resolve_workers(cfg, 1) == 1


def test_generator_report_tables_and_time_chart():
    runs = pd.DataFrame({"embedding": ["content", "multitask"], "quantizer": ["rq_kmeans"] * 2, "seed": [0, 0],
                         "status": ["trained", "cached"], "train_seconds": [10.0, 20.0], "decode_seconds": [1.0, 2.0],
                         "recall": [{"search/all": 0.1, "rec/all": 0.2}, {"search/all": 0.3, "rec/all": 0.4}]})
    table = gr.recall_table(runs)
    assert table.columns.tolist() == ["embedding", "quantizer", "seed", "status", "search/all", "rec/all"]
    assert gr.recall_metrics(table) == {"content__rq_kmeans/seed0/search/all": 0.1, "content__rq_kmeans/seed0/rec/all": 0.2,
                                        "multitask__rq_kmeans/seed0/search/all": 0.3,
                                        "multitask__rq_kmeans/seed0/rec/all": 0.4}
    fig = gr.plot_times(runs, "time")
    assert [len(c) for c in fig.axes[0].containers] == [2, 2]
    curves = pd.DataFrame({"scheme": ["a"] * 3, "epoch": [1, 2, 3], "step": [1, 2, 3], "curve": "validation",
                           "loss": [3.0, 2.0, 2.5]})
    summary = gr.loss_summary(curves)
    assert summary.loc["a"].tolist() == [3.0, 2.0, 2.5, False]


def test_decoding_table_and_headline():
    rows = [{"embedding": "multitask", "quantizer": "rq_kmeans", "segment": "all", "seed": 0, "task": t,
             "protocol": "all", "decoding": d, "recall_at_30": v}
            for t, d, v in (("search", "beam", 0.2), ("search", "diverse", 0.1), ("rec", "beam", 0.3),
                            ("rec", "diverse", 0.25))]
    table = results_io.decoding_table(pd.DataFrame(rows), ("multitask", "rq_kmeans"), 0)
    assert table.loc[("search", "all"), "diverse"] == 0.1 and table.loc[("rec", "all"), "beam"] == 0.3

    schemes = pd.DataFrame({"embedding": ["content", "multitask"], "quantizer": ["rq_kmeans"] * 2,
                            "search": [0.1, 0.3], "rec": [0.2, 0.05], "beats_bm25": [False, True],
                            "beats_most_popular": [True, False]})
    baselines = pd.DataFrame({"method": ["bm25", "most_popular"], "task": ["search", "rec"], "protocol": "all",
                              "segment": "all", "recall_at_30": [0.25, 0.1]})
    found = pd.DataFrame({"finding": ["F1", "F2", "F4"], "task": ["search", "rec", "rec"],
                          "verdict": ["reproduces", "contradicted", "inconclusive"]})
    text, numbers = ev.headline(schemes, baselines, found, "smoke")
    assert numbers == {"bm25_search": 0.25, "most_popular_rec": 0.1, "schemes_below_bm25": 1,
                       "schemes_below_most_popular": 1}
    assert "search: multitask/rq_kmeans\n0.300 against BM25 0.250" in text
    assert "reproduces: F1 (search);\ncontradicted: F2 (rec); inconclusive: F4 (rec)." in text


