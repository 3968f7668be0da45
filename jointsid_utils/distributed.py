"""Multi-process (torchrun / accelerate launch) helpers: who writes, and where processes wait.

Under ``torchrun --nproc_per_node N`` every process runs the same study code. The HF trainers shard the
batches and average the gradients; everything else (resetting a checkpoint folder, saving the model,
decoding, scoring, writing results) must happen once, on the main process, while the others wait at a
barrier. Without a launcher (``WORLD_SIZE`` unset) every helper here is a no-op, so single-process
runs are unchanged.
"""

from __future__ import annotations

import os


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def init() -> None:
    """Join the launcher's process group (NCCL on GPUs, Gloo on CPUs) before any collective call.

    The HF trainers would create it lazily, but the barriers below are needed before the first trainer
    exists (resetting a stale checkpoint folder)."""
    if world_size() <= 1:
        return
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")


def barrier() -> None:
    """Wait for every process (no-op in a single process)."""
    if world_size() <= 1:
        return
    import torch.distributed as dist

    init()
    dist.barrier()
