"""The generator stage (notebook 05's training and decoding) from the command line, on one or many GPUs.

    python -m jointsid_utils.generator.launch --profile paper                         # every scheme x seed, one process
    torchrun --nproc_per_node 8 -m jointsid_utils.generator.launch --profile paper    # the same on 8 GPUs (data parallel)
    accelerate launch --num_processes 8 -m jointsid_utils.generator.launch --profile paper --scheme multitask/rq_kmeans
    python -m jointsid_utils.generator.launch --profile paper -p generator.epochs 1 --seed 0

Under a launcher every process runs each (scheme, seed) job together: ``Seq2SeqTrainer`` shards the
batches (the global batch stays ``generator.batch_size``), and the main process alone saves the model,
decodes and scores (``distributed``). It writes exactly what notebook 05 writes
(``results/recall_at_<k>.csv``, ``results/predictions/``, ``results/generator_runs/``), so the notebooks
run afterwards find every job cached. Stages 01-04 must have run in the run's folder (their artifacts are
read, not built): the profile's folder, or the one named by ``--name``; with ``-p`` overrides and no
``--name``, the folder of those overrides (``StudyConfig.folder``), as ``run_all.sh`` names it.
"""

from __future__ import annotations

import argparse
import sys

from jointsid_utils.errors import StudyInputError


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m jointsid_utils.generator.launch", description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="default", help="smoke | default | paper")
    ap.add_argument("-p", "--set", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                    help="a dotted config override, e.g. -p generator.epochs 1 (repeatable)")
    ap.add_argument("--name", default=None, help="the run folder under runs/ to train in (default: the profile's, "
                                                 "or the one its overrides name)")
    ap.add_argument("--scheme", action="append", default=[], metavar="EMBEDDING/QUANTIZER",
                    help="train only these schemes (repeatable); default: the study's 12")
    ap.add_argument("--seed", type=int, action="append", default=[], help="generator seeds (repeatable); "
                    "default: generator.seeds of the profile")
    ap.add_argument("--decoding", choices=("beam", "diverse"), default=None, help="sets generator.decoding (as -p generator.decoding VALUE)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import yaml

    from jointsid_utils.runtime.environment import configure_runtime

    configure_runtime()  # before torch is imported: OpenMP reads its variables when it loads
    from jointsid_utils.runtime import distributed
    from jointsid_utils.generator import orchestration as study
    from jointsid_utils.config import load_config

    args = parse(argv)
    try:
        overrides = {k: yaml.safe_load(v) for k, v in args.set}
        if args.decoding:
            overrides["generator.decoding"] = args.decoding
        if args.name:
            overrides["run_name"] = args.name
        cfg = load_config(args.profile, overrides)
        schemes = None
        if args.scheme:
            bad = [s for s in args.scheme if s.count("/") != 1]
            if bad:
                raise StudyInputError(f"--scheme {bad[0]!r} is not EMBEDDING/QUANTIZER, e.g. multitask/rq_kmeans.")
            schemes = [tuple(s.split("/")) for s in args.scheme]
        table = study.train_all_schemes(cfg, schemes, args.seed or None)
    except StudyInputError as err:
        if distributed.is_main():
            print(f"error: {err}", file=sys.stderr)
        distributed.finish()  # every process meets the same bad input
        return 2
    if distributed.is_main() and len(table):
        cols = [c for c in ("embedding", "quantizer", "seed", "status", "train_seconds", "decode_seconds") if c in table]
        print(table[cols].to_string(index=False))
        for row in table.itertuples():
            print(f"{row.embedding}/{row.quantizer} seed {row.seed}: " +
                  ", ".join(f"{k} {v:.3f}" for k, v in sorted(row.recall.items())))
    distributed.finish()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
