"""Loading a sentence-transformer from a local directory and encoding to unit-length float32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from jointsid_utils.errors import StudyInputError


def base_encoder_path(name: str) -> str:
    """A local directory for the profile's base encoder (offline assets), or ``name`` unchanged."""
    from jointsid_utils.assets import encoder_path

    return encoder_path(name)


def load_encoder(name_or_path: str | Path):
    """A ``SentenceTransformer`` (on the GPU when there is one) from a local directory or an offline asset name."""
    from sentence_transformers import SentenceTransformer

    path = str(name_or_path)
    if not Path(path).is_dir():
        path = base_encoder_path(path)
    try:
        return SentenceTransformer(path, device="cuda" if torch.cuda.is_available() else "cpu")
    except OSError as err:
        raise StudyInputError(f"Cannot load the sentence encoder {name_or_path!r} ({err}); pass a local "
                              "sentence-transformers directory or fetch it with `python -m jointsid_utils.assets fetch`."
                              ) from err


def encode(model, texts: list[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
    """Unit-length float32 vectors, one row per text."""
    vectors = model.encode(list(texts), batch_size=batch_size, convert_to_numpy=True,
                           normalize_embeddings=True, show_progress_bar=progress)
    return np.ascontiguousarray(vectors, dtype=np.float32)
