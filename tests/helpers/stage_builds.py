"""A slow stage build that logs each build, for the stage protocol's lock tests."""

from __future__ import annotations

import time
from pathlib import Path

from jointsid_utils.stages import Workspace


def slow_build(ws: Workspace, log: Path) -> None:
    with open(log, "a") as fh:
        fh.write("built\n")
    time.sleep(0.5)
    (ws.out / "slow.txt").write_text("done")
