"""The generator's T5 and its tokenizer (STUDY.md §2.5).

CPU profiles build a small T5 from scratch with a word-piece vocabulary trained on the study's own
text (``tokenization.build_tokenizer``); ``paper`` loads ``base_model`` (flan-t5-base) and its tokenizer
with ``from_pretrained`` and adds the task and ID tokens, resizing the embeddings for them.

With ``generator.warm_start`` a scheme's model starts from the shared text-only checkpoint of its seed
(``generator.pretrain``): its ID tokens are new embedding rows, each the mean title embedding of the items
that carry that code at that level plus a little seeded noise (``id_token_init``), so they neither start at
one point nor ignore what the pretraining learned about the items.

``JointT5`` is T5 with two options of ``GeneratorConfig``: grouped rec prompts (``rec_item_positions``,
``item_positions``) and an output layer restricted to the ID tokens and EOS (``id_output_only``): the
decoder only ever emits those, so the other ~4,000 logits are neither computed nor normalised over, in
training and in decoding alike (the restriction is stored in the model's config and restored on load).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from jointsid_utils.config import GeneratorConfig
from jointsid_utils.errors import StudyInputError
from jointsid_utils.generator.item_positions import prompt_embeddings
from jointsid_utils.generator.tokenization import TASKS, IdScheme, build_tokenizer, load_base_tokenizer

MASKED_LOGIT = -1e4  # a logit outside the output set: exp() is 0 in fp32 and bf16 alike, unlike -inf it is finite


class RestrictedHead(torch.nn.Linear):
    """T5's output layer computing only the rows of ``allowed`` token ids; every other logit is
    ``MASKED_LOGIT``. The weight stays the full (tied) matrix, so checkpoints keep T5's layout.

    With ``compact`` set (training, see ``JointT5.forward``) it returns the allowed logits alone, so the
    loss normalises over ~260 entries instead of the whole vocabulary; the result is the same loss."""

    def __init__(self, d_model: int, vocab_size: int, allowed: list[int]):
        super().__init__(d_model, vocab_size, bias=False)
        self.allowed_ids = sorted({int(i) for i in allowed})
        self.compact = False
        # Index tensors are made per device on first use, not registered as buffers: from_pretrained builds
        # modules on the meta device and would leave non-persistent buffers without data.
        self._index: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    def index(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(allowed ids, position of every token id among them or -100) on ``device``."""
        if device not in self._index:
            ids = torch.as_tensor(self.allowed_ids, dtype=torch.long, device=device)
            position = torch.full((self.out_features,), -100, dtype=torch.long, device=device)
            position[ids] = torch.arange(len(ids), device=device)
            self._index[device] = (ids, position)
        return self._index[device]

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        ids, _ = self.index(hidden.device)
        small = torch.nn.functional.linear(hidden, self.weight[ids])
        if self.compact:
            return small
        full = small.new_full((*small.shape[:-1], self.out_features), MASKED_LOGIT)
        return full.index_copy(-1, ids, small)

    def compact_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """Labels as indices among the allowed ids (-100, the ignored label, stays -100)."""
        _, position = self.index(labels.device)
        return torch.where(labels >= 0, position[labels.clamp(min=0)], labels)


def restrict_output(model, allowed: list[int]) -> None:
    """Swap ``model.lm_head`` for a ``RestrictedHead`` over ``allowed`` that keeps the same weight tensor
    (tied or not), and record ``allowed`` in the config so a reload restores it."""
    head = RestrictedHead(model.config.d_model, model.lm_head.out_features, allowed)
    head.weight = model.lm_head.weight
    model.lm_head = head
    model.config.output_token_ids = head.allowed_ids


@lru_cache(maxsize=None)
def _t5_class():
    from transformers import T5ForConditionalGeneration

    class JointT5(T5ForConditionalGeneration):
        """T5 that also reads grouped prompts (B, S, slots) and may restrict its output layer."""

        def __init__(self, config):
            super().__init__(config)
            if getattr(config, "output_token_ids", None):
                restrict_output(self, config.output_token_ids)

        # ``labels`` is named (not left to **kwargs): the Trainer finds the label column in this signature.
        def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, labels=None, **kwargs):
            if input_ids is not None and input_ids.dim() == 3:
                inputs_embeds, input_ids = prompt_embeddings(self.shared, input_ids, self.config.pad_token_id), None
            head = self.lm_head
            if labels is None or not isinstance(head, RestrictedHead):
                return super().forward(input_ids=input_ids, attention_mask=attention_mask,
                                       inputs_embeds=inputs_embeds, labels=labels, **kwargs)
            # Restricted head with labels (training and validation loss): the loss over the allowed logits.
            if kwargs.get("decoder_input_ids") is None and kwargs.get("decoder_inputs_embeds") is None:
                kwargs["decoder_input_ids"] = self._shift_right(labels)
            head.compact = True
            try:
                out = super().forward(input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds,
                                      **kwargs)
            finally:
                head.compact = False
            logits = out.logits
            out.loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)).float(),
                                                         head.compact_labels(labels).reshape(-1), ignore_index=-100)
            return out

    return JointT5


