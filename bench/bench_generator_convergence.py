"""Learning curves and recipe levers of the generator, paired on **validation** over training seeds.

    OMP_NUM_THREADS=1 python bench/bench_generator_convergence.py [--profile default]
        [--schemes content/rq_kmeans rec/rq_kmeans multitask/rq_kmeans multitask/rq_vae_fixed]
        [--epochs 8 12 16 24] [--seeds 0 1 2] [--arms today warm window_pool20 history5 history15]
        [--workers 2] [--out bench/results/bench_generator_convergence.json]

A job is (arm, fine-tune length, scheme, training seed), trained as notebook 05 trains one (seed s on
seed s's IDs, one thread) and decoded on the validation cases only (the validation queries and every
user's validation item; the test split is never decoded here). With today's cosine schedule a point of
a learning curve is a whole run of that many epochs, not a checkpoint of a longer one.

* ``today`` and ``warm`` (``generator.warm_start``: one pretrained T5 per seed that every scheme fine-tunes)
  run at every ``--epochs``; the recipe levers run at the profile's own epoch count only.
* Every job is one record of ``jobs`` in ``--out``, written as it finishes, with its per-case hits packed;
  a rerun skips the jobs already recorded, so the bench runs in slices (``--schemes``, ``--epochs``,
  ``--seeds``, ``--arms``) and resumes after an interruption. Models go under ``runs/<profile>_convergence/``.
* ``summary``: per (arm, epochs, scheme), validation Recall@30 per task over seeds and cases with its
  interval (``variance.interval``, search cases clustered by target item), the seed SD, examples/s per
  thread, wall time per job with its share of the pretraining (the pretraining of a seed divided by the
  profile's number of schemes, which all fine-tune it), and the paired difference (``paired_test``) from
  today's recipe at the same length (for ``today`` itself: from the profile's own length).
* A figure of the learning curves (``--figure``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path

import numpy as np

SCHEMES = ("content/rq_kmeans", "rec/rq_kmeans", "multitask/rq_kmeans", "multitask/rq_vae_fixed")
EPOCHS = (8, 12, 16, 24)
CURVE_ARMS = {"today": {}, "warm": {"warm_start": True}}  # run at every --epochs
# Recipe levers (issue 40), at the profile's own length: a fresh draw of each user's windows per epoch
# from a pool twice today's default count, and history_k re-checked on validation around today's 10.
LEVER_ARMS = {"window_pool20": {"rec_window_pool": 20}, "history5": {"history_k": 5}, "history15": {"history_k": 15}}
ARMS = {**CURVE_ARMS, **LEVER_ARMS}
TASKS = ("search", "rec")


def plan(profile: str, arms, schemes, epochs, seeds) -> list[dict]:
    """The jobs of this slice; lever arms only at the profile's own epoch count."""
    from jointsid_utils.config import load_config

    own = int(load_config(profile).generator.epochs)
    return [{"arm": a, "epochs": int(e), "scheme": s, "seed": int(k), "options": ARMS[a]}
            for s in schemes for k in seeds for a in arms
            for e in (epochs if a in CURVE_ARMS else [own])]


def job_id(job: dict) -> str:
    return f"{job['arm']}__e{job['epochs']}__{job['scheme'].replace('/', '__')}__seed{job['seed']}"


def pretrained(profile: str, seeds, schemes_per_seed: int) -> dict[int, dict]:
    """seed -> its warm-start checkpoint and the share of its pretraining that each scheme's job carries."""
    from jointsid_utils.config import load_config
    from jointsid_utils.generator.orchestration import load_inputs
    from jointsid_utils.generator.pretrain import INFO_FILE, pretrain

    cfg = load_config(profile)
    gcfg = replace(cfg.generator, warm_start=True)
    data = load_inputs(cfg)
    out = {}
    for seed in seeds:
        checkpoint = pretrain(gcfg, data, int(seed))
        seconds = json.loads((checkpoint / INFO_FILE).read_text())["pretrain_seconds"]
        out[int(seed)] = {"checkpoint": str(checkpoint), "pretrain_seconds": seconds,
                          "share_seconds": round(seconds / schemes_per_seed, 1)}
    return out


