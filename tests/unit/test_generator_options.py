"""The generator's throughput options: grouped rec prompts, the ID-only output layer, bf16 autocast,
length-grouped batches. Each must change cost, not meaning, where it claims to."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from generator_fixtures import TINY, toy_data
from jointsid_utils.errors import StudyInputError
from jointsid_utils.generator.item_positions import (PromptCollator, item_grouping, pad_prompts,
                                                     prompt_embeddings, tokenize_prompts)
from jointsid_utils.generator.job import train_and_predict
from jointsid_utils.generator.model import MASKED_LOGIT, RestrictedHead, build_model, load_saved
from jointsid_utils.runtime.precision import cpu_has_native_bf16, resolve_precision
from jointsid_utils.generator.tokenization import item_token_ids, rec_prompt, search_prompt
from jointsid_utils.generator.training import output_tokens

from toy_tokenizer import toy


def test_a_rec_prompt_groups_into_one_position_per_item(toy):
    *_, scheme, tok = toy
    history = [3, 17, 5]
    grouping = item_grouping(tok, scheme)
    ungrouped = tokenize_prompts(tok, [rec_prompt(scheme, history, 4)], 64, None)[0]
    grouped = tokenize_prompts(tok, [rec_prompt(scheme, history, 4)], 64, grouping)[0]
    assert len(ungrouped) == 1 + 3 * scheme.levels + 1  # <rec>, 3 items x L codes, eos
    assert len(grouped) == 1 + 3 + 1
    rows = item_token_ids(tok, scheme, "rec")
    assert [g for g in grouped[1:4]] == [rows[i].tolist() for i in history]
    assert grouped[0][1:] == [tok.pad_token_id] * (scheme.levels - 1)  # a word fills slot 0 only
    # a search prompt has no ID tokens: one token per position, as before
    words = tokenize_prompts(tok, [search_prompt("alien robot movie")], 64, grouping)[0]
    assert [w[0] for w in words] == tokenize_prompts(tok, [search_prompt("alien robot movie")], 64, None)[0]


def test_grouped_embeddings_are_sums_and_single_slots_change_nothing(toy):
    *_, scheme, tok = toy
    torch.manual_seed(0)
    model = build_model(tok, TINY).eval()
    emb = model.get_input_embeddings()
    grouped = pad_prompts(tokenize_prompts(tok, [rec_prompt(scheme, [1, 2], 2)], 64, item_grouping(tok, scheme)),
                          tok.pad_token_id)
    ids = grouped["input_ids"][0, 1]  # the first history item's L token ids
    assert torch.allclose(prompt_embeddings(emb, grouped["input_ids"], tok.pad_token_id)[0, 1], emb(ids).sum(0))
    # a prompt whose every position is one token gives the ungrouped model's logits exactly
    prompts = [search_prompt("alien robot movie"), search_prompt("dog")]
    flat = pad_prompts(tokenize_prompts(tok, prompts, 64, None), tok.pad_token_id)
    slots = pad_prompts(tokenize_prompts(tok, prompts, 64, item_grouping(tok, scheme)), tok.pad_token_id)
    dec = torch.full((2, 1), tok.pad_token_id)
    with torch.no_grad():
        a = model(**flat, decoder_input_ids=dec).logits
        b = model(**slots, decoder_input_ids=dec).logits
    assert slots["input_ids"].dim() == 3 and torch.allclose(a, b, atol=1e-6)


def test_restricted_head_scores_only_id_tokens_with_the_same_loss_and_survives_reload(toy, tmp_path):
    *_, scheme, tok = toy
    allowed = output_tokens(tok, scheme)
    torch.manual_seed(0)
    full = build_model(tok, TINY).eval()
    torch.manual_seed(0)
    restricted = build_model(tok, TINY, allowed).eval()
    restricted.load_state_dict(full.state_dict())
    assert isinstance(restricted.lm_head, RestrictedHead)
    assert restricted.lm_head.weight is restricted.shared.weight  # still tied
    batch = PromptCollator(tok.pad_token_id)([{"input_ids": tok(search_prompt("alien"))["input_ids"],
                                               "labels": item_token_ids(tok, scheme, "search")[4].tolist() + [1]}])
    with torch.no_grad():
        lf, lr = full(**batch), restricted(**batch)
        logits_r = restricted(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                              decoder_input_ids=restricted._shift_right(batch["labels"])).logits
    assert torch.allclose(lf.logits[..., allowed], logits_r[..., allowed], atol=1e-5)
    others = np.setdiff1d(np.arange(len(tok)), allowed)
    assert torch.all(logits_r[..., others] == MASKED_LOGIT)
    # the loss over the ID tokens alone equals the full-vocabulary loss with the other logits masked
    masked = lf.logits.clone()
    masked[..., others] = MASKED_LOGIT
    ref = torch.nn.functional.cross_entropy(masked.view(-1, masked.size(-1)), batch["labels"].view(-1))
    assert torch.allclose(lr.loss, ref, atol=1e-5)
    restricted.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    _, again = load_saved(tmp_path)
    assert isinstance(again.lm_head, RestrictedHead) and again.lm_head.allowed_ids == allowed
    with torch.no_grad():
        back = again.eval()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                            decoder_input_ids=restricted._shift_right(batch["labels"])).logits
    assert torch.equal(back, logits_r)


def test_precision_is_detected_from_the_cpu_flags(tmp_path):
    with_bf16, without = tmp_path / "a", tmp_path / "b"
    with_bf16.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16 avx512_vnni\n")
    without.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2\n")
    assert cpu_has_native_bf16.__wrapped__(str(with_bf16)) is True
    assert cpu_has_native_bf16.__wrapped__(str(without)) is False
    assert cpu_has_native_bf16.__wrapped__(str(tmp_path / "missing")) is False
    assert resolve_precision("fp32") == "fp32"
    assert resolve_precision("auto") == ("bf16" if cpu_has_native_bf16() or torch.cuda.is_available() else "fp32")
    with pytest.raises(StudyInputError, match="generator.precision 'half'"):
        resolve_precision("half")


def test_unknown_precision_fails_before_training(runs_dir):
    items, inter, queries, codes = toy_data()
    with pytest.raises(StudyInputError, match="precision"):
        train_and_predict("content", codes, items, inter, queries, replace(TINY, precision="fp8"), 0, profile="smoke")


def test_finetune_precision_follows_the_option_and_names_it_when_wrong():
    from jointsid_utils.config import EmbeddingConfig, main
    from jointsid_utils.embeddings.finetune import finetune_bf16

    if not torch.cuda.is_available():
        assert finetune_bf16(EmbeddingConfig()) is False  # fp32 unless asked
        assert finetune_bf16(EmbeddingConfig(finetune_precision="auto")) == cpu_has_native_bf16()
    with pytest.raises(StudyInputError, match="embeddings.finetune_precision 'half'"):
        finetune_bf16(EmbeddingConfig(finetune_precision="half"))
    assert main(["smoke", "embeddings.finetune_precision", "half"]) == 2  # refused before any notebook runs


@pytest.mark.parametrize("grouped", [False, True])
def test_array_examples_collate_to_the_list_padding(toy, grouped):
    """The array-backed dataset and numpy collator give the batches the per-row list padding gave."""
    from jointsid_utils.generator.examples import encode_examples, scheme_examples

    items, inter, queries, _, scheme, tok = toy
    examples = scheme_examples(scheme, items, inter, queries, TINY, seed=0, case_seed=0)
    labels = {t: item_token_ids(tok, scheme, t) for t in ("search", "rec")}
    grouping = item_grouping(tok, scheme) if grouped else None
    data = encode_examples(examples.train, tok, labels, TINY.max_prompt_tokens, grouping)
    rows = list(range(0, len(data), 7))
    batch = PromptCollator(tok.pad_token_id)([data[i] for i in rows])

    frame = examples.train.iloc[rows]
    prompts = tokenize_prompts(tok, frame["prompt"], TINY.max_prompt_tokens, grouping)
    expected = pad_prompts(prompts, tok.pad_token_id)
    want_labels = [list(labels[t][i]) + [tok.eos_token_id] for t, i in zip(frame["task"], frame["target"])]
    assert torch.equal(batch["input_ids"], expected["input_ids"])
    assert torch.equal(batch["attention_mask"], expected["attention_mask"])
    assert batch["labels"].tolist() == want_labels
    assert batch["input_ids"].dim() == (3 if grouped else 2)