def make_tokenizer(scheme: IdScheme, items: pd.DataFrame, queries: pd.DataFrame, gcfg: GeneratorConfig,
                   warm_start: Path | None = None):
    """From-scratch profiles: a small word-piece vocabulary on train queries + titles; ``paper``: the base one;
    a warm start: the pretrained checkpoint's shared vocabulary with the scheme's ID tokens appended."""
    if warm_start is not None:
        from transformers import AutoTokenizer

        from jointsid_utils.generator.pretrain import with_id_tokens

        return with_id_tokens(AutoTokenizer.from_pretrained(warm_start), scheme)
    if gcfg.base_model is not None:
        return load_base_tokenizer(gcfg.base_model, scheme)
    corpus = list(queries.loc[queries["split"] == "train", "query"]) + list(items["title"].astype(str))
    return build_tokenizer(corpus, scheme, vocab_size=gcfg.vocab_size, kind=gcfg.tokenizer_kind)


def build_model(tokenizer, gcfg: GeneratorConfig, output_token_ids: list[int] | None = None):
    """A small T5 from scratch, or ``from_pretrained(base_model)`` with embeddings resized for the new tokens;
    ``output_token_ids`` (the ID tokens and EOS) restricts the output layer."""
    from transformers import T5Config

    JointT5 = _t5_class()
    if gcfg.base_model is not None:
        model = JointT5.from_pretrained(gcfg.base_model)
        model.resize_token_embeddings(len(tokenizer))
        if output_token_ids:
            restrict_output(model, list(output_token_ids))
        return model
    if gcfg.d_model % gcfg.num_heads:
        raise StudyInputError(f"generator.d_model {gcfg.d_model} is not divisible by generator.num_heads "
                              f"{gcfg.num_heads}; pick sizes that divide.")
    config = T5Config(vocab_size=len(tokenizer), d_model=gcfg.d_model, d_ff=gcfg.d_ff, d_kv=gcfg.d_model // gcfg.num_heads,
                      num_layers=gcfg.num_layers, num_decoder_layers=gcfg.num_layers, num_heads=gcfg.num_heads,
                      dropout_rate=gcfg.dropout, feed_forward_proj="relu", pad_token_id=tokenizer.pad_token_id,
                      eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.pad_token_id,
                      output_token_ids=list(map(int, output_token_ids)) if output_token_ids else None)
    return JointT5(config)


def warm_started_model(checkpoint: Path, tokenizer, scheme: IdScheme, items: pd.DataFrame, gcfg: GeneratorConfig,
                       seed: int, output_token_ids: list[int] | None = None):
    """The pretrained text-only T5 of ``checkpoint`` with rows for the scheme's ID tokens (``id_token_init``)
    and, with ``output_token_ids``, the output layer restricted to them."""
    model = _t5_class().from_pretrained(checkpoint)
    words = model.get_input_embeddings().weight.shape[0]
    ids = tokenizer.convert_tokens_to_ids(scheme.all_tokens())
    if min(ids) < words:
        raise StudyInputError(f"The tokenizer gives ID tokens ids below the pretrained vocabulary's {words}; build "
                              "it with generator.pretrain.with_id_tokens from the same checkpoint.")
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    with torch.no_grad():
        weight = model.get_input_embeddings().weight
        init = id_token_init(weight[:words].float(), tokenizer, scheme, items, noise=gcfg.id_init_noise, seed=seed)
        for token_id, row in init.items():
            weight[token_id] = row.to(weight.dtype)
    if output_token_ids:
        restrict_output(model, list(output_token_ids))
    return model


def id_token_init(words: torch.Tensor, tokenizer, scheme: IdScheme, items: pd.DataFrame, *, noise: float,
                  seed: int) -> dict[int, torch.Tensor]:
    """token id -> initial embedding of each ID token: the mean, over the items whose code at that level is
    the token's, of the mean embedding of the item's title tokens; plus ``noise`` x the embeddings' SD of
    seeded Gaussian noise, so that tokens with the same items (a dedup counter) still differ. A code no item
    uses starts at the mean of all titles, plus noise.

    Averaging over a code's items pulls the means together (on default they lay 4x closer to their centre
    than the word rows do), and the tied output layer then scores every ID token almost alike; so each
    level's means are spread about the vocabulary's centre to the word rows' mean distance from it."""
    titles = items.set_index("item_id")["title"].astype(str).reindex(range(scheme.n_items), fill_value="")
    pieces = tokenizer(list(titles), add_special_tokens=False)["input_ids"]
    item_vecs = torch.stack([words[p].mean(0) if p else words.mean(0) for p in pieces])
    gen = torch.Generator().manual_seed(int(seed))
    scale = noise * float(words.std())
    centre = words.mean(0)
    word_spread = (words - centre).norm(dim=1).mean()
    out: dict[int, torch.Tensor] = {}
    for task in TASKS:
        for level in range(scheme.levels):
            tokens = tokenizer.convert_tokens_to_ids(scheme.level_tokens(task, level))
            codes = torch.as_tensor(np.asarray(scheme.codes[task][:, level]), dtype=torch.long)
            sums = torch.zeros(len(tokens), words.shape[1]).index_add_(0, codes, item_vecs)
            counts = torch.bincount(codes, minlength=len(tokens)).unsqueeze(1)
            means = torch.where(counts > 0, sums / counts.clamp(min=1), item_vecs.mean(0)) - centre
            spread = means.norm(dim=1).mean()
            means = centre + (means * (word_spread / spread) if spread > 0 else means)
            rows = means + scale * torch.randn(means.shape, generator=gen)
            out.update({int(t): r for t, r in zip(tokens, rows) if int(t) not in out})
    return out


def load_saved(out: Path):
    """(tokenizer, model) saved in ``out``; the model on the GPU when there is one."""
    from transformers import AutoTokenizer

    model = _t5_class().from_pretrained(out).to("cuda" if torch.cuda.is_available() else "cpu")
    return AutoTokenizer.from_pretrained(out), model
