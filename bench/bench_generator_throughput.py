"""The generator's cost per example, and what each speed option does to **validation** Recall@30.

    OMP_WAIT_POLICY=PASSIVE python bench/bench_generator_throughput.py [--profile default]
        [--scheme content/rq_kmeans ...] [--steps 12] [--rounds 4] [--recall VARIANT ...] [--workers 2]

Two parts, one machine, one run, so the rows compare as ratios:
1. **Throughput**: examples/s on one thread of a training step (forward, backward, AdamW) of the
   profile's generator on the profile's data, per variant. The variants take turns in ``--rounds``
   rounds of ``--steps`` batches each (batches drawn as the variant's sampler draws them), so a load
   that changes during the run touches every variant alike; the median round is reported.
2. **Validation Recall@30**: each variant in ``--recall`` trained as notebook 05 trains a job (one
   thread, each training seed of ``--seeds``, the seed's examples) and decoded on the validation cases only
   (the validation queries; every user's validation item), with a bootstrap interval over cases. The test
   split is never decoded here. ``summary`` holds one entry per variant and scheme: the mean over seeds, the
   seed SD, and the paired difference from ``today`` on the same seeds and cases
   (``paired_<task>_vs_today``: mean, 95% interval, p, and the smallest difference the design detects).

Inputs come from ``runs/<profile>/`` (data, queries, and the scheme's IDs: run notebooks 01-03 or the
package's stages first); models go under
``runs/<profile>_throughput/<variant>__<embedding>__<quantizer>__seed<k>/`` and are reused on a rerun.
Writes ``bench/results/bench_generator_throughput.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from multiprocessing import get_context

# Each variant is today's default generator with some options changed (GeneratorConfig fields).
VARIANTS: dict[str, dict] = {
    "today": {},
    "item_positions": {"rec_item_positions": True},
    "length_grouped": {"length_grouped": True},
    "bf16": {"precision": "bf16"},
    "id_output": {"id_output_only": True},
    "no_dropout": {"dropout": 0.0},
    "combined": {"rec_item_positions": True, "length_grouped": True, "precision": "bf16", "id_output_only": True,
                 "dropout": 0.0},
    "combined_keep_dropout": {"rec_item_positions": True, "length_grouped": True, "precision": "bf16",
                              "id_output_only": True},
    # knobs that were chosen on test before, re-chosen here on validation at the new speed
    "combined_windows20": {"rec_item_positions": True, "length_grouped": True, "precision": "bf16",
                           "id_output_only": True, "dropout": 0.0, "rec_windows_per_user": 20},
    "combined_item_text1": {"rec_item_positions": True, "length_grouped": True, "precision": "bf16",
                            "id_output_only": True, "dropout": 0.0, "item_text_examples": 1},
    # the 2-hour budget (issue 14's run of 2026-11-30): less arithmetic per example on top of today's default
    # "today" is the profile's default when the bench runs; since 2026-11-30 that is width 96, so the
    # width-128 rows of bench_generator_budget_width.json are reproduced by this variant
    "width128": {"d_model": 128, "d_ff": 512},
    "half_width": {"d_model": 64, "d_ff": 256},
    "batch256": {"batch_size": 256},
    "narrow_ff": {"d_ff": 256},
    "width96": {"d_model": 96, "d_ff": 384},
    "layers1": {"num_layers": 1},
    # the five-seed budget (issue 26): fewer epochs (the cosine schedule ends at the new count) and shorter
    # rec prompts, each re-chosen on validation
    "epochs4": {"epochs": 4.0},
    "epochs5": {"epochs": 5.0},
    "epochs6": {"epochs": 6.0},
    "epochs6_lr3e-3": {"epochs": 6.0, "lr": 3e-3},  # fewer steps, a larger peak learning rate
    "epochs6_history5": {"epochs": 6.0, "history_k": 5},
    "history5": {"history_k": 5},
    "epochs4_history5": {"epochs": 4.0, "history_k": 5},
    "epochs5_history5": {"epochs": 5.0, "history_k": 5},
    "compile": {"torch_compile": True},
}
THROUGHPUT_VARIANTS = ("today", "item_positions", "length_grouped", "bf16", "id_output", "no_dropout", "combined",
                       "combined_keep_dropout")


def _job_inputs(profile: str, scheme: tuple[str, str], options: dict):
    from jointsid_utils.config import load_config
    from jointsid_utils.generator import orchestration
    from jointsid_utils.generator.examples import scheme_examples
    from jointsid_utils.generator.tokenization import make_id_scheme
    from jointsid_utils.ids.schemes import load_ids

    cfg = load_config(profile)
    gcfg = replace(cfg.generator, **options)
    items, interactions, queries = orchestration.load_inputs(cfg)
    ids = make_id_scheme(orchestration.scheme_name(scheme), load_ids(cfg, *scheme).codes)
    examples = scheme_examples(ids, items, interactions, queries, gcfg, seed=int(gcfg.seeds[0]), case_seed=cfg.seed)
    return cfg, gcfg, items, interactions, queries, ids, examples


class StepTimer:
    """One variant's model, optimizer and batches, stepped a few batches at a time."""

    def __init__(self, profile: str, scheme: tuple[str, str], options: dict, seed: int = 0):
        import torch
        from transformers.trainer_pt_utils import get_length_grouped_indices

        from jointsid_utils.generator.examples import encode_examples
        from jointsid_utils.generator.item_positions import PromptCollator, item_grouping
        from jointsid_utils.generator.model import build_model, make_tokenizer
        from jointsid_utils.runtime.precision import resolve_precision
        from jointsid_utils.generator.tokenization import item_token_ids
        from jointsid_utils.generator.training import output_tokens

        _, gcfg, items, _, queries, ids, examples = _job_inputs(profile, scheme, options)
        torch.manual_seed(seed)
        tok = make_tokenizer(ids, items, queries, gcfg)
        labels = {t: item_token_ids(tok, ids, t) for t in ("search", "rec")}
        grouping = item_grouping(tok, ids) if gcfg.rec_item_positions else None
        self.data = encode_examples(examples.train, tok, labels, gcfg.max_prompt_tokens, grouping)
        self.model = build_model(tok, gcfg, output_tokens(tok, ids) if gcfg.id_output_only else None)
        self.model.train()
        if gcfg.torch_compile:
            self.model = torch.compile(self.model, dynamic=True)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=gcfg.lr, weight_decay=gcfg.weight_decay)
        self.collate = PromptCollator(tok.pad_token_id)
        self.bf16 = resolve_precision(gcfg.precision) == "bf16"
        B = gcfg.batch_size
        gen = torch.Generator().manual_seed(seed)
        if gcfg.length_grouped:
            lengths = [len(self.data[i]["input_ids"]) for i in range(len(self.data))]
            order = get_length_grouped_indices(lengths, B, generator=gen)
        else:
            order = torch.randperm(len(self.data), generator=gen).tolist()
        self.batches = [order[i : i + B] for i in range(0, len(order) - B + 1, B)]
        self.batch_size, self.next = B, 0
        self.prompt_positions = statistics.mean(len(self.data[i]["input_ids"]) for i in range(len(self.data)))

    def run(self, steps: int) -> float:
        """Seconds for ``steps`` training steps on the next batches."""
        import torch

        started = time.perf_counter()
        for _ in range(steps):
            batch = self.collate([self.data[i] for i in self.batches[self.next % len(self.batches)]])
            self.next += 1
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
                loss = self.model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            self.opt.step()
            self.opt.zero_grad(set_to_none=True)
        return time.perf_counter() - started


