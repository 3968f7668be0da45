"""The worker plan (``jointsid_utils.runtime.workers``): how many jobs side by side, with how many torch threads each."""

from __future__ import annotations

import pytest

from jointsid_utils.runtime.workers import WorkerPlan, machine_cores, plan_workers

JOBS = 36  # the default profile's 12 schemes x 3 seeds


@pytest.mark.parametrize("cores, expected", [(2, 2), (8, 8), (32, 32)])
def test_an_idle_cpu_runs_one_single_thread_worker_per_core(cores, expected):
    assert plan_workers(cores, gpu=False, jobs=JOBS) == WorkerPlan(workers=expected, threads=1)


@pytest.mark.parametrize("cores", [2, 8, 32])
def test_never_more_workers_than_jobs_and_never_none(cores):
    assert plan_workers(cores, gpu=False, jobs=5).workers == min(cores, 5)
    assert plan_workers(cores, gpu=False, jobs=0).workers == 1
    assert plan_workers(cores, gpu=False, jobs=None).workers == cores  # count not known yet: the cores


@pytest.mark.parametrize("cores, busy, expected", [(2, 0.8, 2), (2, 1.2, 1), (2, 2.0, 1),
                                                   (8, 3.5, 5), (32, 8.0, 24), (32, 40.0, 1)])
def test_busy_cores_are_left_to_their_work(cores, busy, expected):
    assert plan_workers(cores, gpu=False, jobs=JOBS, busy_cores=busy).workers == expected


@pytest.mark.parametrize("cores", [2, 8, 32])
def test_a_gpu_gets_one_worker_with_torchs_own_threads(cores):
    assert plan_workers(cores, gpu=True, jobs=JOBS) == WorkerPlan(workers=1, threads=None)


@pytest.mark.parametrize("cores", [2, 8, 32])
def test_a_fixed_count_wins_but_is_capped_at_the_jobs(cores):
    assert plan_workers(cores, gpu=False, jobs=JOBS, fixed=3) == WorkerPlan(workers=3, threads=1)
    assert plan_workers(cores, gpu=False, jobs=JOBS, fixed=1, busy_cores=0.0).workers == 1
    assert plan_workers(cores, gpu=True, jobs=JOBS, fixed=2).workers == 2
    assert plan_workers(cores, gpu=False, jobs=2, fixed=6).workers == 2


def test_machine_cores_is_at_least_one():
    assert machine_cores() >= 1
