"""``python -m jointsid_utils.explore``: ask a trained study's generators from a terminal.

    python -m jointsid_utils.explore search "space adventure with robots" --scheme multitask content
    python -m jointsid_utils.explore recommend --user 12 --scheme multitask --profile smoke
    python -m jointsid_utils.explore codes --scheme multitask__rq_kmeans --level 1 --run runs/default

``--profile`` (with ``-p KEY VALUE`` overrides) names the run folder as ``./run_all.sh`` does; ``--run``
points at a run folder directly. Nothing retrains: an untrained scheme or seed is one sentence.
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd
import yaml

from jointsid_utils.config import StudyConfig, load_config
from jointsid_utils.errors import StudyInputError
from jointsid_utils.runtime.environment import configure_runtime


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--profile", default="default", help="the run's profile (default: default)")
    common.add_argument("-p", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                        help="the run's parameter overrides, as given to ./run_all.sh")
    common.add_argument("--run", default=None, help="a run folder (e.g. runs/smoke); overrides --profile and -p")
    common.add_argument("--seed", type=int, default=None, help="training seed (default: the first trained)")
    common.add_argument("-k", type=int, default=10, help="rows per list (default 10)")
    parser = argparse.ArgumentParser(prog="python -m jointsid_utils.explore", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("search", parents=[common], help="decode a query into semantic IDs and items")
    s.add_argument("query")
    s.add_argument("--scheme", nargs="+", required=True, help="one or more schemes, e.g. multitask content")
    r = sub.add_parser("recommend", parents=[common], help="a user's history and the next items recommended")
    r.add_argument("--user", type=int, required=True)
    r.add_argument("--scheme", nargs="+", required=True)
    c = sub.add_parser("codes", parents=[common], help="what each code of a level stands for; collisions")
    c.add_argument("--scheme", required=True)
    c.add_argument("--level", type=int, default=1)
    c.add_argument("--task", choices=("search", "rec"), default="search",
                   help="which ID of a two-ID scheme (separate, prefix_share) to describe")
    return parser.parse_args(argv)


def study_config(args: argparse.Namespace) -> StudyConfig:
    from jointsid_utils.explore.trained import config_of_run

    if args.run:
        return config_of_run(args.run)
    return load_config(args.profile, {key: yaml.safe_load(value) for key, value in args.p})


def show(title: str, table: pd.DataFrame) -> None:
    print(f"\n{title}")
    print(table.to_string(index=False) if len(table) else "  (nothing)")


def run(args: argparse.Namespace) -> None:
    from jointsid_utils import explore

    cfg = study_config(args)
    catalogue = explore.load_catalogue(cfg)
    if args.command == "codes":
        from jointsid_utils.ids.schemes import load_ids

        scheme = explore.parse_scheme(args.scheme, cfg)
        ids = load_ids(cfg, *scheme, seed=args.seed)
        codes = ids.search if args.task == "search" else ids.rec
        show(f"{'__'.join(scheme)} level {args.level} codes ({args.task} IDs)",
             explore.code_table(catalogue.items, codes, args.level))
        show("items sharing a full ID before the dedup level", explore.collisions(catalogue.items, codes, args.k))
        return
    if args.command == "recommend":
        show(f"user {args.user}: recent history", explore.user_history(catalogue, args.user))
    for name in args.scheme:
        gen = explore.load_generator(cfg, name, args.seed)
        if args.command == "search":
            table = explore.search(gen, catalogue, args.query, args.k)
            ranks = table.attrs["target_ranks"]
            note = (" ; test query, target rank(s): " + ", ".join(f"{t}: {r or 'not decoded'}" for t, r in ranks.items())
                    if ranks else "")
            show(f"{gen.name} seed {gen.seed}: {args.query!r}{note}", table)
        else:
            show(f"{gen.name} seed {gen.seed}: top {args.k}", explore.recommend(gen, catalogue, args.user, args.k))
    if args.command == "recommend":
        show("SASRec (its saved test list)", explore.sasrec_list(cfg, catalogue, args.user, args.k))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_runtime()  # before transformers is imported: the hub stays offline
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Loading weights" bars would interleave with the tables
    pd.set_option("display.width", 200)
    pd.set_option("display.max_colwidth", 60)
    try:
        run(args)
    except StudyInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
