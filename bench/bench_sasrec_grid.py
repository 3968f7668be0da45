"""SASRec's validation curve to its plateau: validation Recall@k (``evaluation.k``, 30) against training epochs,
one curve per embedding size, on a profile's data (the `default` profile's by default).

Not a test: run by hand to choose ``baselines.sasrec_dims`` and ``sasrec_epochs`` (docs/DECISIONS.md,
"SASRec baseline"). Each (dim, blocks) is one training run scored after every ``--every`` epochs: SASRec
trains with a constant learning rate, so epoch e of a longer run is a run of e epochs. The dims are tried
in increasing order and stop at the first whose best point is not above the previous dim's (validation has
stopped rising along that axis too), so a 2-core machine does not pay for the widest. Only the train and
validation rows are read (``evaluation.sasrec.sasrec_validation``). Writes
``bench/results/bench_sasrec_grid.json`` after each run (so a stopped bench keeps what it measured) and
``bench/results/bench_sasrec_grid.png``.

    OMP_NUM_THREADS=1 JOINTSID_RUNS_DIR=/tmp/bench_runs nice -n 5 .venv/bin/python bench/bench_sasrec_grid.py
    ... bench/bench_sasrec_grid.py --dims 64 128 256 --blocks 1 --max-epochs 150 --every 10
    ... bench/bench_sasrec_grid.py --merge part_a.json part_b.json   # runs made apart, one file and figure
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import time
from dataclasses import asdict, replace
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--dims", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--blocks", type=int, nargs="+", default=[1])
    parser.add_argument("--loss", default="ce")
    parser.add_argument("--max-epochs", type=int, default=150)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--out", type=Path, default=RESULTS / "bench_sasrec_grid.json")
    parser.add_argument("--merge", type=Path, nargs="+", help="join these records' runs into --out; no training")
    args = parser.parse_args()
    if args.merge:
        merge(args.merge, args.out)
        return


    from jointsid_utils.config import load_config
    from jointsid_utils.data.dataset import prepare_data
    from jointsid_utils.evaluation.sasrec import sasrec_validation
    from jointsid_utils.metrics import recall_column
    from jointsid_utils.runtime.environment import configure_runtime

    configure_runtime(1)
    cfg = load_config(args.profile)
    k = cfg.evaluation.k
    recall = recall_column(k)
    items, interactions = prepare_data(cfg)  # notebook 01's data stage, cached in the runs folder
    epochs = tuple(range(args.every, args.max_epochs + 1, args.every))
    record = {"profile": args.profile, "seed": cfg.seed, "loss": args.loss, "epochs": list(epochs),
              "fixed": {k: v for k, v in asdict(cfg.baselines).items()
                        if k in ("sasrec_heads", "sasrec_max_len", "sasrec_dropout", "sasrec_lr", "sasrec_batch_size")},
              "machine": f"{platform.machine()}, one torch thread", "runs": []}
    previous_best = -1.0
    for dim in sorted(args.dims):
        best_of_dim = -1.0
        for blocks in args.blocks:
            bcfg = replace(cfg.baselines, sasrec_losses=(args.loss,), sasrec_dims=(dim,), sasrec_blocks=(blocks,),
                           sasrec_epochs=epochs)
            started, cpu = time.perf_counter(), time.process_time()
            partial = args.out.with_suffix(".partial.jsonl")

            def keep(row: dict, partial: Path = partial) -> None:  # the curve so far, should the bench be stopped
                with partial.open("a") as fh:
                    fh.write(json.dumps({k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}) + "\n")

            table, _ = sasrec_validation(interactions, len(items), bcfg, seed=cfg.seed, k=k, on_row=keep)
            curve = table.sort_values("epochs")
            record["runs"].append({"dim": dim, "blocks": blocks, "n_cases": int(curve["n_cases"].iloc[0]),
                                   "epochs": [int(e) for e in curve["epochs"]],
                                   recall: [round(float(v), 4) for v in curve[recall]],
                                   "wall_s": round(time.perf_counter() - started, 1),
                                   "cpu_s": round(time.process_time() - cpu, 1)})
            best = curve.loc[curve[recall].idxmax()]
            print(f"dim {dim}, {blocks} block(s): best {best[recall]:.4f} at {int(best.epochs)} epochs; "
                  f"curve {record['runs'][-1][recall]} ({record['runs'][-1]['cpu_s']:.0f} s CPU)", flush=True)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(record, indent=1) + "\n")
            best_of_dim = max(best_of_dim, float(best[recall]))
        if best_of_dim <= previous_best:
            print(f"dim {dim} is not above the previous dim's best: the wider dims are left out", flush=True)
            break
        previous_best = best_of_dim
    plot(record, args.out.with_suffix(".png"))


def merge(parts: list[Path], out: Path) -> None:
    """One record (and figure) from records of the same profile, loss and fixed settings (each run keeps its own
    epoch counts), their runs sorted by dim."""
    records = [json.loads(Path(p).read_text()) for p in parts]
    same = {(r["profile"], r["loss"], json.dumps(r["fixed"], sort_keys=True)) for r in records}
    if len(same) != 1:
        raise SystemExit("--merge needs records of one profile, loss and fixed settings.")
    runs = [{**run, "epochs": run.get("epochs", r["epochs"])} for r in records for run in r["runs"]]
    record = {**records[0], "epochs": sorted({e for run in runs for e in run["epochs"]}),
              "runs": sorted(runs, key=lambda run: (run["dim"], run["blocks"]))}
    out.write_text(json.dumps(record, indent=1) + "\n")
    plot(record, out.with_suffix(".png"))


def _recall_key(run: dict) -> str:
    """A run's ``recall_at_<k>`` curve, as the record was written at its profile's ``evaluation.k``."""
    return next(key for key in run if re.fullmatch(r"recall_at_\d+", key))


def plot(record: dict, path: Path) -> None:
    """Validation Recall@k against epochs, one line per (dim, blocks), the best point of each marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.5), dpi=110)
    for run in record["runs"]:
        values = run[_recall_key(run)]
        best = max(range(len(values)), key=values.__getitem__)
        epochs = run.get("epochs", record["epochs"])
        line, = ax.plot(epochs, values, marker=".", label=f"dim {run['dim']}, {run['blocks']} block(s)")
        ax.plot(epochs[best], values[best], "o", color=line.get_color(), markersize=8, fillstyle="none")
    ax.set_xlabel("epochs")
    k = _recall_key(record["runs"][0]).removeprefix("recall_at_")
    ax.set_ylabel(f"validation Recall@{k} ({record['runs'][0]['n_cases']} users)")
    ax.set_title(f"SASRec ({record['loss']}) on the {record['profile']} data", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    main()
