"""Embedding settings that are not (yet) fields of ``EmbeddingConfig``; each joins every cache key here.

Suggested config fields: ``finetune_max_seq_length``, ``finetune_val_queries``, ``finetune_evals_per_epoch``.
"""

# Token budget while fine-tuning (the base MiniLM allows 256). Title, year, genres, runtime, rating and
# certificate fit in about 40 tokens (p90 of the ML-100K item texts is 41); a batch pads to its longest
# text, so the 6% of items with a plot summary made every batch about 160 tokens long and a step 2.5x
# slower on 2 cores. 48 keeps the metadata and the plot's first words.
FINETUNE_MAX_SEQ_LENGTH = 48
# Held-out train queries for validation (at most 10% of them, one per item): about +-1 point of noise.
VAL_QUERIES = 2000
# Validation (and checkpoint) passes per epoch, at least ``MIN_EVAL_STEPS`` apart: each one encodes the
# catalogue and writes the optimizer state.
EVALS_PER_EPOCH = 2
MIN_EVAL_STEPS = 50


def as_key() -> dict:
    return {"finetune_max_seq_length": FINETUNE_MAX_SEQ_LENGTH, "val_queries": VAL_QUERIES,
            "evals_per_epoch": EVALS_PER_EPOCH, "min_eval_steps": MIN_EVAL_STEPS}
