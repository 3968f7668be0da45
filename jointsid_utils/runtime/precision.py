"""Training precision (``generator.precision``, ``embeddings.finetune_precision``): bf16 autocast where
the hardware runs it natively.

"auto" picks bf16 on a CUDA GPU that supports it and on a CPU whose flags name native bf16 arithmetic
(``avx512_bf16`` or ``amx_bf16``, read from ``/proc/cpuinfo``); elsewhere fp32, because emulated bf16 is
slower than fp32. Weights and optimizer state stay fp32 (autocast); decoding runs in fp32.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch

from jointsid_utils.errors import StudyInputError

PRECISIONS = ("auto", "bf16", "fp32")
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


@lru_cache(maxsize=1)
def cpu_has_native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """True when the CPU flags name a native bf16 instruction set (Linux; False where flags are unreadable)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return any(f in flags for f in BF16_CPU_FLAGS)


def resolve_precision(precision: str, option: str = "generator.precision") -> str:
    """``"bf16"`` or ``"fp32"`` for this machine; ``"bf16"`` asked of hardware without it raises one sentence
    naming ``option`` (the config key the value came from)."""
    if precision not in PRECISIONS:
        raise StudyInputError(f"{option} {precision!r} is not one of {', '.join(PRECISIONS)}.")
    cuda = torch.cuda.is_available()
    native = torch.cuda.is_bf16_supported() if cuda else cpu_has_native_bf16()
    if precision == "bf16" and not native:
        raise StudyInputError(f"{option} 'bf16' needs a GPU or CPU with native bf16 (CPU flags "
                              f"{' or '.join(BF16_CPU_FLAGS)}); use 'auto' or 'fp32' on this machine.")
    if precision == "auto":
        return "bf16" if native else "fp32"
    return precision
