"""torchrun with two CPU processes from the repository root."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[2]


def run_torchrun(*args: str, runs: Path, port: int, **env: str) -> subprocess.CompletedProcess:
    """Two CPU processes under torchrun, one thread each, writing into ``runs``."""
    env = os.environ | {"JOINTSID_RUNS_DIR": str(runs), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", **env}
    torchrun = Path(sys.executable).with_name("torchrun")
    return subprocess.run([str(torchrun), "--nproc_per_node", "2", "--master_port", str(port), *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)


def results(stdout: str) -> list[dict]:
    """The ``RESULT {...}`` records the processes printed, read whole: the processes share one stdout, so one
    record may follow another on the same line."""
    return [json.loads(record) for record in re.findall(r"RESULT (\{[^{}]*\})", stdout)]
