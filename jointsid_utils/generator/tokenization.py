"""Semantic-ID tokens, task prompts and the generator's tokenizer (STUDY.md §2.5).

One new token per (level, code), as the paper: ``<L0_12>`` is code 12 at level 0. Task-specific
IDs get their own namespace so the two tasks cannot share a token by accident:

| scheme | search item | rec item |
|---|---|---|
| one ID per item (content, multitask, ...) | ``<L0_a><L1_b><L2_d>`` | the same |
| ``separate`` | ``<s0_a><s1_b><s2_d>`` | ``<r0_x><r1_y><r2_z>`` |
| ``prefix_share`` | ``<L0_a><s1_b><s2_d>`` | ``<L0_a><r1_y><r2_z>`` |

Prompts: search = ``<search> query text``, rec = ``<rec>`` + the last K history items, each written
as its rec ID. CPU profiles train a small word-piece vocabulary on the study's own text (a 30k
vocabulary would make the embedding and output layers most of a 1M-parameter model,
docs/FEASIBILITY.md); ``paper`` loads the base model's tokenizer and adds the same tokens.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from jointsid_utils.errors import StudyInputError
from jointsid_utils.study import TWO_ID_SCHEMES

TASKS = ("search", "rec")
TASK_TOKENS = {"search": "<search>", "rec": "<rec>"}
PAD, EOS, UNK = "<pad>", "</s>", "<unk>"  # T5's names; pad doubles as the decoder start token


def id_token(namespace: str, level: int, code: int) -> str:
    """``<L0_12>``: code 12 at level 0 in namespace ``L`` (``s``/``r`` for task-specific IDs)."""
    return f"<{namespace}{level}_{int(code)}>"


@dataclass(frozen=True)
class IdScheme:
    """Item IDs per task: ``codes[task]`` is (n_items, L) int64, ``namespaces[task][level]`` its token prefix."""

    name: str
    codes: dict[str, np.ndarray]
    namespaces: dict[str, tuple[str, ...]]

    @property
    def n_items(self) -> int:
        return len(self.codes["search"])

    @property
    def levels(self) -> int:
        return self.codes["search"].shape[1]

    def item_tokens(self, task: str, item: int) -> list[str]:
        ns = self.namespaces[task]
        return [id_token(ns[lvl], lvl, c) for lvl, c in enumerate(self.codes[task][item])]

    def level_tokens(self, task: str, level: int) -> list[str]:
        """Every token of ``level`` for ``task``, index = code (codes run 0..max)."""
        n_codes = int(self.codes[task][:, level].max()) + 1
        return [id_token(self.namespaces[task][level], level, c) for c in range(n_codes)]

    def all_tokens(self) -> list[str]:
        """Every ID token of the scheme, each once, in a stable order."""
        seen: dict[str, None] = {}
        for task in TASKS:
            for level in range(self.levels):
                seen.update(dict.fromkeys(self.level_tokens(task, level)))
        return list(seen)


def make_id_scheme(name: str, codes: np.ndarray | Sequence[np.ndarray]) -> IdScheme:
    """The scheme's ID tokens from its codes.

    ``separate`` and ``prefix_share`` take two arrays (search codes, rec codes), or one array with the
    two side by side (search columns first, as ``ids/<scheme>.npy`` stores them); other schemes one.
    """
    # ``name`` may carry the quantizer (``separate__rq_kmeans``, the generator's model directory name).
    if name.split("__")[0] in TWO_ID_SCHEMES:
        if isinstance(codes, np.ndarray) and codes.ndim == 2:
            if codes.shape[1] % 2:
                raise StudyInputError(f"The {name} codes have {codes.shape[1]} columns; pass search and rec "
                                      "codes side by side (an even number of columns) or as two arrays.")
            half = codes.shape[1] // 2
            codes = (codes[:, :half], codes[:, half:])
        if len(codes) != 2:
            raise StudyInputError(f"The {name} scheme needs two code arrays (search, rec); got {len(codes)}.")
        search, rec = (_check_codes(np.asarray(c), f"{name} {t} codes") for c, t in zip(codes, TASKS))
        if search.shape != rec.shape:
            raise StudyInputError(f"The {name} search codes {search.shape} and rec codes {rec.shape} differ in "
                                  "shape; build both with the same number of items and levels.")
        levels = search.shape[1]
        if name.split("__")[0] == "separate":
            ns = {"search": ("s",) * levels, "rec": ("r",) * levels}
        else:
            if not np.array_equal(search[:, 0], rec[:, 0]):
                raise StudyInputError("The prefix_share search and rec codes must share column 0 (the shared "
                                      "codebook); rebuild them from the prefix_share quantizer.")
            ns = {"search": ("L",) + ("s",) * (levels - 1), "rec": ("L",) + ("r",) * (levels - 1)}
        return IdScheme(name, {"search": search, "rec": rec}, ns)
    if not isinstance(codes, np.ndarray):
        raise StudyInputError(f"The {name} scheme takes one (n_items, levels) code array; got {type(codes).__name__}.")
    arr = _check_codes(codes, f"{name} codes")
    ns = ("L",) * arr.shape[1]
    return IdScheme(name, {"search": arr, "rec": arr}, {"search": ns, "rec": ns})


def _check_codes(codes: np.ndarray, what: str) -> np.ndarray:
    if codes.ndim != 2 or not np.issubdtype(codes.dtype, np.integer):
        raise StudyInputError(f"The {what} must be a 2-D integer array (n_items, levels); got {codes.dtype} "
                              f"{codes.shape}.")
    if codes.min() < 0:
        raise StudyInputError(f"The {what} contain negative codes; codes must be 0..codebook_size-1.")
    if len(np.unique(codes, axis=0)) != len(codes):
        raise StudyInputError(f"The {what} have duplicate rows; add the dedup level so each ID names one item.")
    return codes.astype(np.int64)


# ----------------------------------------------------------------------------- prompts

def search_prompt(query: str) -> str:
    return f"{TASK_TOKENS['search']} {query}"


def rec_prompt(scheme: IdScheme, history: Sequence[int], history_k: int) -> str:
    """``<rec>`` + the last ``history_k`` items (oldest first), each as its rec ID tokens."""
    items = list(history)[-history_k:] if history_k > 0 else []
    return TASK_TOKENS["rec"] + " " + " ".join("".join(scheme.item_tokens("rec", i)) for i in items)


# ----------------------------------------------------------------------------- tokenizers

def build_tokenizer(corpus: Iterable[str], scheme: IdScheme, *, vocab_size: int = 4000, kind: str = "wordpiece",
                    min_frequency: int = 2):
    """A small tokenizer trained on ``corpus`` plus the task and ID tokens, as a ``PreTrainedTokenizerFast``.

    ``kind="wordpiece"`` keeps misspelled or unseen title words as sub-words; ``kind="word"`` maps each
    unseen word to ``<unk>`` (the prototype's choice). Special tokens take ids 0.. in the order
    pad, eos, unk, task tokens, ID tokens, so the ID tokens are contiguous.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = [PAD, EOS, UNK, *TASK_TOKENS.values(), *scheme.all_tokens()]
    normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.Lowercase(), normalizers.StripAccents()])
    pre_tokenizer = pre_tokenizers.Whitespace()
    if kind == "wordpiece":
        corpus = list(corpus)
        # tokenizers' WordPiece (BPE) trainer numbers the "##x" continuation pieces in hash-map order, which
        # breaks merge ties differently in every process (huggingface/tokenizers#1794), so two runs would
        # train different vocabularies. Declaring every "##x" up front fixes their ids, and the merges with them.
        continuations = sorted({"##" + c for text in corpus
                                for piece, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text))
                                for c in piece[1:]})
        tok = Tokenizer(models.WordPiece(unk_token=UNK, max_input_chars_per_word=50))
        tok.normalizer, tok.pre_tokenizer = normalizer, pre_tokenizer
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size + len(specials), min_frequency=min_frequency,
                                            special_tokens=specials + continuations, show_progress=False)
        tok.train_from_iterator(corpus, trainer=trainer)
        # Rebuild from the vocabulary so that the "##x" pieces are ordinary vocabulary entries, not special
        # tokens (which decoding with skip_special_tokens would drop and the input splitter would match).
        tok = Tokenizer(models.WordPiece(vocab=tok.get_vocab(), unk_token=UNK, max_input_chars_per_word=50))
        tok.add_special_tokens(specials)
        tok.decoder = decoders.WordPiece()
    elif kind == "word":
        tok = Tokenizer(models.WordLevel(unk_token=UNK))
        trainer = trainers.WordLevelTrainer(vocab_size=vocab_size + len(specials), min_frequency=min_frequency,
                                            special_tokens=specials, show_progress=False)
    else:
        raise StudyInputError(f"Unknown tokenizer kind {kind!r}; choose 'wordpiece' or 'word'.")
    tok.normalizer, tok.pre_tokenizer = normalizer, pre_tokenizer
    if kind == "word":
        tok.train_from_iterator(corpus, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(single=f"$A {EOS}", special_tokens=[(EOS, tok.token_to_id(EOS))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, eos_token=EOS, unk_token=UNK,
                                   model_max_length=512)


# Tokenizers built in this process, by ``tokenizer_key``: a job's other training seeds (and a scheme with the
# same ID tokens) reuse the one built first. Building one trains a word-piece vocabulary, a few seconds.
TOKENIZERS_KEPT = 4
_tokenizers: OrderedDict[str, Any] = OrderedDict()


def tokenizer_key(scheme: IdScheme, items: pd.DataFrame, queries: pd.DataFrame, *, base_model: str | None,
                  vocab_size: int, kind: str) -> str:
    """What decides a generator's tokenizer: the corpus (train queries and item titles), its settings and
    the scheme's ID tokens; never the training seed."""
    import hashlib

    digest = hashlib.sha256()
    train_queries = queries.loc[(queries["split"] == "train").to_numpy(), "query"]
    for column in (train_queries, items["title"].astype(str)):
        digest.update(pd.util.hash_pandas_object(column, index=False).to_numpy().tobytes())
    digest.update(repr((base_model, vocab_size, kind, scheme.all_tokens())).encode())
    return digest.hexdigest()


def memoized_tokenizer(key: str, build: Callable[[], Any]) -> Any:
    """The tokenizer this process built for ``key`` (the last ``TOKENIZERS_KEPT``), else ``build()``'s."""
    if key in _tokenizers:
        _tokenizers.move_to_end(key)
        return _tokenizers[key]
    _tokenizers[key] = build()
    while len(_tokenizers) > TOKENIZERS_KEPT:
        _tokenizers.popitem(last=False)
    return _tokenizers[key]


def load_base_tokenizer(base_model: str, scheme: IdScheme):
    """``paper``: the base model's tokenizer (a hub name or local dir) with the task and ID tokens added."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base_model)
    tok.add_tokens([*TASK_TOKENS.values(), *scheme.all_tokens()], special_tokens=True)
    return tok


def check_tokenizer(tokenizer, scheme: IdScheme) -> None:
    """Every task and ID token must be one token of ``tokenizer`` (a reloaded or foreign tokenizer)."""
    tokens = [*TASK_TOKENS.values(), *scheme.all_tokens()]
    ids = tokenizer.convert_tokens_to_ids(tokens)
    missing = [t for t, i in zip(tokens, ids) if i is None or i == tokenizer.unk_token_id]
    if missing:
        raise StudyInputError(f"The tokenizer lacks {len(missing)} ID tokens (e.g. {missing[0]}); rebuild it for "
                              "this scheme's codes instead of reusing another scheme's tokenizer.")


def item_token_ids(tokenizer, scheme: IdScheme, task: str) -> np.ndarray:
    """(n_items, L) token ids of every item's ``task`` ID."""
    out = np.empty_like(scheme.codes[task])
    for level in range(scheme.levels):
        level_ids = np.asarray(tokenizer.convert_tokens_to_ids(scheme.level_tokens(task, level)), dtype=np.int64)
        out[:, level] = level_ids[scheme.codes[task][:, level]]
    return out
