"""Constrained decoding: valid, distinct items; equal to generate(prefix_allowed_tokens_fn); separate tries."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from jointsid_utils.generator.decoding import IdTrie, constrained_beam_search, generate_with_trie
from jointsid_utils.generator.tokenization import build_tokenizer, item_token_ids, make_id_scheme

V = 120


@pytest.fixture(scope="module")
def model():
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    cfg = T5Config(vocab_size=V, d_model=32, d_ff=64, num_layers=1, num_decoder_layers=1, num_heads=2, d_kv=16,
                   decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    return T5ForConditionalGeneration(cfg).eval()


def random_ids(seed: int, n: int, levels: int, codes: int) -> np.ndarray:
    """n unique rows of token ids; level l uses tokens 3 + l * codes ..."""
    gen = np.random.default_rng(seed)
    rows = np.unique(gen.integers(0, codes, size=(4 * n + 8, levels)), axis=0)
    rows = rows[gen.permutation(len(rows))[:n]]
    return rows + 3 + codes * np.arange(levels)


def prompts(seed: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = np.random.default_rng(seed)
    ids = torch.tensor(gen.integers(3, V, size=(n, 7)))
    am = torch.ones_like(ids)
    am[::2, 5:] = 0
    ids[am == 0] = 0
    return ids, am


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 60), levels=st.integers(1, 3), codes=st.integers(2, 9),
       beam=st.sampled_from([1, 5, 30]), exclude=st.booleans())
def test_valid_and_distinct(model, seed, n, levels, codes, beam, exclude):
    tok = random_ids(seed, n, levels, codes)
    n = len(tok)
    trie = IdTrie(tok, eos_token_id=1)
    ids, am = prompts(seed, 3)
    ex = [np.random.default_rng(seed + b).choice(n, size=min(n, b * 2), replace=False) for b in range(3)] \
        if exclude else None
    items, scores = constrained_beam_search(model, ids, am, trie, beam_size=beam, top_k=beam, exclude=ex,
                                            batch_size=2)
    for b in range(3):
        got = items[b][items[b] >= 0]
        assert len(set(got.tolist())) == len(got)  # distinct
        assert ((got >= 0) & (got < n)).all()  # valid item ids, i.e. IDs in the trie
        allowed = n - (len(ex[b]) if exclude else 0)
        assert len(got) == min(beam, allowed)
        if exclude:
            assert not np.isin(got, ex[b]).any()
        assert np.all(np.diff(scores[b][: len(got)]) <= 1e-6)  # best first


def test_equals_generate_with_prefix_allowed_tokens_fn(model):
    trie = IdTrie(random_ids(1, 200, 3, 8), eos_token_id=1)
    ids, am = prompts(2, 12)
    ours, s_ours = constrained_beam_search(model, ids, am, trie, beam_size=30, top_k=30, batch_size=5)
    ref, s_ref = generate_with_trie(model, ids, am, trie, beam_size=30, top_k=30)
    assert (ours >= 0).all()
    np.testing.assert_allclose(s_ours, s_ref, atol=1e-4)
    same = (ours == ref).all(1).mean()
    assert same >= 0.9  # ties aside


def test_diverse_beam_returns_distinct_valid_items(model):
    trie = IdTrie(random_ids(3, 100, 3, 6), eos_token_id=1)
    ids, am = prompts(4, 4)
    items, _ = constrained_beam_search(model, ids, am, trie, beam_size=60, top_k=30, num_beam_groups=30,
                                       diversity_penalty=0.25)
    for row in items:
        got = row[row >= 0]
        # groups may reach the same item; duplicates are dropped, so "up to 30" (the paper's decoding)
        assert len(got) == len(set(got.tolist())) and 1 <= len(got) <= 30 and (got < 100).all()


def test_separate_prompts_emit_only_their_namespace(model):
    gen = np.random.default_rng(5)
    search = np.unique(gen.integers(0, 4, size=(300, 2)), axis=0)
    search = np.column_stack([search, np.zeros(len(search), dtype=int)])
    rec = search[gen.permutation(len(search))]
    scheme = make_id_scheme("separate", (search, rec))
    tok = build_tokenizer(["a movie about space", "funny films"], scheme, vocab_size=50)
    search_trie = IdTrie(item_token_ids(tok, scheme, "search"), eos_token_id=tok.eos_token_id)
    rec_trie = IdTrie(item_token_ids(tok, scheme, "rec"), eos_token_id=tok.eos_token_id)
    m = model.__class__(model.config.__class__(**{**model.config.to_dict(), "vocab_size": len(tok)})).eval()
    enc = tok(["<search> a movie about space"], return_tensors="pt")
    s_items, _ = constrained_beam_search(m, enc["input_ids"], enc["attention_mask"], search_trie, beam_size=10,
                                         top_k=10)
    s_tokens = {t for i in s_items[0] for t in scheme.item_tokens("search", int(i))}
    assert all(t.startswith("<s") for t in s_tokens)
    seqs = m.generate(**enc, num_beams=10, num_return_sequences=10, max_new_tokens=4,
                      prefix_allowed_tokens_fn=rec_trie.prefix_allowed_tokens_fn)
    emitted = tok.convert_ids_to_tokens(seqs[:, 1:4].reshape(-1).tolist())
    assert all(t.startswith("<r") for t in emitted)


def test_trie_rejects_duplicate_ids():
    with pytest.raises(ValueError, match="unique"):
        IdTrie(np.array([[3, 4], [3, 4]]), eos_token_id=1)


def test_a_restricted_head_decodes_compact_with_the_full_width_ranking(monkeypatch):
    """Scoring only the ID tokens and EOS ranks as the full-width masked logits do (same items, same scores
    to rounding): the masked logits add nothing to the normaliser."""
    from jointsid_utils.config import GeneratorConfig
    from jointsid_utils.generator import decoding
    from jointsid_utils.generator.model import build_model

    ids = random_ids(3, 150, 3, 8)
    tokenizer = type("Tok", (), {"__len__": lambda self: V, "pad_token_id": 0, "eos_token_id": 1})()
    torch.manual_seed(0)
    restricted = build_model(tokenizer, GeneratorConfig(d_model=32, d_ff=64, num_layers=1, num_heads=2),
                             sorted({1, *ids.ravel().tolist()})).eval()
    trie = IdTrie(ids, eos_token_id=1)
    prompt_ids, am = prompts(4, 40)
    exclude = [list(range(i % 7)) for i in range(40)]

    def search():
        return [constrained_beam_search(restricted, prompt_ids, am, trie, beam_size=20, top_k=20, batch_size=16, **kw)
                for kw in ({}, {"exclude": exclude}, {"num_beam_groups": 4, "diversity_penalty": 0.25})]

    compact = search()
    monkeypatch.setattr(decoding, "RestrictedHead", type("NotAHead", (), {}))  # the full-width path
    full = search()
    assert not restricted.lm_head.compact
    for (items_c, scores_c), (items_f, scores_f) in zip(compact, full):
        np.testing.assert_array_equal(items_c, items_f)
        np.testing.assert_allclose(scores_c, scores_f, atol=1e-5)
