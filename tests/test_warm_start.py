"""The warm start every scheme shares (``generator.pretrain``): text-only objectives on train rows, one
checkpoint per seed for every scheme, ID embeddings that do not start at one point, keys on its content."""

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


# The smoke profile's generator (its FAST_CPU options: restricted output, grouped rec prompts) warm-started,
# on the toy data: one pretraining epoch and one fine-tune epoch keep this test at seconds.
SMOKE_WARM = replace(load_config("smoke").generator, warm_start=True, pretrain_epochs=1.0, epochs=1.0,
                     history_k=4, rec_windows_per_user=4, beam_size=10, top_k=10, val_queries=10, warmup_steps=0,
                     search_eval_cases=20, vocab_size=200)


def other_codes(codes: np.ndarray) -> np.ndarray:
    """A second scheme: the toy codes with the first level's values permuted (still unique rows)."""
    out = codes.copy()
    out[:, 0] = (out[:, 0] + 2) % (out[:, 0].max() + 1)
    return out


def test_pretraining_reads_train_rows_only_and_names_no_item_id():
    items, inter, queries, codes = toy_data()
    examples = pt.pretraining_examples((items, inter, queries), SMOKE_WARM)
    assert set(examples["task"]) == {"query_title", "text_title", "history_title"}
    # every target is a title, never an item id or an ID token, and no prompt holds an ID token
    assert set(examples["target"]) <= set(items["title"])
    assert not examples["prompt"].str.contains(r"<[Lsr]\d+_\d+>").any()
    # the validation and test rows change nothing: poisoning them leaves the examples and the key as they were
    poisoned_q = queries.copy()
    poisoned_q.loc[poisoned_q.split != "train", "query"] = "LEAKED"
    poisoned_i = inter.copy()
    held_out = poisoned_i.split != "train"
    poisoned_i.loc[held_out, "item_id"] = (poisoned_i.loc[held_out, "item_id"] + 1) % N_ITEMS
    again = pt.pretraining_examples((items, poisoned_i, poisoned_q), SMOKE_WARM)
    assert again.equals(examples) and not again["prompt"].str.contains("LEAKED").any()
    assert pt.pretrain_key(SMOKE_WARM, (items, poisoned_i, poisoned_q), 0) == pt.pretrain_key(
        SMOKE_WARM, (items, inter, queries), 0)
    # the train rows are read: a train query is a prompt, and changing one changes the key
    assert f"<search> {queries['query'].iloc[0]}" in set(examples["prompt"])
    changed = queries.copy()
    changed.loc[0, "query"] = "another train query"  # row 0 is a train query
    assert pt.pretrain_key(SMOKE_WARM, (items, inter, changed), 0) != pt.pretrain_key(SMOKE_WARM, (items, inter, queries), 0)


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


def test_bad_warm_start_settings_fail_in_one_sentence():
    data = toy_data()[:3]
    with pytest.raises(StudyInputError, match="already pretrained; set generator.warm_start false"):
        pt.pretrain(replace(SMOKE_WARM, base_model="google/flan-t5-base"), data, 0)
    with pytest.raises(StudyInputError, match="pretrain_epochs must be > 0"):
        pt.pretrain(replace(SMOKE_WARM, pretrain_epochs=0.0), data, 0)


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