def run_job(profile: str, job: dict, warm: dict | None) -> dict:
    """Train (or reload) one job and score it on the validation cases; its record."""
    from jointsid_utils.cache import run_dir
    from jointsid_utils.config import load_config
    from jointsid_utils.generator.examples import RecWindowSampler, scheme_examples
    from jointsid_utils.generator.job import data_hash, job_key, validation_recall
    from jointsid_utils.generator.model import load_saved
    from jointsid_utils.generator.orchestration import load_inputs, scheme_name
    from jointsid_utils.generator.predict import predict_validation
    from jointsid_utils.generator.pretrain import checkpoint_sha256
    from jointsid_utils.generator.tokenization import make_id_scheme
    from jointsid_utils.generator.job import trained_model
    from jointsid_utils.ids.schemes import load_ids
    from jointsid_utils.metrics import per_case_recall, recall_column
    from jointsid_utils.runtime.reproducibility import seed_everything

    cfg = load_config(profile)
    k = cfg.evaluation.k
    seed, pair = job["seed"], tuple(job["scheme"].split("/"))
    gcfg = replace(cfg.generator, **job["options"], epochs=float(job["epochs"]), seeds=(seed,))
    items, interactions, queries = load_inputs(cfg)
    ids = make_id_scheme(scheme_name(pair), load_ids(cfg, *pair, seed=seed).codes)
    checkpoint = Path(warm["checkpoint"]) if warm else None
    started = time.time()
    seed_everything(seed)
    examples = scheme_examples(ids, items, interactions, queries, gcfg, seed=seed, case_seed=cfg.seed)
    key = job_key(gcfg, ids, data_hash(items, interactions, queries), case_seed=cfg.seed, seed=seed,
                  warm_start=checkpoint_sha256(checkpoint) if checkpoint else None)
    out = run_dir(f"{profile}_convergence", job_id(job))
    saved, info = trained_model(ids, lambda: examples, items, queries, gcfg, seed, key, warm_start=checkpoint, link=out)
    tokenizer, model = load_saved(saved)
    preds = predict_validation(model, tokenizer, ids, examples, gcfg)
    job_seconds = time.time() - started
    n_train = (len(RecWindowSampler(examples.train["user"], gcfg.rec_windows_per_user, seed))
               if gcfg.rec_window_pool else len(examples.train))  # the examples of one epoch
    record = {**job, "key": key, "train_seconds": info["train_seconds"], "job_seconds": round(job_seconds, 1),
              "pretrain_share_seconds": warm["share_seconds"] if warm else 0.0,
              "job_seconds_with_pretrain": round(job_seconds + (warm["share_seconds"] if warm else 0.0), 1),
              "examples_per_epoch": int(n_train),
              "examples_per_s_per_thread": round(n_train * gcfg.epochs / max(info["train_seconds"], 1e-9), 1),
              "eval_loss": [round(h["eval_loss"], 4) for h in info["log_history"] if "eval_loss" in h]}
    for task, score in validation_recall(preds, k=k).items():
        record[f"val_{task}"] = score[recall_column(k)]
    for task, frame in preds.groupby("task", sort=True):
        frame = frame.sort_values("case_id", kind="stable").reset_index(drop=True)
        record[f"{task}_cases"] = frame["case_id"].astype(str).tolist()
        record[f"{task}_targets"] = frame["target"].astype(int).tolist()
        record[f"{task}_hits"] = np.packbits(per_case_recall(frame, k=k).astype(bool)).tobytes().hex()
    print(json.dumps({k: v for k, v in record.items() if not k.endswith(("_hits", "_cases", "_targets"))}), flush=True)
    return record


def hits_of(record: dict, task: str) -> np.ndarray:
    n = len(record[f"{task}_cases"])
    return np.unpackbits(np.frombuffer(bytes.fromhex(record[f"{task}_hits"]), dtype=np.uint8))[:n].astype(float)


