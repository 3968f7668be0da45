"""Fit + encode time and peak memory of every quantizer at 1k, 10k and 62k items, dimension 768.

Not a test: run by hand, it rewrites the ``## Quantizers (bench/bench_quantizers.py)`` section of
``docs/PERFORMANCE.md`` (other sections are kept). Each case runs in its own subprocess with one
thread, so ``ru_maxrss`` is that case's peak resident memory and cases do not share allocator
state. Data: synthetic clustered float32 (256 Gaussian centres plus unit noise, rows
l2-normalised like sentence embeddings), seeded.

    .venv/bin/python bench/bench_quantizers.py                      # the full table
    .venv/bin/python bench/bench_quantizers.py --sizes 1000 --quantizers rq_kmeans --no-write
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADING = "## Quantizers (bench/bench_quantizers.py)"
QUANTIZERS = ("rq_kmeans", "rq_vae", "residual_lfq", "dict_learning")


def codebook_for(n: int) -> int:
    # The paper's 2 x 256 at 10k and 62k items; at 1k items 256 codes would average 4 items per
    # first-level code (most second-level codes empty), so 2 x 64 (~16 items per code), the size
    # the default profile uses for ML-100K's 1,682 items.
    return 64 if n < 5000 else 256


def case_config(name: str, n: int, args: argparse.Namespace) -> dict:
    cfg = {"levels": 2, "codebook_size": codebook_for(n), "seed": 0}
    if name == "rq_vae":
        cfg.update(steps=args.rq_vae_steps, log_every=max(1, args.rq_vae_steps // 5), log_max_items=5000)
    elif name == "residual_lfq":
        cfg.update(steps=args.lfq_steps, log_every=max(1, args.lfq_steps // 5), log_max_items=5000)
    elif name == "dict_learning":
        cfg.update(max_iter=args.dict_max_iter)
    return cfg


def run_case(spec: dict) -> dict:
    """Runs in the child process: build data, fit, encode, measure."""
    import resource

    import numpy as np
    from jointsid_utils.runtime.environment import configure_runtime

    configure_runtime(1)
    from jointsid_utils.quantizers import collision_rate, make_quantizer

    import sklearn.decomposition  # noqa: F401 - imported before the baseline so RSS growth is the fit's
    import vector_quantize_pytorch  # noqa: F401

    rng = np.random.default_rng(0)
    n, d = spec["n"], spec["dim"]
    centres = rng.standard_normal((256, d), dtype=np.float32)
    labels = rng.integers(0, 256, n)
    X = rng.standard_normal((n, d), dtype=np.float32)  # float32 throughout: no float64 temporary
    for start in range(0, n, 8192):  # in place, chunked, so the baseline holds one n x d matrix
        X[start:start + 8192] += centres[labels[start:start + 8192]]
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    q = make_quantizer(spec["quantizer"], **spec["config"]).fit(X)
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    codes = q.encode(X)
    encode_s = time.perf_counter() - started
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"fit_s": fit_s, "encode_s": encode_s, "rss_before_mb": rss_before, "rss_peak_mb": rss_peak,
            "used": [int(np.unique(codes[:, l]).size) for l in range(codes.shape[1])],
            "collision_rate": collision_rate(codes), "mse": q.diagnostics()["reconstruction_mse"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 62000])
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--quantizers", nargs="+", default=list(QUANTIZERS), choices=QUANTIZERS)
    parser.add_argument("--rq-vae-steps", type=int, default=500, help="fewer than the study's 3000 to fit the bench in minutes")
    parser.add_argument("--lfq-steps", type=int, default=500)
    parser.add_argument("--dict-max-iter", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=300, help="seconds per case")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: JSON spec, run in a child
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(json.loads(args.case))))
        return 0

    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE",
           "PYTHONPATH": str(ROOT)}
    rows = []
    args.load_start = os.getloadavg()[0]
    for n in args.sizes:
        for name in args.quantizers:
            spec = {"quantizer": name, "n": n, "dim": args.dim, "config": case_config(name, n, args)}
            wall = time.perf_counter()
            try:
                proc = subprocess.run([sys.executable, __file__, "--case", json.dumps(spec)], env=env,
                                      capture_output=True, text=True, timeout=args.timeout)
                result = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else \
                    {"error": proc.stderr.strip().splitlines()[-1][:120]}
            except subprocess.TimeoutExpired:
                result = {"error": f"timed out after {args.timeout} s"}
            result["wall_s"] = time.perf_counter() - wall
            rows.append((spec, result))
            print(format_row(spec, result), flush=True)
    args.load_end = os.getloadavg()[0]
    section = render(rows, args)
    print(section)
    if not args.no_write:
        write_section(ROOT / "docs" / "PERFORMANCE.md", section)
    return 0


def training_note(spec: dict) -> str:
    cfg = spec["config"]
    if "steps" in cfg:
        return f"{cfg['steps']} steps x batch 256"
    if "max_iter" in cfg:
        return f"max_iter {cfg['max_iter']}"
    return "25 k-means iterations per level"


def format_row(spec: dict, r: dict) -> str:
    cfg = spec["config"]
    head = f"| {spec['quantizer']} | {spec['n']:,} | {cfg['levels']} x {cfg['codebook_size']} | {training_note(spec)} |"
    if "error" in r:
        return head + f" failed: {r['error']} | | | | | |"
    return (head + f" {r['fit_s']:.1f} | {r['encode_s']:.2f} | {r['rss_peak_mb']:.0f} "
            f"({r['rss_peak_mb'] - r['rss_before_mb']:+.0f}) | {r['used'][0]} / {r['used'][1]} | "
            f"{r['collision_rate']:.3f} | {r['mse']:.2e} |")


def render(rows: list, args: argparse.Namespace) -> str:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cmd = "OMP_NUM_THREADS=1 .venv/bin/python bench/bench_quantizers.py " + " ".join(
        a for a in sys.argv[1:] if not a.startswith("--case"))
    lines = [
        HEADING, "",
        f"Command: `{cmd.strip()}`. Machine: {os.cpu_count()} CPUs (nproc), {cpu}; one thread per case "
        f"(torch, faiss, BLAS), each case in its own subprocess. Date: {dt.date.today().isoformat()}. "
        f"Data: synthetic clustered float32, dimension {args.dim} (256 Gaussian centres + unit noise, rows "
        f"l2-normalised), seed 0. Load average (1 min) {args.load_start:.1f} at start, {args.load_end:.1f} at end: "
        "the machine is shared, so other jobs can inflate single rows (timings +-30%).",
        "",
        "Codebooks: the paper's 2 x 256 at 10k and 62k items; 2 x 64 at 1k items (256 codes would hold "
        "about 4 items each). RQ-VAE and ResidualLFQ run fewer steps than the study's 3,000 (the "
        "`training` column) to keep the bench in minutes: their fit time is close to linear in steps "
        "and nearly independent of the number of items. Dictionary learning is capped at "
        f"`max_iter={args.dict_max_iter}` passes (the quantizer's default is 20).",
        "",
        "Peak RSS is the case process's maximum resident set (in brackets: growth during fit + encode, "
        "beyond the imports and the data matrix). Used = first / second level codes used; collisions = "
        "share of items whose 2-level ID is shared (before the dedup level); MSE in the quantizer's input space. "
        "On this tightly clustered data many items share a 2-level ID whatever the method; the usage columns "
        "are the point: `rq_vae` with the paper-like defaults (library defaults, no k-means init or dead-code "
        "replacement) typically collapses its first level, and `residual_lfq` on unnormalised inputs makes its "
        "second level the bitwise complement of the first (about 256 distinct IDs), see the quantizer docstrings.",
        "",
        "| quantizer | items | levels x codes | training | fit s | encode s | peak RSS MB (fit growth) | used L1 / L2 | collisions | recon MSE |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *[format_row(spec, r) for spec, r in rows],
        "",
    ]
    return "\n".join(lines)


def write_section(path: Path, section: str) -> None:
    """Replace (or append) only this script's section; other sections stay as they are."""
    sys.path.insert(0, str(ROOT))
    from jointsid_utils.cache import write_bytes

    text = path.read_text() if path.exists() else "# Performance\n\nMeasured numbers; each section names the script that wrote it.\n\n"
    start = text.find(HEADING)
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        nxt = text.find("\n## ", start + len(HEADING))
        text = text[:start] + section + ("\n" + text[nxt + 1:] if nxt != -1 else "")
    write_bytes(path, text.encode())


if __name__ == "__main__":
    raise SystemExit(main())
