"""Generator: tokenizer round-trip, a tiny T5 learns, the `paper` (from_pretrained) path end to end."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from jointsid_utils.config import GeneratorConfig
from jointsid_utils.generator.model import build_examples, train_and_predict
from jointsid_utils.generator.tokenization import (build_tokenizer, check_tokenizer, item_token_ids, make_id_scheme,
                                         rec_prompt)

torch.set_num_threads(1)
N_ITEMS, N_USERS = 40, 12
WORDS = "alien space war love comedy horror dog island robot ghost city river night storm king queen".split()
TINY = GeneratorConfig(d_model=32, d_ff=64, num_layers=1, num_heads=2, epochs=12.0, batch_size=32, lr=5e-3,
                       history_k=4, rec_windows_per_user=4, beam_size=10, top_k=10)


def toy_data(seed: int = 0):
    gen = np.random.default_rng(seed)
    items = pd.DataFrame({"item_id": np.arange(N_ITEMS), "title": [f"{WORDS[i % 16]} {WORDS[(i * 7) % 16]} {i}"
                                                                   for i in range(N_ITEMS)]})
    items["text"] = items["title"] + " a film"
    rows = []
    for u in range(N_USERS):
        seq = gen.choice(N_ITEMS, size=8, replace=False)
        for t, i in enumerate(seq):
            rows.append((u, int(i), t, "test" if t == 7 else "validation" if t == 6 else "train"))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "split"])
    q = [(i, f"{items.title[i]} movie", "train") for i in range(N_ITEMS) for _ in range(3)]
    q += [(i, f"the {items.title[i]}", "test") for i in range(N_ITEMS)]
    queries = pd.DataFrame(q, columns=["item_id", "query", "split"])
    queries["query_id"] = np.arange(len(queries))
    codes = np.column_stack([np.arange(N_ITEMS) % 5, np.arange(N_ITEMS) // 5 % 4, np.arange(N_ITEMS) // 20])
    return items, inter, queries, codes


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


TOKENIZER_SCRIPT = """
import json, sys
import numpy as np
from jointsid_utils.generator.tokenization import build_tokenizer, make_id_scheme
gen = np.random.default_rng(0)
letters = np.array(list("abcdefghij"))
corpus = [" ".join("".join(gen.choice(letters, gen.integers(3, 9))) for _ in range(4)) for _ in range(300)]
tok = build_tokenizer(corpus, make_id_scheme("content", np.arange(12).reshape(6, 2)), vocab_size=150)
print(json.dumps(sorted(tok.get_vocab().items())))
"""


def test_tokenizer_is_the_same_in_every_process():
    """tokenizers' trainer alone gives a different vocabulary per process on tie-rich corpora (#1794)."""
    import subprocess
    import sys

    runs = [subprocess.run([sys.executable, "-c", TOKENIZER_SCRIPT], capture_output=True, text=True, check=True).stdout
            for _ in range(4)]
    assert len(set(runs)) == 1
    assert len(json.loads(runs[0])) > 100


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


def test_tiny_t5_trains_and_predicts(runs_dir):
    items, inter, queries, codes = toy_data()
    preds = train_and_predict("content", codes, items, inter, queries, TINY, 0, profile="smoke",
                              val_queries=10, warmup_steps=0)
    info = json.loads((runs_dir / "smoke/models/generator/content__seed0/train_info.json").read_text())
    evals = [h["eval_loss"] for h in info["log_history"] if "eval_loss" in h]
    assert evals[-1] < evals[0] - 0.5  # it learns
    assert set(preds["task"]) == {"search", "rec"}
    assert set(preds.loc[preds.task == "rec", "protocol"]) == {"all", "exclude_history"}
    assert all(len(r) == 10 and len(set(r)) == 10 for r in preds["ranked"])
    hits = np.mean([t in r for t, r in zip(preds.target, preds.ranked)])
    assert hits > 0.25  # above the random 10/40
    # a second call with the same inputs reloads instead of retraining
    again = train_and_predict("content", codes, items, inter, queries, TINY, 0, profile="smoke",
                              val_queries=10, warmup_steps=0)
    assert [list(r) for r in again["ranked"]] == [list(r) for r in preds["ranked"]]


