"""Decoding levers that must change no ranked list: the compact ID-only output layer and larger batches.

    OMP_NUM_THREADS=1 python bench/bench_decode_levers.py --profile default --scheme content/rq_kmeans \
        --model runs/default/models/generator/content__rq_kmeans__seed0 [--batches 64 256] [--out FILE]

Decodes one trained job's validation cases (notebook 05's ``predict_validation``: the validation queries
and every user's validation item; beam search, one thread) three ways: the full-width masked logits at today's batch size (the reference),
and the compact output layer at each ``--batches`` size. Reports cases/s and whether every ranked list
equals the reference's. The model must restrict its output layer (``generator.id_output_only``, as every
CPU profile does); other models have only the full-width path.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import replace
from pathlib import Path


def decode(model, tokenizer, ids, examples, gcfg) -> tuple[list, float, int]:
    """(ranked lists, seconds, cases) of the validation cases."""
    from jointsid_utils.generator.predict import predict_validation

    started = time.perf_counter()
    frame = predict_validation(model, tokenizer, ids, examples, gcfg)
    seconds = time.perf_counter() - started
    ranked = [list(map(int, r)) for r in frame["ranked"]]
    return ranked, seconds, len(ranked)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="default")
    ap.add_argument("--scheme", default="content/rq_kmeans", help="embedding/quantizer the model was trained on")
    ap.add_argument("--seed", type=int, default=0, help="the model's training seed (its IDs)")
    ap.add_argument("--model", required=True, help="a trained job's model directory")
    ap.add_argument("--batches", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--rounds", type=int, default=2, help="each arm's fastest of this many passes is kept")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    from jointsid_utils.config import load_config
    from jointsid_utils.generator import decoding
    from jointsid_utils.generator.examples import scheme_examples
    from jointsid_utils.generator.model import RestrictedHead, load_saved
    from jointsid_utils.generator.orchestration import load_inputs, scheme_name
    from jointsid_utils.generator.tokenization import make_id_scheme
    from jointsid_utils.ids.schemes import load_ids
    from jointsid_utils.runtime.environment import configure_runtime

    configure_runtime(1)
    cfg = load_config(args.profile)
    pair = tuple(args.scheme.split("/"))
    items, interactions, queries = load_inputs(cfg)
    ids = make_id_scheme(scheme_name(pair), load_ids(cfg, *pair, seed=args.seed).codes)
    examples = scheme_examples(ids, items, interactions, queries, cfg.generator, seed=args.seed, case_seed=cfg.seed)
    tokenizer, model = load_saved(Path(args.model))
    if not isinstance(model.get_output_embeddings(), RestrictedHead):
        raise SystemExit(f"{args.model} has a full output layer (id_output_only off); nothing to compare.")
    base = cfg.generator.decode_batch_size
    restricted = decoding.RestrictedHead
    arms = [("full_width", base)] + [("compact", b) for b in args.batches]
    seconds: dict[tuple, float] = {}
    lists: dict[tuple, list] = {}
    for _ in range(args.rounds):  # arms interleaved, so a load that changes touches each alike
        for arm in arms:
            if arm[0] == "full_width":
                decoding.RestrictedHead = type("FullWidth", (), {})  # the reference: full-width masked logits
            try:
                lists[arm], s, n = decode(model, tokenizer, ids, examples, replace(cfg.generator, decode_batch_size=arm[1]))
            finally:
                decoding.RestrictedHead = restricted
            seconds[arm] = min(s, seconds.get(arm, float("inf")))
    reference = lists[arms[0]]
    rows = [{"arm": f"{kind}_batch{batch}", "cases_per_s": round(n / seconds[(kind, batch)], 1),
             "same_lists": round(sum(a == b for a, b in zip(lists[(kind, batch)], reference)) / n, 4)}
            for kind, batch in arms]
    result = {"meta": {"machine": platform.processor() or platform.machine(), "profile": args.profile,
                       "scheme": args.scheme, "cases": n, "date": time.strftime("%Y-%m-%d")}, "rows": rows}
    print(json.dumps(result))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