def throughput(profile: str, scheme: tuple[str, str], names: list[str], steps: int, rounds: int) -> list[dict]:
    """Examples/s per variant on one thread (median over interleaved rounds)."""
    import torch
    from jointsid_utils.runtime.environment import configure_runtime

    configure_runtime(1)
    timers = {n: StepTimer(profile, scheme, VARIANTS[n]) for n in names}
    for t in timers.values():
        t.run(2)  # warm-up: allocator, first-call dispatch
    seconds = {n: [] for n in names}
    for r in range(rounds):
        for n in names:
            seconds[n].append(timers[n].run(steps))
            print(f"round {r} {n}: {steps * timers[n].batch_size / seconds[n][-1]:.0f} ex/s", flush=True)
    rows = []
    for n in names:
        eps = [steps * timers[n].batch_size / s for s in seconds[n]]
        rows.append({"variant": n, "options": VARIANTS[n], "examples_per_s": round(statistics.median(eps), 1),
                     "rounds": [round(e, 1) for e in eps],
                     "mean_prompt_positions": round(timers[n].prompt_positions, 2)})
    base = next(r["examples_per_s"] for r in rows if r["variant"] == names[0])
    for r in rows:
        r["ratio"] = round(r["examples_per_s"] / base, 2)
    return rows