def summarise(records: list[dict], own_epochs: int) -> list[dict]:
    """One row per (arm, epochs, scheme): see the module docstring."""
    from jointsid_utils.config import EvaluationConfig
    from jointsid_utils.evaluation.statistics import minimum_detectable_difference, paired_test
    from jointsid_utils.variance import interval

    ev = EvaluationConfig()  # the profiles' level, alpha and power
    groups: dict[tuple, dict[int, dict]] = {}
    for r in records:
        groups.setdefault((r["arm"], r["epochs"], r["scheme"]), {})[r["seed"]] = r
    rows = []
    for (arm, epochs, scheme), by_seed in sorted(groups.items()):
        seeds = sorted(by_seed)
        members = [by_seed[k] for k in seeds]
        row = {"arm": arm, "epochs": epochs, "scheme": scheme, "seeds": seeds,
               "examples_per_s_per_thread": round(float(np.mean([m["examples_per_s_per_thread"] for m in members])), 1),
               "job_seconds_with_pretrain": round(float(np.mean([m["job_seconds_with_pretrain"] for m in members])), 1)}
        ref_key = ("today", epochs if arm != "today" else own_epochs, scheme)
        ref = groups.get(ref_key) if ref_key != (arm, epochs, scheme) else None
        for task in TASKS:
            hits = np.stack([hits_of(m, task) for m in members])
            clusters = members[0][f"{task}_targets"] if task == "search" else None
            mean, low, high = interval(hits, clusters)
            values = [m[f"val_{task}"] for m in members]
            row[f"val_{task}"] = [round(mean, 4), round(low, 4), round(high, 4)]
            row[f"val_{task}_seed_sd"] = round(float(np.std(values, ddof=1)), 4) if len(values) > 1 else None
            shared = sorted(set(seeds) & set(ref)) if ref else []
            if shared:
                if any(by_seed[k][f"{task}_cases"] != ref[k][f"{task}_cases"] for k in shared):
                    raise SystemExit(f"{arm} and today's recipe were scored on different {task} cases.")
                t = paired_test(np.stack([hits_of(by_seed[k], task) for k in shared]),
                                np.stack([hits_of(ref[k], task) for k in shared]), clusters, level=ev.level)
                row[f"paired_{task}"] = {"vs": f"today@{ref_key[1]}", "seeds": shared,
                                         **{k: round(t[k], 4) for k in ("diff", "ci_low", "ci_high", "p_value")},
                                         "detectable": round(minimum_detectable_difference(
                                             t["se"], 1, alpha=ev.alpha, power=ev.power, df=t["df"]), 4)}
        rows.append(row)
    return rows


def paired_between(records: list[dict], a: tuple[str, int], b: tuple[str, int], scheme: str, task: str) -> dict | None:
    """``a - b`` (each ``(arm, epochs)``) for one scheme and task, paired over the seeds both have; None if none."""
    from jointsid_utils.config import EvaluationConfig
    from jointsid_utils.evaluation.statistics import paired_test

    runs = {(r["arm"], r["epochs"], r["seed"]): r for r in records if r["scheme"] == scheme}
    seeds = sorted({k for (arm, e, k) in runs if (arm, e) == a} & {k for (arm, e, k) in runs if (arm, e) == b})
    if not seeds:
        return None
    first, second = [runs[(*a, k)] for k in seeds], [runs[(*b, k)] for k in seeds]
    if any(x[f"{task}_cases"] != y[f"{task}_cases"] for x, y in zip(first, second)):
        raise SystemExit(f"{a} and {b} were scored on different {task} cases for {scheme}.")
    clusters = first[0][f"{task}_targets"] if task == "search" else None
    t = paired_test(np.stack([hits_of(x, task) for x in first]), np.stack([hits_of(y, task) for y in second]),
                    clusters, level=EvaluationConfig().level)
    reference = float(np.mean([y[f"val_{task}"] for y in second]))
    return {"seeds": seeds, "reference": round(reference, 4),
            **{k: round(float(t[k]), 4) for k in ("diff", "ci_low", "ci_high")}}


