"""The warm start: one pretrained checkpoint per seed, keyed by its content, pretrained once by notebook
05.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from generator_fixtures import N_ITEMS, toy_data
from jointsid_utils.config import load_config
from jointsid_utils.errors import StudyInputError
from jointsid_utils.generator import pretrain as pt
from jointsid_utils.generator.job import data_hash, job_key, train_and_predict
from jointsid_utils.generator.tokenization import make_id_scheme

from warm_start_fixtures import SMOKE_WARM


def other_codes(codes: np.ndarray) -> np.ndarray:
    """A second scheme: the toy codes with the first level's values permuted (still unique rows)."""
    out = codes.copy()
    out[:, 0] = (out[:, 0] + 2) % (out[:, 0].max() + 1)
    return out


def test_two_schemes_of_a_seed_share_one_checkpoint_and_get_distinct_id_embeddings(runs_dir):
    items, inter, queries, codes = toy_data()
    data = (items, inter, queries)
    checkpoint = pt.pretrain(SMOKE_WARM, data, 0)
    key = pt.pretrain_key(SMOKE_WARM, data, 0)
    info = json.loads((checkpoint / pt.INFO_FILE).read_text())
    assert info["content_sha256"] == pt.checkpoint_sha256(checkpoint) and info["key"] == key
    assert checkpoint == runs_dir / ".store" / "pretrain" / key / "out" / pt.CHECKPOINT  # a published stage
    assert not (checkpoint.parents[1] / "scratch").exists()  # its Trainer checkpoints dropped once published
    saved = (checkpoint / "model.safetensors").stat().st_mtime_ns
    assert pt.pretrain(SMOKE_WARM, data, 1) != checkpoint  # each training seed has its own

    for name, scheme_codes in (("content", codes), ("multitask", other_codes(codes))):
        preds = train_and_predict(name, scheme_codes, items, inter, queries, SMOKE_WARM, 0, profile="smoke")
        assert all(len(set(r)) == len(r) == 10 for r in preds["ranked"])
        trained = json.loads((runs_dir / f"smoke/models/generator/{name}__seed0/train_info.json").read_text())
        assert trained["warm_start"] == key
    # both fine-tunes started from the one stored checkpoint, which neither rebuilt
    assert (checkpoint / "model.safetensors").stat().st_mtime_ns == saved
    keys = json.loads((runs_dir / "smoke" / "store_keys.json").read_text())
    assert keys["pretrain/seed0"] == f"pretrain/{key}"
    assert (runs_dir / "smoke" / "pretrain" / "seed0").resolve() == checkpoint.resolve()

    # a warm-started scheme's ID tokens start apart: no two rows equal, none at the mean of the others
    from transformers import AutoTokenizer

    from jointsid_utils.generator.model import warm_started_model

    scheme = make_id_scheme("content", codes)
    tokenizer = pt.with_id_tokens(AutoTokenizer.from_pretrained(checkpoint), scheme)
    words = len(AutoTokenizer.from_pretrained(checkpoint))
    ids = tokenizer.convert_tokens_to_ids(scheme.all_tokens())
    assert min(ids) == words and max(ids) == len(tokenizer) - 1  # appended after the shared vocabulary
    model = warm_started_model(checkpoint, tokenizer, scheme, items, SMOKE_WARM, 0)
    rows = model.get_input_embeddings().weight[ids].detach()
    gaps = torch.cdist(rows, rows) + torch.eye(len(ids)) * 1e9
    assert gaps.min() > 1e-3
    assert torch.linalg.norm(rows - rows.mean(0), dim=1).min() > 1e-3
    # the title mean carries the signal: codes with the same items' titles start nearer than the noise alone
    no_noise = warm_started_model(checkpoint, tokenizer, scheme, items, replace(SMOKE_WARM, id_init_noise=0.0), 0)
    clean = no_noise.get_input_embeddings().weight[ids].detach()
    assert torch.linalg.norm(clean - clean.mean(0), dim=1).max() > 0  # not all at one point even without noise


def test_a_jobs_key_hashes_the_checkpoint_content_not_its_path(runs_dir, tmp_path):
    import shutil

    items, inter, queries, codes = toy_data()
    checkpoint = pt.pretrain(SMOKE_WARM, (items, inter, queries), 0)
    scheme, data = make_id_scheme("content", codes), data_hash(items, inter, queries)
    copy = shutil.copytree(checkpoint, tmp_path / "elsewhere")
    key = job_key(SMOKE_WARM, scheme, data, case_seed=0, seed=0, warm_start=pt.checkpoint_sha256(checkpoint))
    assert key == job_key(SMOKE_WARM, scheme, data, case_seed=0, seed=0, warm_start=pt.checkpoint_sha256(copy))
    weights = copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")
    assert key != job_key(SMOKE_WARM, scheme, data, case_seed=0, seed=0, warm_start=pt.checkpoint_sha256(copy))
    with pytest.raises(StudyInputError, match="needs its pretrained checkpoint's sha256"):
        job_key(SMOKE_WARM, scheme, data, case_seed=0, seed=0)
    # without a warm start the pretraining settings stay out of the key: cold jobs keep their keys
    cold = replace(SMOKE_WARM, warm_start=False)
    assert job_key(cold, scheme, data, case_seed=0, seed=0) == job_key(
        replace(cold, pretrain_epochs=9.0), scheme, data, case_seed=0, seed=0)


def test_notebook_05_pretrains_each_seed_once_before_planning_its_jobs(runs_dir):
    """``train_all_schemes``'s planning: one checkpoint per seed, every scheme's job of that seed carries it and
    its content hash is in the job's key (so a retrained checkpoint is another job)."""
    from jointsid_utils.generator import orchestration as study
    from jointsid_utils.ids import schemes as sid

    items, inter, queries, _ = toy_data()
    cfg = replace(load_config("smoke", {"ids.codebook_size": 4, "run_name": "warm"}), generator=SMOKE_WARM)
    gen = np.random.default_rng(0)
    vectors = {m: gen.normal(size=(N_ITEMS, 8)).astype(np.float32) for m in ("content", "multitask")}
    schemes = [("content", "rq_kmeans"), ("multitask", "rq_kmeans")]
    sid.prepare_ids(cfg, vectors, schemes, progress=False)
    warm = study.warm_starts(cfg, [0], items, inter, queries)
    assert warm == {0: pt.pretrain(SMOKE_WARM, (items, inter, queries), 0)}
    jobs = study._plan_jobs(cfg, schemes, [0], items, inter, queries, retrain=False, threads=1, warm=warm)
    assert [job["warm_start"] for job in jobs] == [warm[0], warm[0]]
    cold = replace(cfg, generator=replace(SMOKE_WARM, warm_start=False))
    assert study.warm_starts(cold, [0], items, inter, queries) == {}
    cold_jobs = study._plan_jobs(cold, schemes, [0], items, inter, queries, retrain=False, threads=1)
    assert {j["key"] for j in jobs}.isdisjoint({j["key"] for j in cold_jobs})
    assert all(j["warm_start"] is None for j in cold_jobs)