def variant_validation_recall(profile: str, scheme: tuple[str, str], name: str, seed: int) -> dict:
    """Train the variant as notebook 05 trains a job with training seed ``seed``, then Recall@k (``evaluation.k``)
    on the validation cases."""
    from jointsid_utils.cache import run_dir
    from jointsid_utils.generator.job import data_hash, job_key, validation_recall
    from jointsid_utils.metrics import recall_column
    from jointsid_utils.generator.model import load_saved
    from jointsid_utils.generator.predict import predict_validation
    from jointsid_utils.generator.job import trained_model
    from jointsid_utils.runtime.reproducibility import seed_everything

    cfg, gcfg, items, interactions, queries, ids, examples = _job_inputs(profile, scheme,
                                                                         {**VARIANTS[name], "seeds": (seed,)})
    key = job_key(gcfg, ids, data_hash(items, interactions, queries), case_seed=cfg.seed, seed=seed)
    out = run_dir(f"{profile}_throughput", _run_name(name, "/".join(scheme), seed))
    started = time.time()
    seed_everything(seed)
    saved, info = trained_model(ids, lambda: examples, items, queries, gcfg, seed, key, link=out / "model")
    tok, model = load_saved(saved)
    preds = predict_validation(model, tok, ids, examples, gcfg)
    row = {"variant": name, "options": VARIANTS[name], "scheme": "/".join(scheme), "seed": seed,
           "train_seconds": info["train_seconds"], "job_seconds": round(time.time() - started, 1),
           "train_examples": info["examples"]["train_search"] + info["examples"]["train_rec"],
           "epochs": gcfg.epochs}
    k = cfg.evaluation.k
    for task, score in validation_recall(preds, k=k).items():  # notebook 05's own validation scoring
        row[f"val_{task}"] = [score[recall_column(k)], score["ci_low"], score["ci_high"]]
        row[f"val_{task}_cases"] = score["n_cases"]
    _save_case_hits(preds, out / "validation_hits.npz", k=k)
    print(json.dumps(row), flush=True)
    return row


def _run_name(variant: str, scheme: str, seed: int) -> str:
    return f"{variant}__{scheme.replace('/', '__')}__seed{seed}"


def _save_case_hits(preds, path, *, k: int) -> None:
    """Each validation case's Recall@k (0/1) per task, ordered by case id, for the paired comparison."""
    import numpy as np

    from jointsid_utils.metrics import per_case_recall

    arrays = {}
    for task, frame in preds.groupby("task", sort=True):
        frame = frame.sort_values("case_id", kind="stable").reset_index(drop=True)
        arrays[f"{task}_hits"] = per_case_recall(frame, k=k)
        arrays[f"{task}_cases"] = frame["case_id"].astype(str).to_numpy().astype("U")
    np.savez(path, **arrays)


def paired_against(profile: str, rows: list[dict], base: str = "today") -> list[dict]:
    """One summary per (variant, scheme) over its seeds: the validation mean, the seed SD of each task's
    recall and, against ``base`` on the same scheme, seeds and cases, the paired difference (mean, 95%
    interval, p, and the smallest difference this design detects at 80% power, two-sided 5%)."""
    import numpy as np

    from jointsid_utils.cache import run_dir
    from jointsid_utils.config import EvaluationConfig
    from jointsid_utils.evaluation.statistics import minimum_detectable_difference, paired_test

    ev = EvaluationConfig()  # the profiles' level, alpha and power

    def hits(variant, scheme, seed):
        path = run_dir(f"{profile}_throughput", _run_name(variant, scheme, seed)) / "validation_hits.npz"
        return dict(np.load(path)) if path.exists() else None

    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["variant"], row["scheme"]), []).append(row)
    summaries = []
    for (variant, scheme), members in groups.items():
        seeds = sorted(r["seed"] for r in members)
        summary = {"variant": variant, "scheme": scheme, "seeds": seeds,
                   "train_seconds_mean": round(float(np.mean([r["train_seconds"] for r in members])), 1)}
        for task in ("search", "rec"):
            values = [r[f"val_{task}"][0] for r in members]
            summary[f"val_{task}_mean"] = round(float(np.mean(values)), 4)
            summary[f"val_{task}_seed_sd"] = round(float(np.std(values, ddof=1)), 4) if len(values) > 1 else None
        ref = groups.get((base, scheme))
        shared = sorted(set(seeds) & {r["seed"] for r in ref}) if ref and variant != base else []
        mine = [hits(variant, scheme, k) for k in shared]
        theirs = [hits(base, scheme, k) for k in shared]
        if shared and all(h is not None for h in mine + theirs):
            for task in ("search", "rec"):
                for a, b in zip(mine, theirs):
                    if not np.array_equal(a[f"{task}_cases"], b[f"{task}_cases"]):
                        raise SystemExit(f"{variant} and {base} were scored on different {task} cases.")
                t = paired_test(np.stack([h[f"{task}_hits"] for h in mine]),
                                np.stack([h[f"{task}_hits"] for h in theirs]), level=ev.level)
                mdd = minimum_detectable_difference(t["se"], 1, alpha=ev.alpha, power=ev.power, df=t["df"])
                summary[f"paired_{task}_vs_{base}"] = {k: round(t[k], 4) for k in ("diff", "ci_low", "ci_high", "p_value")}
                summary[f"paired_{task}_vs_{base}"]["detectable"] = round(mdd, 4)
                summary[f"paired_{task}_vs_{base}"]["seeds"] = shared
        summaries.append(summary)
    return summaries


