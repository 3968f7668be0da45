"""The warm start every scheme shares (``generator.pretrain``): text-only objectives on train rows, one
checkpoint per seed for every scheme, ID embeddings that do not start at one point, keys on its content."""

from __future__ import annotations

from dataclasses import replace

import pytest

from generator_fixtures import N_ITEMS, toy_data
from jointsid_utils.errors import StudyInputError
from jointsid_utils.generator import pretrain as pt

from warm_start_fixtures import SMOKE_WARM


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


def test_bad_warm_start_settings_fail_in_one_sentence():
    data = toy_data()[:3]
    with pytest.raises(StudyInputError, match="already pretrained; set generator.warm_start false"):
        pt.pretrain(replace(SMOKE_WARM, base_model="google/flan-t5-base"), data, 0)
    with pytest.raises(StudyInputError, match="pretrain_epochs must be > 0"):
        pt.pretrain(replace(SMOKE_WARM, pretrain_epochs=0.0), data, 0)


