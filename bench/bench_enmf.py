"""ENMF training time per epoch and peak memory from 1k to 62k items (ML-25M's catalogue size).

Not a test: run by hand; prints one JSON line per case and a markdown table for ``docs/PERFORMANCE.md``.
Each case runs in its own subprocess with one thread, so ``ru_maxrss`` is that case's peak.

Data: synthetic implicit feedback shaped like ML-25M (162,541 users / 62,423 items = 2.6 users per item,
153 interactions per user on average): users = 2.6 x items, history lengths log-normal (median 60, mean
about 150, at least 5, at most a quarter of the catalogue), items drawn from a Zipf(0.9) popularity.
Training is ``embeddings.enmf.train_one`` exactly as the study runs it (Adagrad, dropout 0.3, batch 512
users against the whole catalogue), without the validation passes.

    .venv/bin/python bench/bench_enmf.py                          # 1k, 4k, 16k, 62k items at d = 64
    .venv/bin/python bench/bench_enmf.py --sizes 1000 4000 --dims 64 256 --isin
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time


def synthetic_histories(n_items: int, seed: int = 0):
    import numpy as np

    gen = np.random.default_rng(seed)
    n_users = int(round(2.6 * n_items))
    lengths = np.clip(gen.lognormal(np.log(60), 1.35, n_users).astype(np.int64), 5, max(5, n_items // 4))
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.9
    items = gen.choice(n_items, size=int(lengths.sum()), p=pop / pop.sum())
    bounds = np.concatenate(([0], np.cumsum(lengths)))
    return {u: items[bounds[u]:bounds[u + 1]] for u in range(n_users)}, n_users


def run_case(spec: dict) -> dict:
    import resource

    import numpy as np
    from jointsid_utils.config import EvaluationConfig
    from jointsid_utils.runtime.environment import configure_runtime

    configure_runtime(1)
    import jointsid_utils.embeddings.enmf as enmf

    hist, n_users = synthetic_histories(spec["items"])
    pairs = int(sum(len(v) for v in hist.values()))
    if spec["isin"]:  # the naive selection that batch_pair_index avoids: a mask over every pair for every batch
        flat_users = np.concatenate([np.full(len(v), u) for u, v in hist.items()])
        enmf.batch_pair_index = lambda batch, starts: np.flatnonzero(np.isin(flat_users, batch))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    enmf.train_one(hist, n_users, spec["items"], c0=0.1, dim=spec["dim"], epochs=spec["epochs"], batch_size=512,
                   lr=0.05, optimizer="adagrad", dropout=0.3, seed=0, k=EvaluationConfig().k, progress=False)
    seconds = time.perf_counter() - started
    return {**spec, "users": n_users, "pairs": pairs, "seconds_per_epoch": round(seconds / spec["epochs"], 2),
            "pairs_per_s": round(pairs * spec["epochs"] / seconds), "peak_rss_mb": round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024), "rss_before_fit_mb": round(base)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000, 16000, 62000])
    ap.add_argument("--dims", type=int, nargs="+", default=[64])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--isin", action="store_true", help="also time the naive isin-mask pair selection (sizes <= 16k)")
    ap.add_argument("--case", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        print(json.dumps(run_case(json.loads(args.case))))
        return
    specs = [{"items": n, "dim": d, "epochs": args.epochs, "isin": False} for d in args.dims for n in args.sizes]
    if args.isin:
        specs += [{"items": n, "dim": args.dims[0], "epochs": 1, "isin": True} for n in args.sizes if n <= 16000]
    env = os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    rows = []
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}",
          file=sys.stderr)
    for spec in specs:
        out = subprocess.run([sys.executable, __file__, "--case", json.dumps(spec)], env=env, capture_output=True,
                             text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    print(f"# load at end {os.getloadavg()[0]:.1f}", file=sys.stderr)
    print("\n| items | users | pairs | d | pair selection | s / epoch | pairs / s | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['items']:,} | {r['users']:,} | {r['pairs']:,} | {r['dim']} | {'isin mask' if r['isin'] else 'offsets'} "
              f"| {r['seconds_per_epoch']:,} | {r['pairs_per_s']:,} | {r['peak_rss_mb']:,} |")


if __name__ == "__main__":
    main()
