"""One encoder position per history item (``generator.rec_item_positions``): a cheaper rec prompt.

A rec prompt writes each of its K history items as the L tokens of its rec ID, so the encoder reads
2 + K * L positions (32 on default) while a search prompt is about 12. Grouped, each position holds up
to L token ids ("slots") and its input vector is the sum of their embeddings: a word is one token in
slot 0, a history item is its L ID tokens. The level-specific ID tokens (``<L0_a>``, ``<L1_b>``, ...) keep
the sum unambiguous about which code sits at which level, and T5's relative position bias keeps the
items' order, so no extra position embedding is needed. Rec prompts shrink to 2 + K positions and every
batch is about as short as a search batch (bench/bench_generator_throughput.py).

    ids = group_item_tokens(tokenizer(prompt)["input_ids"], is_id_token, width=L, pad=0)   # [[tok, 0, 0], ...]
    batch = pad_prompts([ids, ...], pad=0)            # input_ids (B, S, L), attention_mask (B, S)
    embeds = prompt_embeddings(model.shared, batch["input_ids"], pad=0)                    # (B, S, d)

A 2-d ``input_ids`` (one token per position) passes through every function unchanged, so one code path
serves both prompt layouts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

Prompt = list  # list[int] (one token per position) or list[list[int]] (slots per position)


@dataclass(frozen=True)
class ItemGrouping:
    """How to group a scheme's prompts: which token ids are ID tokens, and how many make one item."""

    is_id_token: np.ndarray
    width: int
    pad: int


def item_grouping(tokenizer, scheme) -> ItemGrouping:
    """The grouping of ``scheme``'s ID tokens (an ``IdScheme``) under ``tokenizer``."""
    ids = tokenizer.convert_tokens_to_ids(scheme.all_tokens())
    return ItemGrouping(id_token_mask(tokenizer, ids), scheme.levels, tokenizer.pad_token_id)


def tokenize_prompts(tokenizer, prompts: Sequence[str], max_len: int, grouping: ItemGrouping | None) -> list[Prompt]:
    """Token ids per prompt (truncated to ``max_len`` tokens), grouped per item when ``grouping`` is given."""
    ids = tokenizer(list(prompts), truncation=True, max_length=max_len)["input_ids"]
    if grouping is None:
        return ids
    return [group_item_tokens(row, grouping.is_id_token, grouping.width, grouping.pad) for row in ids]


def id_token_mask(tokenizer, id_token_ids: Sequence[int]) -> np.ndarray:
    """A boolean mask over the tokenizer's ids: True for the scheme's ID tokens."""
    mask = np.zeros(len(tokenizer), dtype=bool)
    mask[np.asarray(list(id_token_ids), dtype=np.int64)] = True
    return mask


def group_item_tokens(ids: Sequence[int], is_id_token: np.ndarray, width: int, pad: int) -> list[list[int]]:
    """``ids`` as positions of ``width`` slots: each run of ``width`` ID tokens (one item) is one position,
    every other token a position of its own; empty slots hold ``pad``."""
    out, i = [], 0
    while i < len(ids):
        if is_id_token[ids[i]]:
            item = list(ids[i : i + width])
            i += len(item)
        else:
            item = [ids[i]]
            i += 1
        out.append(item + [pad] * (width - len(item)))
    return out


def pad_prompts(prompts: Sequence[Prompt], pad: int) -> dict[str, torch.Tensor]:
    """Right-padded ``input_ids`` ((B, S) or (B, S, slots)) and ``attention_mask`` (B, S)."""
    longest = max(len(p) for p in prompts)
    grouped = bool(prompts) and bool(prompts[0]) and isinstance(prompts[0][0], (list, tuple))
    shape = (len(prompts), longest, len(prompts[0][0])) if grouped else (len(prompts), longest)
    input_ids = torch.full(shape, pad, dtype=torch.long)
    mask = torch.zeros(len(prompts), longest, dtype=torch.long)
    for row, p in enumerate(prompts):
        if p:
            input_ids[row, : len(p)] = torch.as_tensor(p, dtype=torch.long)
        mask[row, : len(p)] = 1
    return {"input_ids": input_ids, "attention_mask": mask}


def prompt_embeddings(embedding: torch.nn.Embedding, input_ids: torch.Tensor, pad: int) -> torch.Tensor:
    """(B, S, slots) -> (B, S, d): the sum of each position's non-pad slot embeddings.

    Slot 0 is never masked, so a padded position embeds the pad token as an ungrouped prompt would."""
    keep = input_ids != pad
    keep[..., 0] = True
    return (embedding(input_ids) * keep.unsqueeze(-1).to(embedding.weight.dtype)).sum(dim=-2)


def encode_prompts(model, input_ids: torch.Tensor, attention_mask: torch.Tensor):
    """The encoder's outputs for ungrouped (B, S) or grouped (B, S, slots) prompts."""
    if input_ids.dim() == 2:
        return model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask)
    embeds = prompt_embeddings(model.get_input_embeddings(), input_ids, model.config.pad_token_id)
    return model.get_encoder()(inputs_embeds=embeds, attention_mask=attention_mask)


class PromptCollator:
    """Pads a batch of ``{"input_ids", "labels"}`` examples (numpy arrays or lists) in numpy; labels are
    padded with -100 (ignored by the loss). One array per batch replaces a tensor per row, which cost
    about 4% of a CPU training step."""

    def __init__(self, pad: int):
        self.pad = pad

    def __call__(self, features: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        prompts = [np.asarray(f["input_ids"], dtype=np.int64) for f in features]
        lengths = np.fromiter((len(p) for p in prompts), dtype=np.int64, count=len(prompts))
        longest = int(lengths.max())
        slots = next((p.shape[1:] for p in prompts if p.ndim == 2), ())
        input_ids = np.full((len(prompts), longest, *slots), self.pad, dtype=np.int64)
        for row, p in enumerate(prompts):
            input_ids[row, : len(p)] = p
        labels = [np.asarray(f["labels"], dtype=np.int64) for f in features]
        padded = np.full((len(labels), max(len(x) for x in labels)), -100, dtype=np.int64)
        for row, x in enumerate(labels):
            padded[row, : len(x)] = x
        mask = (np.arange(longest)[None, :] < lengths[:, None]).astype(np.int64)
        return {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(mask),
                "labels": torch.from_numpy(padded)}
