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


_finish_calls = 0


def finish(timeout_s: float = 1800.0) -> None:
    """Leave the process group once every process has got here; call it last, on the success path.

    PyTorch asks for ``destroy_process_group`` before exit (NCCL warns otherwise), but a process that
    destroys its Gloo context right after a collective can fail a peer still reading that collective's
    last message ("Connection closed by peer", pytorch/gloo#155, open). So the processes first meet at
    the launcher's key-value store, which needs no sockets between them. Not for error paths: a process
    that crashed never arrives, and the others would wait until ``timeout_s``.
    """
    global _finish_calls
    if world_size() <= 1:
        return
    from datetime import timedelta

    import torch.distributed as dist

    if not dist.is_initialized():
        return
    _finish_calls += 1
    run = os.environ.get("TORCHELASTIC_RUN_ID", "run")
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    key = f"jointsid/finish/{run}/{attempt}/{_finish_calls}"
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False,
                          timeout=timedelta(seconds=timeout_s))
    if store.add(key + "/arrived", 1) == world_size():
        store.set(key + "/all", "1")
    store.wait([key + "/all"])
    dist.destroy_process_group()