def test_paper_path_from_local_dir(tmp_path, runs_dir):
    """`paper` loads base_model with from_pretrained (here a tiny T5 in a local dir) and adds the ID tokens."""
    from transformers import T5Config, T5ForConditionalGeneration

    items, inter, queries, codes = toy_data()
    base_scheme = make_id_scheme("separate", (codes, codes))  # a tokenizer without the content scheme's tokens
    tok = build_tokenizer(list(queries["query"]), base_scheme, vocab_size=100)
    base = tmp_path / "tiny-t5"
    T5ForConditionalGeneration(T5Config(vocab_size=len(tok), d_model=32, d_ff=64, d_kv=16, num_layers=1,
                                        num_heads=2, decoder_start_token_id=0, pad_token_id=0,
                                        eos_token_id=1)).save_pretrained(base)
    tok.save_pretrained(base)
    cfg = GeneratorConfig(**{**TINY.__dict__, "base_model": str(base), "epochs": 1.0})
    preds = train_and_predict("content", codes, items, inter, queries, cfg, 1, profile="paper", val_queries=10)
    out = runs_dir / "paper/models/generator/content__seed1"
    saved = T5ForConditionalGeneration.from_pretrained(out)
    assert saved.config.vocab_size >= len(tok) + len(make_id_scheme("content", codes).all_tokens())
    assert all(len(set(r)) == len(r) == 10 for r in preds["ranked"])


def test_bad_codes_fail_with_one_sentence():
    with pytest.raises(ValueError, match="duplicate rows"):
        make_id_scheme("content", np.array([[0, 1], [0, 1]]))
    with pytest.raises(ValueError, match="share column 0"):
        make_id_scheme("prefix_share", (np.array([[0, 1], [1, 1]]), np.array([[1, 1], [0, 1]])))


def test_task_block_sampler_gives_one_task_per_batch():
    from jointsid_utils.generator.model import TaskBlockSampler

    tasks = np.array(["search"] * 70 + ["rec"] * 45)
    sampler = TaskBlockSampler(tasks, block=16, seed=0)
    first, second = list(sampler), list(sampler)
    assert len(first) == len(sampler) == 16 * (5 + 3) and set(first) == set(range(115)) and first != second
    batches = np.array(first).reshape(-1, 16)
    assert all(len(set(tasks[b])) == 1 for b in batches)


def test_interrupted_training_resumes_from_its_checkpoint(runs_dir):
    items, inter, queries, codes = toy_data()
    cfg = GeneratorConfig(**{**TINY.__dict__, "epochs": 2.0})
    train_and_predict("content", codes, items, inter, queries, cfg, 0, profile="smoke", val_queries=10)
    out = runs_dir / "smoke/models/generator/content__seed0"
    (out / "train_info.json").unlink()  # as if killed after the last checkpoint, before the final save
    train_and_predict("content", codes, items, inter, queries, cfg, 0, profile="smoke", val_queries=10)
    info = json.loads((out / "train_info.json").read_text())
    assert info["resumed"] is True


@pytest.mark.parametrize("scheme", ["separate", "prefix_share"])
def test_two_id_schemes_end_to_end(runs_dir, scheme):
    items, inter, queries, codes = toy_data()
    rec = codes.copy()
    rec[:, 1:] = codes[::-1, 1:]  # same column 0 (prefix_share's shared level), other task-specific codes
    cfg = GeneratorConfig(**{**TINY.__dict__, "epochs": 1.0})
    preds = train_and_predict(scheme, np.hstack([codes, rec]), items, inter, queries, cfg, 0, profile="smoke",
                              val_queries=10)
    assert all(len(set(r)) == len(r) == 10 and max(r) < N_ITEMS for r in preds["ranked"])
