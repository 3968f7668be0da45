"""Constrained beam search over valid semantic IDs: a prefix trie and a batched decoder.

Every item ID has the same length L (the dedup level makes rows unique, TIGER-style), so the trie is
L dense tables, one per level: ``child[l][node, code]`` is the node reached from a length-l prefix by
the level-l code, or -1. A decoding step then masks the level's logits with one gather, for all
cases and beams at once, on top of the model's encoder outputs and the decoder's KV cache. The last
step scores the end-of-sequence token, as ``generate`` does, so the ranking equals
``generate(num_beams=W, prefix_allowed_tokens_fn=trie.prefix_allowed_tokens_fn)`` (ties aside), at a
fraction of its cost (bench/bench_decoding.py). A model whose output layer is restricted to the ID
tokens and EOS (``id_output_only``) is run with that layer compact during the search: each step
computes and normalises only those logits, not the whole vocabulary, and the ranking is unchanged
because the masked logits add exactly zero to the normaliser.

Options:
- ``exclude``: items a case must not return (the rec protocol "exclude_history", docs/FEASIBILITY.md).
  Subtrees whose items are all excluded are pruned during the search, so no beam is wasted on them.
- ``num_beam_groups`` / ``diversity_penalty``: diverse beam search (Vijayakumar et al. 2018,
  Hamming diversity), the paper's decoding (beam 60, 30 groups, penalty 0.25). transformers 5 moved
  group beam search out of ``generate`` into a hub repo that needs ``trust_remote_code`` (not
  available offline), so it lives here, under the same trie constraint; duplicate items across
  groups are dropped, keeping the best-scored copy.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import numpy as np
import torch

from jointsid_utils.errors import StudyInputError
from jointsid_utils.generator.item_positions import encode_prompts
from jointsid_utils.generator.model import RestrictedHead


class IdTrie:
    """Prefix trie over item token-id rows (n_items, L); row i is item i's ID."""

    def __init__(self, item_token_ids: np.ndarray, *, eos_token_id: int, pad_token_id: int = 0):
        ids = np.asarray(item_token_ids, dtype=np.int64)
        if ids.ndim != 2 or len(np.unique(ids, axis=0)) != len(ids):
            raise StudyInputError("The trie needs one unique token-id row per item (n_items, L); "
                                  "add the dedup level so each ID names one item.")
        self.n_items, self.levels = ids.shape
        self.eos_token_id, self.pad_token_id = eos_token_id, pad_token_id
        self.item_token_ids = ids
        self.level_vocab: list[torch.Tensor] = []  # level -> token ids, index = local code
        self.child: list[torch.Tensor] = []  # level -> (n_nodes_l, C_l) next node or -1
        self.node_of: list[np.ndarray] = [np.zeros(self.n_items, dtype=np.int64)]  # level -> item's node
        local = np.empty_like(ids)
        for level in range(self.levels):
            vocab, local[:, level] = np.unique(ids[:, level], return_inverse=True)
            self.level_vocab.append(torch.from_numpy(vocab))
            _, nxt = np.unique(local[:, : level + 1], axis=0, return_inverse=True)
            nxt = nxt.reshape(-1)
            table = np.full((self.node_of[level].max() + 1, len(vocab)), -1, dtype=np.int64)
            table[self.node_of[level], local[:, level]] = nxt
            self.child.append(torch.from_numpy(table))
            self.node_of.append(nxt)
        self.leaf_item = np.empty(self.n_items, dtype=np.int64)  # leaf node -> item
        self.leaf_item[self.node_of[-1]] = np.arange(self.n_items)
        self.leaves_under = [np.bincount(n) for n in self.node_of]  # level -> items under each node
        self._allowed: dict[tuple[int, ...], list[int]] | None = None

    # --------------------------------------------------------------- for generate()
    def allowed_next(self, prefix: Sequence[int]) -> list[int]:
        """Token ids that may follow ``prefix`` (generated ID tokens, no start token)."""
        if self._allowed is None:
            allowed: dict[tuple[int, ...], set[int]] = {}
            for row in self.item_token_ids.tolist():
                for level in range(self.levels):
                    allowed.setdefault(tuple(row[:level]), set()).add(row[level])
            self._allowed = {k: sorted(v) for k, v in allowed.items()}
        prefix = tuple(prefix)
        if len(prefix) == self.levels:
            return [self.eos_token_id]
        return self._allowed.get(prefix, [self.pad_token_id])

    def prefix_allowed_tokens_fn(self, batch_id: int, input_ids: torch.Tensor) -> list[int]:
        """For ``generate(prefix_allowed_tokens_fn=...)``: drops the decoder start token."""
        return self.allowed_next(input_ids[1:].tolist())

    def items_of(self, sequences: torch.Tensor | np.ndarray) -> np.ndarray:
        """Item id of each generated sequence (start token first), -1 where it is not a valid ID."""
        seqs = np.asarray(sequences)[:, 1 : self.levels + 1]
        lookup = {tuple(r): i for i, r in enumerate(self.item_token_ids.tolist())}
        return np.array([lookup.get(tuple(r), -1) for r in seqs.tolist()], dtype=np.int64)

    # --------------------------------------------------------------- exclusion
    def alive_tables(self, exclude: Sequence[Sequence[int]]) -> list[torch.Tensor]:
        """Per level l >= 1, (B, n_nodes_l) bool: the node still has an item not in the case's ``exclude``."""
        out = []
        for level in range(1, self.levels + 1):
            n_nodes = len(self.leaves_under[level])
            flat = np.concatenate([b * n_nodes + self.node_of[level][np.asarray(ex, dtype=np.int64)]
                                   for b, ex in enumerate(exclude)] + [np.zeros(0, dtype=np.int64)])
            counts = np.bincount(flat, minlength=len(exclude) * n_nodes).reshape(len(exclude), n_nodes)
            out.append(torch.from_numpy(self.leaves_under[level][None, :] - counts > 0))
        return out


