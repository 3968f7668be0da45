"""The stage protocol across processes: two processes that need one entry build it once."""

from __future__ import annotations

import functools
import multiprocessing
from pathlib import Path


from jointsid_utils.stages import Stage, materialize

from stage_builds import slow_build


def _need_slow_entry(log: str) -> None:
    out = materialize(Stage("shared", functools.partial(slow_build, log=Path(log)), outputs=("slow.txt",)))
    assert (out / "slow.txt").read_text() == "done"


def test_two_processes_that_need_one_entry_build_it_once(runs_dir, tmp_path):
    log = tmp_path / "log"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_need_slow_entry, args=(str(log),)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert log.read_text() == "built\n"


