"""Page faults per training step with and without the glibc malloc settings that run_all.sh exports.

    OMP_NUM_THREADS=1 python bench/bench_malloc_faults.py [--profile default] [--scheme content/rq_kmeans]
        [--steps 40] [--generator-of default] [--out bench/results/bench_malloc_faults.json]

Each arm is a fresh process (glibc reads ``MALLOC_*_`` once, at start-up) that runs the profile's generator
training step on one thread (``bench_generator_throughput.StepTimer``: forward, backward, AdamW on the
profile's own batches): a warm-up, then ``--steps`` steps, counting the process's minor page faults
(``resource.getrusage``) and its wall time. The arms must end with byte-identical parameters: the
settings change where memory comes from, never a number. Inputs come from ``runs/<profile>/`` as for
``bench_generator_throughput.py``; ``--generator-of default`` trains the default profile's generator (its
width, batch and options) on them, so a small profile's data can stand in for the default's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

MALLOC_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")
RUN_ALL = Path(__file__).resolve().parents[1] / "run_all.sh"


def run_all_malloc_settings(script: Path = RUN_ALL) -> dict[str, str]:
    """The ``MALLOC_*_`` defaults that ``run_all.sh`` exports (``export NAME="${NAME:-VALUE}"``)."""
    text = script.read_text()
    found = {name: m.group(1) for name in MALLOC_VARIABLES
             if (m := re.search(rf'export {name}="\$\{{{name}:-(\d+)\}}"', text))}
    missing = [n for n in MALLOC_VARIABLES if n not in found]
    if missing:
        raise SystemExit(f"run_all.sh does not export {missing}; restore its malloc block.")
    return found


def generator_options(profile: str | None) -> dict:
    """The named profile's generator settings as ``StepTimer`` options (none: the data profile's own)."""
    if profile is None:
        return {}
    from jointsid_utils.config import as_dict, load_config

    return {k: v for k, v in as_dict(load_config(profile).generator).items() if k not in ("seeds", "workers")}


def measure_steps(profile: str, scheme: tuple[str, str], steps: int, options: dict) -> dict:
    """In this process: faults and seconds per step after a warm-up, and a hash of the trained parameters."""
    import hashlib
    import resource


    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_generator_throughput import StepTimer
    from jointsid_utils.runtime.environment import configure_runtime

    configure_runtime(1)
    timer = StepTimer(profile, scheme, options)
    timer.run(3)  # warm-up: first-call dispatch, the optimizer's state
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    seconds = timer.run(steps)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    state = timer.model.state_dict()
    digest = hashlib.sha256(b"".join(state[k].detach().cpu().numpy().tobytes() for k in sorted(state)))
    return {"faults_per_step": round(faults / steps, 1), "ms_per_step": round(1000 * seconds / steps, 1),
            "examples_per_s": round(steps * timer.batch_size / seconds, 1), "parameters_sha256": digest.hexdigest()}


def run_arm(name: str, settings: dict[str, str], args) -> dict:
    """One arm in a fresh process, with exactly ``settings`` as its malloc variables."""
    env = {k: v for k, v in os.environ.items() if k not in MALLOC_VARIABLES} | settings
    env.setdefault("OMP_NUM_THREADS", "1")
    command = [sys.executable, __file__, "--child", "--profile", args.profile, "--scheme", args.scheme,
               "--steps", str(args.steps)] + (["--generator-of", args.generator_of] if args.generator_of else [])
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    row = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{name:12s} {row['faults_per_step']:8.1f} faults/step  {row['ms_per_step']:7.1f} ms/step", flush=True)
    return {"arm": name, "settings": settings, **row}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="default")
    ap.add_argument("--scheme", default="content/rq_kmeans", help="embedding/quantizer")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=2, help="arms alternate this many times")
    ap.add_argument("--generator-of", default=None, help="train this profile's generator on --profile's data")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", default="bench/results/bench_malloc_faults.json")
    args = ap.parse_args()
    if args.child:
        options = generator_options(args.generator_of)
        print(json.dumps(measure_steps(args.profile, tuple(args.scheme.split("/")), args.steps, options)))
        return
    arms = {"glibc_default": {}, "run_all_sh": run_all_malloc_settings()}
    rows = [run_arm(name, settings, args) for _ in range(args.rounds) for name, settings in arms.items()]
    identical = len({r["parameters_sha256"] for r in rows}) == 1
    meta = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "glibc": platform.libc_ver()[1], "profile": args.profile, "generator_of": args.generator_of or args.profile,
            "scheme": args.scheme, "steps": args.steps,
            "date": time.strftime("%Y-%m-%d"), "identical_parameters": identical}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    print(f"identical parameters across arms: {identical}")
    if not identical:
        raise SystemExit("The malloc settings changed the trained parameters; they must be speed only.")


if __name__ == "__main__":
    main()