@torch.no_grad()
def constrained_beam_search(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, trie: IdTrie, *,
                            beam_size: int = 30, top_k: int = 30, exclude: Sequence[Sequence[int]] | None = None,
                            num_beam_groups: int = 1, diversity_penalty: float = 0.0, batch_size: int = 64,
                            score_eos: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Top ``top_k`` distinct valid items per case: ``(items, scores)``, both (n_cases, top_k), best first.

    ``items`` is -1 where fewer valid items exist. Cases are decoded ``batch_size`` at a time, shortest
    prompts together to save padding.
    """
    if beam_size < top_k and num_beam_groups == 1:
        raise StudyInputError(f"beam_size {beam_size} is below top_k {top_k}; a beam returns at most its width.")
    if beam_size % num_beam_groups:
        raise StudyInputError(f"beam_size {beam_size} is not a multiple of num_beam_groups {num_beam_groups}.")
    model.eval()
    n = input_ids.shape[0]
    items = np.full((n, top_k), -1, dtype=np.int64)
    scores = np.full((n, top_k), -np.inf, dtype=np.float32)
    lengths = attention_mask.sum(1).cpu()  # prompts may already sit on the model's device
    order = torch.argsort(lengths, stable=True)
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        width = int(lengths[idx].max())
        ex = [exclude[i] for i in idx.tolist()] if exclude is not None else None
        it, sc = _search_batch(model, input_ids[idx, :width], attention_mask[idx, :width], trie, beam_size,
                               top_k, ex, num_beam_groups, diversity_penalty, score_eos)
        items[idx.numpy()], scores[idx.numpy()] = it, sc
    return items, scores


def _search_batch(model, input_ids, attention_mask, trie: IdTrie, beam_size, top_k, exclude, groups, penalty,
                  score_eos):
    from transformers.cache_utils import DynamicCache, EncoderDecoderCache

    device = next(model.parameters()).device
    input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
    B, W, G = input_ids.shape[0], beam_size, groups
    Wg = W // G
    enc = encode_prompts(model, input_ids, attention_mask)  # (B, S) token ids or (B, S, slots) grouped
    hidden, mask = enc.last_hidden_state, attention_mask
    cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
    start = model.config.decoder_start_token_id
    dec_in = torch.full((B, 1), start, dtype=torch.long, device=device)
    node = torch.zeros(B, W, dtype=torch.long, device=device)
    beam_scores = torch.full((B, G, Wg), float("-inf"), device=device)
    beam_scores[:, :, 0] = 0.0  # one live beam per group at the start, as generate does
    beam_scores = beam_scores.view(B, W)
    alive = [a.to(device) for a in trie.alive_tables(exclude)] if exclude is not None else None
    offsets = torch.arange(B, device=device)[:, None] * W
    kw = _cache_kwarg(model)
    with _scored_columns(model, device) as column:
        for level in range(trie.levels):
            out = model(encoder_outputs=(hidden,), attention_mask=mask, decoder_input_ids=dec_in, **{kw: cache},
                        use_cache=True)
            vocab = trie.level_vocab[level].to(device)
            logp = torch.log_softmax(out.logits[:, -1, :].float(), dim=-1)[:, column[vocab]]
            C = logp.shape[-1]
            if level == 0:
                # The first step runs once per case (all beams are the start token); only then are the
                # encoder states and the cross-attention cache copied to the beams. They stay identical
                # within a case, so later steps reorder the self-attention cache alone.
                logp = logp[:, None, :].expand(B, W, C)
                hidden, mask = hidden.repeat_interleave(W, dim=0), mask.repeat_interleave(W, dim=0)
                cache.batch_repeat_interleave(W)
            else:
                logp = logp.view(B, W, C)
            nxt = trie.child[level].to(device)[node]  # (B, W, C)
            valid = nxt >= 0
            if alive is not None:
                valid &= alive[level].gather(1, nxt.clamp(min=0).view(B, -1)).view(B, W, C)
            logp = logp.masked_fill(~valid, float("-inf"))
            if G == 1:
                top_s, top_i = (beam_scores[..., None] + logp).view(B, -1).topk(W, dim=1)
            else:
                top_s, top_i = _diverse_step(beam_scores, logp, G, penalty)
            src, code = top_i // C, top_i % C
            node = nxt.view(B, -1).gather(1, top_i).clamp(min=0)
            beam_scores = top_s
            cache.self_attention_cache.reorder_cache((src + offsets).view(-1))
            dec_in = vocab[code].view(-1, 1)
        if score_eos:
            out = model(encoder_outputs=(hidden,), attention_mask=mask, decoder_input_ids=dec_in, **{kw: cache},
                        use_cache=True)
            eos = torch.log_softmax(out.logits[:, -1, :].float(), dim=-1)[:, column[trie.eos_token_id]]
            beam_scores = beam_scores + eos.view(B, W)
    return _distinct_top_k(trie, node.cpu(), beam_scores.cpu(), top_k)


@contextlib.contextmanager
def _scored_columns(model, device: torch.device) -> Iterator[torch.Tensor]:
    """Each token id's column in the logits the model returns inside the block: a restricted head runs
    compact (the ID tokens and EOS only; other ids map to -100, never looked up), any other head returns
    the whole vocabulary."""
    head = model.get_output_embeddings()
    if not isinstance(head, RestrictedHead):
        yield torch.arange(model.config.vocab_size, device=device)
        return
    head.compact = True
    try:
        yield head.index(device)[1]
    finally:
        head.compact = False


def _distinct_top_k(trie: IdTrie, node: torch.Tensor, final: torch.Tensor, top_k: int) -> tuple[np.ndarray, np.ndarray]:
    """The final beams (leaf ``node`` and score, (B, W)) as ``top_k`` distinct items per case, best first."""
    B = node.shape[0]
    found = torch.from_numpy(trie.leaf_item)[node]
    found[~torch.isfinite(final)] = -1
    ranked = torch.argsort(final, dim=1, descending=True, stable=True)
    found, final = found.gather(1, ranked).numpy(), final.gather(1, ranked).numpy()
    items = np.full((B, top_k), -1, dtype=np.int64)
    scores = np.full((B, top_k), -np.inf, dtype=np.float32)
    for b in range(B):  # distinct items (only diverse groups can repeat one), best copy kept
        keep = [j for j, i in enumerate(found[b]) if i >= 0]
        _, first = np.unique(found[b, keep], return_index=True)
        keep = np.asarray(keep, dtype=np.int64)[np.sort(first)][:top_k]
        items[b, : len(keep)], scores[b, : len(keep)] = found[b, keep], final[b, keep]
    return items, scores


def _cache_kwarg(model) -> str:
    """transformers >= 5.2x names the KV cache ``cache`` (``past_key_values`` is deprecated); older 5.x do not.
    Read from the first class in the model's MRO whose ``forward`` names either (``JointT5.forward`` passes
    the cache through ``**kwargs``)."""
    import inspect

    for cls in type(model).__mro__:
        forward = cls.__dict__.get("forward")
        params = inspect.signature(forward).parameters if forward is not None else {}
        for name in ("cache", "past_key_values"):
            if name in params:
                return name
    return "past_key_values"


def _diverse_step(beam_scores, logp, groups, penalty):
    """One step of Hamming-diverse beam search: each group pays ``penalty`` per earlier group's pick of a code."""
    B, W, C = logp.shape
    Wg = W // groups
    picked = torch.zeros(B, C, device=logp.device)
    top_s, top_i = [], []
    for g in range(groups):
        sl = slice(g * Wg, (g + 1) * Wg)
        cand = beam_scores[:, sl, None] + logp[:, sl] - penalty * picked[:, None, :]
        s, i = cand.reshape(B, -1).topk(Wg, dim=1)
        picked.scatter_add_(1, i % C, torch.ones_like(s))
        top_s.append(s)
        top_i.append(i + g * Wg * C)  # back to flat (beam, code) indices over all W beams
    return torch.cat(top_s, 1), torch.cat(top_i, 1)