def decide(records: list[dict]) -> dict:
    """The declared rule (docs/DECISIONS.md, "Recipe levers and the convergence bench"): today's fine-tune
    length is the shortest tested length non-inferior to the longest on every scheme and task; the warm start
    is adopted at a length non-inferior to that on every scheme and task, and cheaper per job with its share of
    the pretraining. Non-inferior: the paired 95% interval's lower end above -margin x the reference's recall."""
    from jointsid_utils.config import EvaluationConfig

    margin = EvaluationConfig().noninferiority_margin
    schemes = sorted({r["scheme"] for r in records})

    def lengths(arm: str) -> list[int]:
        return sorted({r["epochs"] for r in records if r["arm"] == arm
                       and all(any(q["arm"] == arm and q["epochs"] == r["epochs"] and q["scheme"] == s for q in records)
                               for s in schemes)})

    def holds(a: tuple[str, int], b: tuple[str, int]) -> tuple[bool, dict]:
        tests = {f"{s} {t}": paired_between(records, a, b, s, t) for s in schemes for t in TASKS}
        ok = all(v is not None and v["ci_low"] > -margin * v["reference"] for v in tests.values())
        return ok, tests

    def seconds(arm: str, epochs: int) -> float:
        return float(np.mean([r["job_seconds_with_pretrain"] for r in records
                              if r["arm"] == arm and r["epochs"] == epochs]))

    today = lengths("today")
    out: dict = {"margin": margin, "schemes": schemes, "today_lengths": today}
    if not today:
        return out
    longest = today[-1]
    chosen, checks = longest, {}
    for length in today[:-1]:
        ok, tests = holds(("today", length), ("today", longest))
        checks[f"today@{length} vs today@{longest}"] = {"non_inferior": ok, "tests": tests}
        if ok:
            chosen = length
            break
    out.update({"today_length": chosen, "plateau_reached": chosen != longest or len(today) == 1, "length_checks": checks,
                "today_seconds_per_job": round(seconds("today", chosen), 1)})
    warm = {}
    for length in lengths("warm"):
        ok, tests = holds(("warm", length), ("today", chosen))
        cost = seconds("warm", length)
        warm[f"warm@{length} vs today@{chosen}"] = {"non_inferior": ok, "seconds_per_job": round(cost, 1),
                                                    "cheaper": cost < seconds("today", chosen), "tests": tests}
    adopted = [k for k, v in warm.items() if v["non_inferior"] and v["cheaper"]]
    out.update({"warm_checks": warm, "warm_adopted": adopted[0].split(" ")[0] if adopted else None})
    return out


