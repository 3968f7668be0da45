"""Generator: tokenizer round-trip, a tiny T5 learns, the `paper` (from_pretrained) path end to end."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from generator_fixtures import N_ITEMS, N_USERS, TINY, toy_data
from jointsid_utils.generator.examples import build_examples
from jointsid_utils.generator.job import train_and_predict
from jointsid_utils.generator.tokenization import (build_tokenizer, check_tokenizer, item_token_ids, make_id_scheme,
                                                   rec_prompt)


def test_tokenizer_round_trip(tmp_path):
    from transformers import AutoTokenizer

    items, inter, queries, codes = toy_data()
    scheme = make_id_scheme("separate", (codes, codes[::-1].copy()))
    tok = build_tokenizer(list(queries["query"]), scheme, vocab_size=100)
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    check_tokenizer(again, scheme)
    for text in ["<search> alien robot movie", rec_prompt(scheme, [3, 1, 2], 2)]:
        assert tok(text)["input_ids"] == again(text)["input_ids"]
    ids = tok(rec_prompt(scheme, [3], 1))["input_ids"]
    assert tok.convert_ids_to_tokens(ids) == ["<rec>", *scheme.item_tokens("rec", 3), "</s>"]  # one token per code
    assert (item_token_ids(again, scheme, "search") == item_token_ids(tok, scheme, "search")).all()
    assert all(t.startswith("<r") for t in scheme.item_tokens("rec", 0))


def test_a_scheme_builds_its_tokenizer_once_and_tokenises_each_prompt_once(monkeypatch):
    """Training seeds of one scheme share its tokenizer and tokenised prompts; another corpus setting or
    another scheme's ID tokens build a new tokenizer."""
    from jointsid_utils.generator import examples as examples_module
    from jointsid_utils.generator.item_positions import item_grouping, tokenize_prompts
    from jointsid_utils.generator.model import make_tokenizer
    from jointsid_utils.generator.tokenization import memoized_tokenizer, tokenizer_key

    items, inter, queries, codes = toy_data()
    scheme = make_id_scheme("content", codes)
    other = make_id_scheme("content", np.column_stack([codes, np.zeros(len(codes), dtype=np.int64)]))

    def key(s, vocab=TINY.vocab_size):
        return tokenizer_key(s, items, queries, base_model=None, vocab_size=vocab, kind=TINY.tokenizer_kind)

    assert key(scheme) == key(make_id_scheme("content", codes.copy()))
    assert len({key(scheme), key(other), key(scheme, vocab=50)}) == 3
    builds = []
    first = memoized_tokenizer(key(scheme), lambda: builds.append(1) or make_tokenizer(scheme, items, queries, TINY))
    again = memoized_tokenizer(key(scheme), lambda: builds.append(1) or make_tokenizer(scheme, items, queries, TINY))
    assert first is again and builds == [1]

    calls = []
    monkeypatch.setattr(examples_module, "tokenize_prompts",
                        lambda tok, prompts, *a: calls.append(len(prompts)) or tokenize_prompts(tok, prompts, *a))
    grouping = item_grouping(first, scheme)
    for seed in (0, 1):
        frame = build_examples(scheme, inter, queries, history_k=3, rec_windows_per_user=2, val_queries=5,
                               search_eval_cases=None, seed=seed).train
        got = examples_module.cached_prompt_ids(first, frame["prompt"], 32, grouping)
        assert got == tokenize_prompts(first, frame["prompt"], 32, grouping)
    assert calls == [frame["prompt"].nunique()]  # the second seed's prompts were all known


def test_examples_use_train_history_only():
    items, inter, queries, codes = toy_data()
    scheme = make_id_scheme("content", codes)
    ex = build_examples(scheme, inter, queries, history_k=4, rec_windows_per_user=10, val_queries=5,
                        search_eval_cases=None, seed=0)
    test_items = set(inter.loc[inter.split == "test", "item_id"])
    val_targets = dict(zip(inter.loc[inter.split == "validation", "user_id"],
                           inter.loc[inter.split == "validation", "item_id"]))
    assert len(ex.test_rec) == N_USERS and len(ex.test_search) == N_ITEMS
    assert ex.stats["train_rec"] == N_USERS * 5  # 6 train items -> 5 windows each
    for row in ex.test_rec.itertuples():  # test history = train + validation items, before the test item
        assert val_targets[row.user_id] in row.history and row.target not in row.history
    assert not (ex.train["task"] == "rec").sum() == 0 and set(ex.validation["task"]) == {"search", "rec"}
    assert test_items  # the toy data has test items


