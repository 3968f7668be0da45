"""How many jobs run side by side, and with how many torch threads each: one plan for every fan-out.

    plan = plan_workers(cores=8, gpu=False, jobs=36)        # WorkerPlan(workers=8, threads=1)
    plan = plan_workers(cores=8, gpu=False, jobs=36, fixed=2)  # a configured count wins: 2 workers

Used by the generator's scheme x seed jobs (``generator.orchestration.resolve_workers``) and notebook 04's
RQ-VAE grid (``ids.rqvae_diagnosis.plan``). On a CPU every worker runs one torch thread, whatever the
worker count, so a job's numbers do not depend on the machine's size or load; on a GPU one job fills the
device, so one worker keeps torch's own thread count. Why these rules: docs/DECISIONS.md ("Workers").
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class WorkerPlan:
    """``workers`` processes side by side (1: inline, no pool), each with ``threads`` torch threads
    (None: torch's default, all cores)."""

    workers: int
    threads: int | None


def plan_workers(cores: int, gpu: bool, jobs: int | None = None, *, fixed: int = 0,
                 busy_cores: float = 0.0) -> WorkerPlan:
    """The plan for ``jobs`` independent jobs (None: not known yet) on ``cores`` CPU cores, with or without a GPU.

    ``fixed`` > 0 is a configured count and wins (capped at the job count: a worker without a job only
    costs its start). Otherwise a GPU gets one worker, and a CPU one worker per core not busy with
    other work (``busy_cores``, e.g. another process's load sampled now; a partly busy core still
    counts as free), never more than the jobs and never fewer than one.
    """
    cores = max(1, int(cores))
    if fixed > 0:
        workers = int(fixed)
    elif gpu:
        workers = 1
    else:
        workers = cores - math.floor(max(0.0, busy_cores))
    if jobs is not None:
        workers = min(workers, max(1, int(jobs)))
    workers = max(1, workers)
    return WorkerPlan(workers=workers, threads=None if gpu else 1)


def machine_cores() -> int:
    """The cores this process may use (its CPU affinity where the OS has one, e.g. a container's cpuset)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1