def plot_curves(summary: list[dict], path: Path) -> None:
    """Validation Recall@30 against fine-tune epochs, one panel per task, a line per scheme and curve arm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
    schemes = sorted({r["scheme"] for r in summary})
    colours = dict(zip(schemes, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for ax, task in zip(axes, TASKS):
        for scheme in schemes:
            for arm, style in (("today", "-o"), ("warm", "--s")):
                rows = sorted((r for r in summary if r["scheme"] == scheme and r["arm"] == arm), key=lambda r: r["epochs"])
                if not rows:
                    continue
                x = [r["epochs"] for r in rows]
                mean, low, high = (np.array([r[f"val_{task}"][i] for r in rows]) for i in range(3))
                ax.plot(x, mean, style, color=colours[scheme], label=f"{scheme} ({arm})", ms=4)
                ax.fill_between(x, low, high, color=colours[scheme], alpha=0.12)
        ax.set(title=f"{task}: validation Recall@30", xlabel="fine-tune epochs (a whole cosine run each)")
        ax.set_xticks(sorted({r["epochs"] for r in summary}))
    axes[0].set_ylabel("Recall@30 (mean over seeds, 95% interval)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="lower center", ncol=4, frameon=False)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def report(args: argparse.Namespace) -> None:
    """The recorded jobs of ``--out`` summarised again, the declared rule applied, the figure drawn."""
    from jointsid_utils.config import load_config

    out = Path(args.out)
    payload = json.loads(out.read_text())
    records = [r for r in payload["jobs"] if r.get("profile", args.profile) == args.profile]
    payload["summary"] = summarise(records, int(load_config(args.profile).generator.epochs))
    payload["decision"] = decide(records)
    write(out, payload)
    plot_curves(payload["summary"], Path(args.figure))
    print(json.dumps({k: v for k, v in payload["decision"].items() if not k.endswith("checks")}, indent=1))


def write(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1) + "\n")
    os.replace(tmp, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="default")
    ap.add_argument("--schemes", nargs="+", default=list(SCHEMES), help="embedding/quantizer")
    ap.add_argument("--epochs", type=int, nargs="+", default=list(EPOCHS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--arms", nargs="+", default=list(ARMS))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="bench/results/bench_generator_convergence.json")
    ap.add_argument("--figure", default="bench/results/bench_generator_convergence.png")
    ap.add_argument("--report", action="store_true", help="no jobs: summarise --out, apply the declared rule, "
                                                          "draw --figure")
    args = ap.parse_args()
    if args.report:
        report(args)
        return
    from jointsid_utils.runtime.environment import configure_runtime

    configure_runtime()  # idle OpenMP threads sleep, the hub stays offline; workers inherit both
    unknown = [a for a in args.arms if a not in ARMS]
    if unknown:
        raise SystemExit(f"Unknown arm(s) {unknown}; choose from {', '.join(ARMS)}.")
    from jointsid_utils.config import load_config
    from jointsid_utils.generator.orchestration import prepare_scheme_ids, scope_schemes, worker_init

    cfg = load_config(args.profile)
    out = Path(args.out)
    earlier = json.loads(out.read_text()) if out.exists() else {}
    records = [r for r in earlier.get("jobs", []) if r.get("profile", args.profile) == args.profile]
    done = {job_id(r) for r in records}
    jobs = [j for j in plan(args.profile, args.arms, args.schemes, args.epochs, args.seeds) if job_id(j) not in done]
    print(f"{len(jobs)} jobs to run, {len(done)} recorded", flush=True)
    started = time.time()
    prepare_scheme_ids(cfg, [tuple(s.split("/")) for s in args.schemes], args.seeds)  # seed s's refit IDs
    needs_warm = sorted({j["seed"] for j in jobs if j["options"].get("warm_start")})
    warm = pretrained(args.profile, needs_warm, len(scope_schemes(cfg))) if needs_warm else {}
    meta = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "profile": args.profile,
            "workers": args.workers, "date": time.strftime("%Y-%m-%d"), "own_epochs": int(cfg.generator.epochs),
            "pretraining": {**earlier.get("meta", {}).get("pretraining", {}), **{str(k): v for k, v in warm.items()}}}

    def save() -> None:
        meta["slice_seconds"] = round(time.time() - started, 1)
        summary = summarise(records, int(cfg.generator.epochs))
        write(out, {"meta": meta, "summary": summary, "jobs": records})
        if summary:
            plot_curves(summary, Path(args.figure))

    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn"), initializer=worker_init) as pool:
        futures = [pool.submit(run_job, args.profile, j, warm.get(j["seed"]) if j["options"].get("warm_start") else None)
                   for j in sorted(jobs, key=lambda j: -j["epochs"])]  # the longest first: no long tail
        for future in as_completed(futures):
            records.append({**future.result(), "profile": args.profile})
            save()
    save()
    for r in summarise(records, int(cfg.generator.epochs)):
        paired = {t: r.get(f"paired_{t}", {}).get("diff") for t in TASKS}
        print(f"{r['scheme']:24s} {r['arm']:14s} e{r['epochs']:<3d} search {r['val_search']} rec {r['val_rec']} "
              f"sd {r['val_search_seed_sd']}/{r['val_rec_seed_sd']} paired {paired}", file=sys.stdout)


if __name__ == "__main__":
    main()
