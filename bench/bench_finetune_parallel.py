"""Notebook 02's two fine-tunes (``search``, ``multitask``): one after the other on 2 threads, side by side
as two one-thread processes, and under bf16 autocast on the CPU; wall times and what bf16 does to quality.

    OMP_WAIT_POLICY=PASSIVE python bench/bench_finetune_parallel.py [--pairs 512] [--val-queries 200]

The default profile's data (MovieLens-100K, template queries, MiniLM) with fewer training pairs
(``embeddings.finetune_max_pairs``, and as many item pairs for ``multitask``), the same for every
variant, so the whole measurement takes minutes. Each variant runs in a fresh process with its own
runs directory (no cache hits). Quality: the last logged MNRL loss of each fine-tune, its best
validation score, and per-item cosine similarity of the item vectors (encoded in fp32 from each saved
model) against the fp32 sequential run. Writes ``bench/results/bench_finetune_parallel.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("search", "multitask")
VARIANTS = {  # name -> (layout, bf16)
    "sequential_2_threads": ("sequential", False),
    "side_by_side_1_thread_each": ("side_by_side", False),
    "sequential_2_threads_bf16": ("sequential", True),
    "side_by_side_1_thread_each_bf16": ("side_by_side", True),
}


def config(args):
    from jointsid_utils.config import load_config

    return load_config("default", {"embeddings.finetune_max_pairs": args.pairs,
                                   "embeddings.finetune_val_queries": args.val_queries})


def frames(cfg):
    from jointsid_utils.cache import run_dir
    from jointsid_utils.data.dataset import prepare_data
    from jointsid_utils.queries.stage import prepare_queries

    items, interactions = prepare_data(cfg)
    return items, interactions, prepare_queries(items, cfg, run_dir(cfg.name, "data"))


def train_one(method: str, args, threads: int, bf16: bool) -> float:
    """One fine-tune in this process; returns its wall seconds."""
    import importlib

    import torch

    from jointsid_utils.embeddings.inputs import EmbeddingData
    from jointsid_utils.runtime.reproducibility import seed_everything
    from jointsid_utils.runtime.environment import configure_runtime

    configure_runtime(threads)
    cfg = config(args)
    seed_everything(cfg.seed)
    data = EmbeddingData(*frames(cfg))
    module = importlib.import_module(f"jointsid_utils.embeddings.{method}")
    started = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
        module.train(data, cfg)
    return time.perf_counter() - started


def run_variant(name: str, args) -> dict:
    """In a fresh process (``--variant``): train both, time them, summarise the saved models."""
    layout, bf16 = VARIANTS[name]
    started = time.perf_counter()
    if layout == "sequential":
        seconds = {m: train_one(m, args, 2, bf16) for m in METHODS}
    else:
        procs = {m: subprocess.Popen([sys.executable, __file__, "--one", m, "--bf16", str(int(bf16)),
                                      "--pairs", str(args.pairs), "--val-queries", str(args.val_queries)],
                                     stdout=subprocess.PIPE, text=True) for m in METHODS}
        seconds = {}
        for m, proc in procs.items():
            out, _ = proc.communicate()
            if proc.returncode:
                raise SystemExit(f"the {m} fine-tune failed (exit {proc.returncode})")
            seconds[m] = float(out.strip().splitlines()[-1])
    wall = time.perf_counter() - started
    return {"variant": name, "wall_seconds": round(wall, 1), "seconds": {m: round(s, 1) for m, s in seconds.items()},
            **summarise(args)}


def summarise(args) -> dict:
    from jointsid_utils.embeddings import finetune
    from jointsid_utils.embeddings.inputs import EmbeddingData
    from jointsid_utils.runtime.environment import configure_runtime

    configure_runtime(2)
    cfg = config(args)
    texts = EmbeddingData(*frames(cfg)).texts
    out = {"final_loss": {}, "train_loss": {}, "best_score": {}, "steps": {}}
    for m in METHODS:
        log = finetune.read_log(cfg, m)
        losses = [r["loss"] for r in log["log_history"] if "loss" in r]
        out["final_loss"][m] = round(float(losses[-1]), 4)
        out["train_loss"][m] = round(float(next(r["train_loss"] for r in log["log_history"] if "train_loss" in r)), 4)
        out["best_score"][m] = round(float(log["best_metric"]), 4)
        out["steps"][m] = log["steps"]
        np.save(Path(os.environ["JOINTSID_RUNS_DIR"]) / f"{m}_items.npy",
                finetune.encode_items_with(cfg, finetune.model_dir(cfg, m), texts))
    return out


def compare(runs: Path, reference: str, name: str) -> dict:
    """Per-item cosine of ``name``'s item vectors to ``reference``'s (rows are unit length) and max |diff|."""
    out = {}
    for m in METHODS:
        a, b = np.load(runs / reference / f"{m}_items.npy"), np.load(runs / name / f"{m}_items.npy")
        cos = (a * b).sum(axis=1)
        out[m] = {"mean_cosine": round(float(cos.mean()), 5), "min_cosine": round(float(cos.min()), 5),
                  "max_abs_diff": float(np.abs(a - b).max())}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=512, help="query pairs (and item pairs) per fine-tune")
    parser.add_argument("--val-queries", type=int, default=200, help="cap on the validation queries")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, from: " + ", ".join(VARIANTS))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "bench_finetune_parallel.json"))
    parser.add_argument("--variant", help=argparse.SUPPRESS)  # internal: one variant in this process
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: one fine-tune on one thread
    parser.add_argument("--bf16", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)  # internal: the data only
    args = parser.parse_args()
    if args.prepare:
        frames(config(args))
        return
    if args.one:
        print(train_one(args.one, args, 1, bool(args.bf16)), flush=True)
        return
    if args.variant:
        print(json.dumps(run_variant(args.variant, args)), flush=True)
        return

    names = [v for v in args.variants.split(",") if v]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
    runs = Path(tempfile.mkdtemp(prefix="bench_finetune_parallel_"))
    env = os.environ | {"JOINTSID_RUNS_DIR": str(runs / "data_only"), "TOKENIZERS_PARALLELISM": "false"}
    subprocess.run([sys.executable, __file__, "--prepare"], env=env, check=True)  # data and queries, once
    results = []
    for name in names:
        variant_runs = runs / name
        (variant_runs / "default").mkdir(parents=True)
        (variant_runs / "default" / "data").symlink_to(runs / "data_only" / "default" / "data")
        load = os.getloadavg()[0]
        proc = subprocess.run([sys.executable, __file__, "--variant", name, "--pairs", str(args.pairs),
                               "--val-queries", str(args.val_queries)],
                              env=env | {"JOINTSID_RUNS_DIR": str(variant_runs)}, capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(f"variant {name} failed:\n{proc.stderr[-3000:]}")
        row = json.loads(proc.stdout.strip().splitlines()[-1]) | {"load_average_before": round(load, 2)}
        if name != names[0]:
            row["vs_" + names[0]] = compare(runs, names[0], name)
        results.append(row)
        print(json.dumps(row), flush=True)
    report = {"pairs": args.pairs, "val_queries": args.val_queries, "cpu": platform.processor() or platform.machine(),
              "cores": os.cpu_count(), "variants": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    shutil.rmtree(runs, ignore_errors=True)


if __name__ == "__main__":
    main()