def test_search_validation_is_the_validation_split_for_every_training_seed():
    """Every train query trains; validation is the shared validation split, drawn by the study seed only."""
    from jointsid_utils.generator.tokenization import search_prompt

    items, inter, queries, codes = toy_data()
    scheme = make_id_scheme("content", codes)
    ex = [build_examples(scheme, inter, queries, history_k=4, rec_windows_per_user=4, val_queries=10,
                         search_eval_cases=None, seed=seed, case_seed=0) for seed in (0, 1)]
    val = [e.validation[e.validation["task"] == "search"].reset_index(drop=True) for e in ex]
    pd.testing.assert_frame_equal(*val)
    prompts = {split: {search_prompt(q) for q in queries.loc[queries["split"] == split, "query"]}
               for split in ("train", "validation")}
    assert len(val[0]) == 10 and set(val[0]["prompt"]) <= prompts["validation"]
    assert ex[0].stats["train_search"] == int((queries["split"] == "train").sum())
    assert set(ex[0].train.loc[ex[0].train["task"] == "search", "prompt"]) == prompts["train"]


def test_unknown_decoding_fails_before_training(runs_dir):
    items, inter, queries, codes = toy_data()
    with pytest.raises(ValueError, match="generator.decoding 'greedy'"):
        train_and_predict("content", codes, items, inter, queries, replace(TINY, decoding="greedy"), 0,
                          profile="smoke")
    assert not (runs_dir / "smoke/models/generator/content__seed0").exists()


def test_bad_codes_fail_with_one_sentence():
    with pytest.raises(ValueError, match="duplicate rows"):
        make_id_scheme("content", np.array([[0, 1], [0, 1]]))
    with pytest.raises(ValueError, match="share column 0"):
        make_id_scheme("prefix_share", (np.array([[0, 1], [1, 1]]), np.array([[1, 1], [0, 1]])))


def test_task_block_sampler_gives_one_task_per_batch():
    from jointsid_utils.generator.examples import TaskBlockSampler

    tasks = np.array(["search"] * 70 + ["rec"] * 45)
    sampler = TaskBlockSampler(tasks, block=16, seed=0)
    first, second = list(sampler), list(sampler)
    assert len(first) == len(sampler) == 16 * (5 + 3) and set(first) == set(range(115)) and first != second
    batches = np.array(first).reshape(-1, 16)
    assert all(len(set(tasks[b])) == 1 for b in batches)


def test_the_model_and_pretraining_stages_follow_the_code_their_builders_reach():
    """No version to bump: the ``generator`` and ``pretrain`` stages' keys cover the training, model, example
    and tokenizer modules (a change there retrains), and the model stage's key follows its job key."""
    from jointsid_utils.fingerprint import reachable_modules
    from jointsid_utils.generator import pretrain as pt
    from jointsid_utils.generator.job import model_stage

    items, inter, queries, codes = toy_data()
    scheme = make_id_scheme("content", codes)
    stage = model_stage(scheme, lambda: None, items, queries, TINY, 0, "job-a")
    covered = set(reachable_modules((stage.build,)))
    expected = {f"jointsid_utils.generator.{m}" for m in ("training", "model", "examples", "tokenization")}
    assert expected <= covered
    assert expected <= set(reachable_modules((pt.pretrain_stage(TINY, (items, inter, queries), 0).build,)))
    assert model_stage(scheme, lambda: None, items, queries, TINY, 0, "job-b").key != stage.key
    assert model_stage(scheme, lambda: None, items, queries, TINY, 0, "job-a", retrain=True).key == stage.key
