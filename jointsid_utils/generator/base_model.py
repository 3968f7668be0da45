"""What a pretrained ``generator.base_model`` is, for a job's key: the content of its files, not its name.

    digest = base_model_sha256("google/flan-t5-base")   # or a local directory

A path or a hub name says nothing about the weights behind it: a local directory can be overwritten and a
hub name can move to another revision, and either would then serve a model fine-tuned from other weights.
So the key hashes the files ``from_pretrained`` reads (config, weights, tokenizer), found in the directory
itself or in the hub's local snapshot of the name (downloaded once, as the training would).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from jointsid_utils.errors import StudyInputError

# The files whose bytes decide the model: its config, weights and tokenizer (whichever of each are present).
CONTENT_PATTERNS = ("config.json", "generation_config.json", "*.safetensors", "pytorch_model*.bin",
                    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "spiece.model",
                    "added_tokens.json")


def base_model_dir(base_model: str) -> Path:
    """The local directory of ``base_model``: itself when it is one, else the hub snapshot of the name."""
    path = Path(base_model).expanduser()
    if path.is_dir():
        return path
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(base_model, allow_patterns=list(CONTENT_PATTERNS)))
    except Exception as err:  # no such directory, and the hub (or its cache) has no such model
        raise StudyInputError(f"generator.base_model {base_model!r} is neither a local directory nor a model the "
                              f"Hugging Face hub (or its local cache) has ({type(err).__name__}); give a "
                              "directory holding config.json and the weights, or a hub name.") from err


def base_model_sha256(base_model: str) -> str:
    """sha256 over the names and bytes of the model's config, weight and tokenizer files."""
    folder = base_model_dir(base_model).resolve()
    files = sorted({p for pattern in CONTENT_PATTERNS for p in folder.glob(pattern) if p.is_file()})
    if not any(p.name == "config.json" for p in files) or not any(p.suffix in (".safetensors", ".bin") for p in files):
        raise StudyInputError(f"generator.base_model {base_model!r} ({folder}) lacks config.json or its weights "
                              "(*.safetensors or pytorch_model*.bin); point it at a saved model's directory.")
    stamps = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    return _digest(stamps)


@lru_cache(maxsize=8)
def _digest(stamps: tuple[tuple[str, int, int], ...]) -> str:
    """Hash the files once per process while their sizes and times stand (a base model is large)."""
    digest = hashlib.sha256()
    for name, _, _ in stamps:
        path = Path(name)
        digest.update(path.name.encode())
        with open(path, "rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()