@torch.no_grad()
def generate_with_trie(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, trie: IdTrie, *,
                       beam_size: int = 30, top_k: int = 30, batch_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """The same search through HF ``generate(prefix_allowed_tokens_fn=...)``: the reference for tests and the bench."""
    n = input_ids.shape[0]
    items = np.full((n, top_k), -1, dtype=np.int64)
    scores = np.full((n, top_k), -np.inf, dtype=np.float32)
    device = next(model.parameters()).device
    for s in range(0, n, batch_size):
        ids, am = input_ids[s : s + batch_size].to(device), attention_mask[s : s + batch_size].to(device)
        out = model.generate(input_ids=ids, attention_mask=am, num_beams=beam_size, num_return_sequences=beam_size,
                             max_new_tokens=trie.levels + 1, prefix_allowed_tokens_fn=trie.prefix_allowed_tokens_fn,
                             do_sample=False, early_stopping=True, length_penalty=0.0,
                             output_scores=True, return_dict_in_generate=True)
        found = trie.items_of(out.sequences.cpu()).reshape(len(ids), beam_size)
        seq_scores = out.sequences_scores.float().cpu().numpy().reshape(len(ids), beam_size)
        for b in range(len(ids)):
            keep = [j for j in range(beam_size) if found[b, j] >= 0 and np.isfinite(seq_scores[b, j])
                    and seq_scores[b, j] > -1e8][:top_k]
            items[s + b, : len(keep)] = found[b, keep]
            scores[s + b, : len(keep)] = seq_scores[b, keep]
    return items, scores
