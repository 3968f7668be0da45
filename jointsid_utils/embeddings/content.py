"""``content``: the profile's base sentence-transformer on each item's text (STUDY.md §2.2)."""

from __future__ import annotations

import numpy as np

from jointsid_utils.config import StudyConfig
from jointsid_utils.embeddings.encoders import encode, load_encoder
from jointsid_utils.embeddings.inputs import EmbeddingData


def build(data: EmbeddingData, cfg: StudyConfig) -> np.ndarray:
    model = load_encoder(cfg.embeddings.base_encoder)
    return encode(model, data.texts, batch_size=cfg.embeddings.encode_batch_size)


def query_encoder(cfg: StudyConfig) -> str:
    """The model that encodes search queries for this method (the base encoder itself)."""
    return cfg.embeddings.base_encoder