def _write(path: str, meta: dict, throughput_rows: list[dict], validation_rows: list[dict],
           summary: list[dict] | None = None) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path + ".tmp", "w") as fh:
        json.dump({"meta": meta, "throughput": throughput_rows, "validation": validation_rows,
                   "summary": summary or []}, fh, indent=1)
    os.replace(path + ".tmp", path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="default")
    ap.add_argument("--scheme", nargs="+", default=["content/rq_kmeans"],
                    help="embedding/quantizer; throughput uses the first, recall trains every variant on each")
    ap.add_argument("--steps", type=int, default=12, help="batches per variant per round")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--throughput", nargs="*", default=list(THROUGHPUT_VARIANTS))
    ap.add_argument("--recall", nargs="*", default=list(VARIANTS), help="variants trained for validation recall")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0],
                    help="training seeds of every recall variant (paired over seeds and cases; seed SD reported)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="bench/results/bench_generator_throughput.json")
    args = ap.parse_args()
    unknown = [v for v in args.throughput + args.recall if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"Unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}.")
    schemes = [tuple(s.split("/")) for s in args.scheme]
    scheme = schemes[0]
    from jointsid_utils.generator.orchestration import worker_init
    from jointsid_utils.runtime.precision import cpu_has_native_bf16

    started = time.time()
    earlier = json.load(open(args.out)) if os.path.exists(args.out) else {"throughput": [], "validation": []}
    if args.throughput:
        tp = throughput(args.profile, scheme, args.throughput, args.steps, args.rounds)
    else:  # recall only: keep the throughput rows of an earlier run in the same file
        tp = earlier["throughput"]
    tp_seconds = round(time.time() - started, 1)
    meta = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "native_bf16": cpu_has_native_bf16(), "workers": args.workers, "date": time.strftime("%Y-%m-%d"),
            "profile": args.profile, "scheme": args.scheme[0], "throughput_seconds": tp_seconds,
            "steps": args.steps, "rounds": args.rounds}
    rerun = {(v, s, k) for v in args.recall for s in args.scheme for k in args.seeds}
    kept = [r for r in earlier["validation"]  # rows not rerun stay
            if (r["variant"], r["scheme"], r.get("seed", 0)) not in rerun]
    order = ([(r["variant"], r["scheme"], r.get("seed", 0)) for r in kept]
             + [(v, s, k) for s in args.scheme for k in args.seeds for v in args.recall])

    def ordered(some: list[dict]) -> list[dict]:
        return sorted(some, key=lambda r: order.index((r["variant"], r["scheme"], r.get("seed", 0))))

    rows: list[dict] = []
    _write(args.out, meta, tp, kept)
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn"), initializer=worker_init) as pool:
        # the slowest variants first, so the pool does not end on one long job
        futures = [pool.submit(variant_validation_recall, args.profile, s, name, k) for s in schemes
                   for k in args.seeds for name in sorted(args.recall, key=lambda v: -VARIANTS[v].get("epochs", 8))]
        for future in as_completed(futures):  # written as each variant finishes, so a long run can be read early
            rows.append(future.result())
            meta["total_seconds"] = round(time.time() - started, 1)
            _write(args.out, meta, tp, ordered(kept + rows))
    final = ordered(kept + rows)
    summary = paired_against(args.profile, final)
    _write(args.out, meta, tp, final, summary)
    for r in tp:
        print(f"{r['variant']:24s} {r['examples_per_s']:8.1f} ex/s  x{r['ratio']:.2f}")
    for r in summary:
        paired = {t: r.get(f"paired_{t}_vs_today", {}).get("diff") for t in ("search", "rec")}
        print(f"{r['scheme']:22s} {r['variant']:18s} seeds {r['seeds']} search {r['val_search_mean']} "
              f"(sd {r['val_search_seed_sd']}) rec {r['val_rec_mean']} (sd {r['val_rec_seed_sd']}) "
              f"vs today {paired}  train {r['train_seconds_mean']} s")


if __name__ == "__main__":
    main()
