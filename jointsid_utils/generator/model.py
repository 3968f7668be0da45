"""The generator's T5 and its tokenizer (STUDY.md §2.5).

CPU profiles build a small T5 from scratch with a word-piece vocabulary trained on the study's own
text (``tokenization.build_tokenizer``); ``paper`` loads ``base_model`` (flan-t5-base) and its tokenizer
with ``from_pretrained`` and adds the task and ID tokens, resizing the embeddings for them.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from jointsid_utils.config import GeneratorConfig
from jointsid_utils.errors import StudyInputError
from jointsid_utils.generator.tokenization import IdScheme, build_tokenizer, load_base_tokenizer


def make_tokenizer(scheme: IdScheme, items: pd.DataFrame, queries: pd.DataFrame, gcfg: GeneratorConfig):
    """From-scratch profiles: a small word-piece vocabulary on train queries + titles; ``paper``: the base one."""
    if gcfg.base_model is not None:
        return load_base_tokenizer(gcfg.base_model, scheme)
    corpus = list(queries.loc[queries["split"] == "train", "query"]) + list(items["title"].astype(str))
    return build_tokenizer(corpus, scheme, vocab_size=gcfg.vocab_size, kind=gcfg.tokenizer_kind)


def build_model(tokenizer, gcfg: GeneratorConfig):
    """A small T5 from scratch, or ``from_pretrained(base_model)`` with embeddings resized for the new tokens."""
    from transformers import T5Config, T5ForConditionalGeneration

    if gcfg.base_model is not None:
        model = T5ForConditionalGeneration.from_pretrained(gcfg.base_model)
        model.resize_token_embeddings(len(tokenizer))
        return model
    if gcfg.d_model % gcfg.num_heads:
        raise StudyInputError(f"generator.d_model {gcfg.d_model} is not divisible by generator.num_heads "
                              f"{gcfg.num_heads}; pick sizes that divide.")
    config = T5Config(vocab_size=len(tokenizer), d_model=gcfg.d_model, d_ff=gcfg.d_ff, d_kv=gcfg.d_model // gcfg.num_heads,
                      num_layers=gcfg.num_layers, num_decoder_layers=gcfg.num_layers, num_heads=gcfg.num_heads,
                      dropout_rate=gcfg.dropout, feed_forward_proj="relu", pad_token_id=tokenizer.pad_token_id,
                      eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.pad_token_id)
    return T5ForConditionalGeneration(config)


def load_saved(out: Path):
    """(tokenizer, model) saved in ``out``; the model on the GPU when there is one."""
    from transformers import AutoTokenizer, T5ForConditionalGeneration

    model = T5ForConditionalGeneration.from_pretrained(out).to("cuda" if torch.cuda.is_available() else "cpu")
    return AutoTokenizer.from_pretrained(out), model
