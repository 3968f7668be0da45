"""Ranked lists from a trained generator: trie-constrained beam search over every test case.

Search is decoded once; rec under both protocols, "all" (the list as decoded, the paper's) and
"exclude_history" (the user's earlier items removed during the search, docs/FEASIBILITY.md). Each case
gets the top ``generator.top_k`` distinct valid items.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Sequence

import numpy as np
import pandas as pd

from jointsid_utils.config import GeneratorConfig
from jointsid_utils.errors import StudyInputError
from jointsid_utils.generator.decoding import IdTrie, constrained_beam_search
from jointsid_utils.generator.examples import Examples, validation_cases
from jointsid_utils.generator.item_positions import item_grouping, pad_prompts, tokenize_prompts
from jointsid_utils.generator.tokenization import IdScheme, item_token_ids

log = logging.getLogger(__name__)

DIVERSE = {"beam_size": 60, "num_beam_groups": 30, "diversity_penalty": 0.25}  # the paper's decoding
DECODINGS = ("beam", "diverse")


def search_settings(gcfg: GeneratorConfig) -> dict[str, Any]:
    """``constrained_beam_search`` settings of ``generator.decoding``: ours (beam ``beam_size``) or the paper's."""
    if gcfg.decoding not in DECODINGS:
        raise StudyInputError(f"Unknown generator.decoding {gcfg.decoding!r}; choose 'beam' or 'diverse'.")
    return dict(DIVERSE) if gcfg.decoding == "diverse" else {"beam_size": gcfg.beam_size}


def predict(model, tokenizer, scheme: IdScheme, examples: Examples, gcfg: GeneratorConfig) -> pd.DataFrame:
    """Ranked lists for the test cases: search, rec (protocol "all") and rec (protocol "exclude_history")."""
    frames = [rank_cases(model, tokenizer, scheme, "search", examples.test_search, gcfg, [("all", None)])]
    frames.append(rank_cases(model, tokenizer, scheme, "rec", examples.test_rec, gcfg,
                             [("all", None), ("exclude_history", list(examples.test_rec["history"]))]))
    return pd.concat(frames, ignore_index=True)


def predict_validation(model, tokenizer, scheme: IdScheme, examples: Examples, gcfg: GeneratorConfig) -> pd.DataFrame:
    """Ranked lists for the **validation** cases (the validation queries, each user's validation item;
    protocol "all"): what every setting is chosen on, so choosing never reads the test split."""
    frames = []
    for task in ("search", "rec"):
        cases = validation_cases(examples, task)
        frames.append(rank_cases(model, tokenizer, scheme, task, cases, gcfg, [("all", None)]))
    return pd.concat(frames, ignore_index=True)


def rank_cases(model, tokenizer, scheme: IdScheme, task: str, cases: pd.DataFrame, gcfg: GeneratorConfig,
               protocols: Sequence[tuple[str, Any]]) -> pd.DataFrame:
    """One ranked frame per (protocol, exclusion lists) for ``cases`` of ``task`` (prompt and target columns)."""
    settings = search_settings(gcfg)
    trie = IdTrie(item_token_ids(tokenizer, scheme, task), eos_token_id=tokenizer.eos_token_id,
                  pad_token_id=tokenizer.pad_token_id)
    grouping = item_grouping(tokenizer, scheme) if gcfg.rec_item_positions else None
    enc = pad_prompts(tokenize_prompts(tokenizer, cases["prompt"], gcfg.max_prompt_tokens, grouping),
                      tokenizer.pad_token_id)
    frames = []
    for protocol, exclude in protocols:
        started = time.time()
        items, scores = constrained_beam_search(model, enc["input_ids"], enc["attention_mask"], trie,
                                                top_k=gcfg.top_k, exclude=exclude,
                                                batch_size=gcfg.decode_batch_size, **settings)
        seconds = time.time() - started
        frame = _ranked_frame(cases, task, protocol, gcfg.decoding, items, scores)
        frame.attrs[f"{task}/{protocol}_decode_seconds"] = seconds
        log.info("decoded %d %s cases (%s) in %.1f s", len(frame), task, protocol, seconds)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _ranked_frame(cases: pd.DataFrame, task: str, protocol: str, decoding: str, items: np.ndarray,
                  scores: np.ndarray) -> pd.DataFrame:
    """One row per case: its ids, target and ranked items with their scores (padding dropped)."""
    keep: Sequence[str] = [c for c in ("case_id", "query_id", "query", "user_id") if c in cases]
    frame = cases[keep].copy()
    frame["task"], frame["target"], frame["protocol"], frame["decoding"] = task, cases["target"].to_numpy(), protocol, decoding
    frame["ranked"] = [row[row >= 0].tolist() for row in items]
    frame["scores"] = [row[np.isfinite(row)].tolist() for row in scores]
    return frame

