"""The joint ID constructions' settings, chosen on **validation** only.

    OMP_WAIT_POLICY=PASSIVE python bench/bench_joint_tuning.py [--profile default] [--seeds 0 1]
        [--candidate NAME ...] [--generator KEY=VALUE ...] [--workers 2]

Each candidate is a joint construction with some ``joint_ids`` settings; ``incumbent`` is multitask x RQ-KMeans,
the scheme a construction must beat (F5). Every candidate's IDs are built from ``runs/<profile>/``'s
embeddings (notebook 02), its generator trained as notebook 05 trains a job (one thread, each training seed
of ``--seeds``), and decoded on the validation cases only (the validation queries; every user's validation
item). The test split is never decoded here. ``summary`` holds, per candidate, the mean validation Recall@30
over seeds, the seed SD, the ID diagnostics (collision rate before the suffix, share of items moved), and the paired
difference from the incumbent on the same seeds and cases. ``balance`` is the selection rule: the smaller of
the candidate's two validation recalls as a share of the single-task IDs' (search x RQ-KMeans on search, rec
x RQ-KMeans on rec, the same seeds), so the construction that comes closest to both task-specific ID spaces at
once ranks first; per construction the candidate with the highest balance is its finalist. Models go under
``runs/<profile>_joint_tuning/<candidate>[+<generator settings>]__seed<k>/`` and are reused on a rerun; writes
``bench/results/bench_joint_tuning.json`` (or ``--out``) after every finished job.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from multiprocessing import get_context

import yaml

# candidate -> (scheme: a joint construction or the incumbent's embedding, joint_ids settings)
CANDIDATES: dict[str, tuple[str, dict]] = {
    "incumbent": ("multitask", {}),
    # the single-task IDs a joint construction should match on each task (F8): the selection rule's yardstick
    "single_search": ("search", {}),
    "single_rec": ("rec", {}),
    "multitask_cf@0.25": ("multitask_cf", {"cf_weight": 0.25}),
    "multitask_cf@0.5": ("multitask_cf", {"cf_weight": 0.5}),  # the setting of the first round
    "multitask_cf@1": ("multitask_cf", {"cf_weight": 1.0}),
    "multitask_cf@2": ("multitask_cf", {"cf_weight": 2.0}),
    # level 0 on multitask, search levels on the MNRL vectors (the first round's setting)
    "shared_then_task": ("shared_then_task", {"shared_input": "multitask"}),
    "shared_then_task@search_multitask": ("shared_then_task", {"shared_input": "multitask", "search_space": "multitask"}),
    "shared_then_task@shared_cf0.5": ("shared_then_task", {"shared_input": "multitask_cf", "cf_weight": 0.5}),
    "shared_then_task@shared_cf1": ("shared_then_task", {"shared_input": "multitask_cf", "cf_weight": 1.0}),
    "balanced_unique": ("balanced_unique", {"unique_codebook_size": None}),  # the smallest capacity for every item
    "balanced_unique@96": ("balanced_unique", {"unique_codebook_size": 96}),
    "balanced_unique@128": ("balanced_unique", {"unique_codebook_size": 128}),
    # LETTER-style alignment of the RQ-VAE's quantized multitask latent to ENMF; @0 is rq_vae_fixed on multitask
    "aligned_rq_vae@0": ("aligned_rq_vae", {"align_weight": 0.0}),
    "aligned_rq_vae@1e-5": ("aligned_rq_vae", {"align_weight": 1e-5}),
    "aligned_rq_vae@1e-4": ("aligned_rq_vae", {"align_weight": 1e-4}),
    "aligned_rq_vae@1e-3": ("aligned_rq_vae", {"align_weight": 1e-3}),
}

REFERENCES = ("incumbent", "single_search", "single_rec")  # notebook 03's IDs, not built here


def candidate_config(profile: str, name: str, generator: dict):
    from jointsid_utils.config import load_config

    _, joint = CANDIDATES[name]
    overrides = {f"joint_ids.{k}": v for k, v in joint.items()}
    overrides.update({f"generator.{k}": v for k, v in generator.items()})
    return load_config(profile, overrides)


def candidate_codes(base, cfg, name: str):
    """(the codes as notebook 03 / 07 store them, their ID diagnostics): a reference's from notebook 03, a
    construction built here with ``cfg``'s joint settings from ``base``'s embeddings (notebook 02's run)."""
    from jointsid_utils.cache import run_dir
    from jointsid_utils.embeddings.registry import load_embedding
    from jointsid_utils.ids.schemes import load_ids
    from jointsid_utils.joint.constructions import JOINT_INPUTS, build_joint_ids

    scheme, _ = CANDIDATES[name]
    if name in REFERENCES:
        ids = load_ids(base, scheme, "rq_kmeans")
        return ids.codes, dict(getattr(ids, "diagnostics", None) or {})
    vectors = {m: load_embedding(base, m) for m in JOINT_INPUTS}
    return build_joint_ids(cfg, scheme, vectors, run_dir(f"{base.folder}_joint_tuning", "ids", name))


def candidate_ids(base, cfg, name: str):
    """(the scheme's IdScheme for the generator, its ID diagnostics)."""
    from jointsid_utils.generator.tokenization import make_id_scheme
    from jointsid_utils.joint.constructions import construction

    scheme, _ = CANDIDATES[name]
    codes, diag = candidate_codes(base, cfg, name)
    quantizer = "rq_kmeans" if name in REFERENCES else construction(scheme).quantizer
    return make_id_scheme(f"{scheme}__{quantizer}", codes), diag


def train_candidate(profile: str, name: str, seed: int, generator: dict) -> dict:
    """Train the candidate's generator with training seed ``seed`` as notebook 05 does, then Recall@30 on the
    validation cases (and each case's hit, for the paired comparison)."""
    import numpy as np

    from jointsid_utils.cache import run_dir
    from jointsid_utils.generator import orchestration
    from jointsid_utils.generator.examples import scheme_examples
    from jointsid_utils.generator.job import data_hash, job_key, validation_recall
    from jointsid_utils.generator.model import load_saved
    from jointsid_utils.generator.predict import predict_validation
    from jointsid_utils.generator.job import trained_model
    from jointsid_utils.metrics import per_case_recall, recall_column
    from jointsid_utils.runtime.reproducibility import seed_everything

    from jointsid_utils.config import load_config

    base = load_config(profile)  # the inputs: the profile's run of notebooks 01-03
    cfg = candidate_config(profile, name, generator)
    k = cfg.evaluation.k
    gcfg = replace(cfg.generator, seeds=(seed,))
    items, interactions, queries = orchestration.load_inputs(base)
    ids, diag = candidate_ids(base, cfg, name)
    seed_everything(seed)
    examples = scheme_examples(ids, items, interactions, queries, gcfg, seed=seed, case_seed=cfg.seed)
    key = job_key(gcfg, ids, data_hash(items, interactions, queries), case_seed=cfg.seed, seed=seed)
    out = run_dir(f"{base.folder}_joint_tuning", _job_folder(name, seed, generator))
    saved, info = trained_model(ids, lambda: examples, items, queries, gcfg, seed, key, link=out / "model")
    tok, model = load_saved(saved)
    preds = predict_validation(model, tok, ids, examples, gcfg)
    row = {"candidate": name, "scheme": CANDIDATES[name][0], "settings": CANDIDATES[name][1], "seed": seed,
           "train_seconds": info["train_seconds"], "collision_rate": diag.get("collision_rate"),
           "moved_share": diag.get("moved_share"), "generator": generator}
    hits = {}
    for task, score in validation_recall(preds, k=k).items():
        row[f"val_{task}"] = score[recall_column(k)]
        row[f"val_{task}_cases"] = score["n_cases"]
    for task, frame in preds.groupby("task", sort=True):
        frame = frame.sort_values("case_id", kind="stable").reset_index(drop=True)
        hits[f"{task}_hits"] = per_case_recall(frame, k=k)
        hits[f"{task}_cases"] = frame["case_id"].astype(str).to_numpy().astype("U")
    np.savez(out / "validation_hits.npz", **hits)
    print(json.dumps(row), flush=True)
    return row


def _job_folder(name: str, seed: int, generator: dict) -> str:
    extra = "".join(f"+{k}={v}" for k, v in sorted(generator.items()))
    return f"{name}{extra}__seed{seed}".replace("/", "_")


def summarise(profile: str, rows: list[dict], generator: dict) -> list[dict]:
    """Per candidate: mean and seed SD of validation Recall@30 per task, and the paired difference from the
    incumbent on the seeds both have (t over seeds and cases; the smallest difference the design detects)."""
    import numpy as np

    from jointsid_utils.cache import run_dir
    from jointsid_utils.evaluation.statistics import minimum_detectable_difference, paired_test
    from jointsid_utils.config import load_config

    folder, ev = load_config(profile).folder, load_config(profile).evaluation

    def hits(name, seed):
        path = run_dir(f"{folder}_joint_tuning", _job_folder(name, seed, generator)) / "validation_hits.npz"
        return dict(np.load(path)) if path.exists() else None

    by_name: dict[str, list[dict]] = {}
    for row in rows:
        by_name.setdefault(row["candidate"], []).append(row)
    base_seeds = {r["seed"] for r in by_name.get("incumbent", [])}
    out = []
    for name, members in by_name.items():
        seeds = sorted(r["seed"] for r in members)
        s = {"candidate": name, "scheme": members[0]["scheme"], "settings": members[0]["settings"], "seeds": seeds,
             "collision_rate": members[0]["collision_rate"], "moved_share": members[0]["moved_share"]}
        for task in ("search", "rec"):
            values = [r[f"val_{task}"] for r in members]
            s[f"val_{task}_mean"] = round(float(np.mean(values)), 4)
            s[f"val_{task}_seed_sd"] = round(float(np.std(values, ddof=1)), 4) if len(values) > 1 else None
        shared = sorted(set(seeds) & base_seeds) if name != "incumbent" else []
        if shared:
            for task in ("search", "rec"):
                a = np.stack([hits(name, k)[f"{task}_hits"] for k in shared])
                b = np.stack([hits("incumbent", k)[f"{task}_hits"] for k in shared])
                t = paired_test(a, b, level=ev.level)
                s[f"{task}_vs_incumbent"] = {k: round(float(t[k]), 4) for k in ("diff", "ci_low", "ci_high", "p_value")}
                detectable = minimum_detectable_difference(t["se"], 1, alpha=ev.alpha, power=ev.power, df=t["df"])
                s[f"{task}_vs_incumbent"]["detectable"] = round(detectable, 4)
        out.append(s)
    refs = {r["candidate"]: r for r in out if r["candidate"] in ("single_search", "single_rec")}
    if len(refs) == 2:
        for s in out:
            s["balance"] = round(min(s["val_search_mean"] / refs["single_search"]["val_search_mean"],
                                     s["val_rec_mean"] / refs["single_rec"]["val_rec_mean"]), 4)
    return out


def plot_finalists(profile: str, rows: list[dict], out: str) -> None:
    """The candidates trained on more than one seed (finalists and references) in notebook 07's figure:
    first-code neighbour agreement against validation Recall@30, per task."""
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    from jointsid_utils.config import load_config
    from jointsid_utils.embeddings.registry import load_embedding
    from jointsid_utils.joint.constructions import JOINT_INPUTS
    from jointsid_utils.joint.report import neighbour_agreement, plot_agreement_vs_recall
    from jointsid_utils.metrics import recall_column

    base = load_config(profile)
    seeds: dict[str, set] = {}
    for r in rows:
        seeds.setdefault(r["candidate"], set()).add(r["seed"])
    chosen = [c for c, k in seeds.items() if len(k) > 1]
    key = {c: (CANDIDATES[c][0], "rq_kmeans" if c in REFERENCES else c) for c in chosen}
    results = {key[c]: candidate_codes(base, candidate_config(profile, c, {}), c) for c in chosen}
    vectors = {m: load_embedding(base, m) for m in JOINT_INPUTS}
    agreement = neighbour_agreement(results, vectors)
    validation = pd.DataFrame([{"embedding": key[r["candidate"]][0], "quantizer": key[r["candidate"]][1],
                                "seed": r["seed"], "task": t, recall_column(base.evaluation.k): r[f"val_{t}"]}
                               for r in rows if r["candidate"] in key for t in ("search", "rec")])
    fig = plot_agreement_vs_recall(agreement, validation, "Finalists and references on validation "
                                   f"({max(len(k) for k in seeds.values())} seeds): first-code agreement vs recall")
    fig.savefig(out, dpi=120, bbox_inches="tight")
    print(agreement.round(3).to_string())


def _write(path: str, payload: dict) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path + ".tmp", "w") as fh:
        json.dump(payload, fh, indent=1, default=str)
    os.replace(path + ".tmp", path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="default")
    ap.add_argument("--candidate", nargs="+", default=list(CANDIDATES))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--generator", nargs="*", default=[], metavar="KEY=VALUE",
                    help="generator settings of every job, e.g. epochs=4 (the profile's otherwise)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="bench/results/bench_joint_tuning.json")
    ap.add_argument("--plot-only", action="store_true",
                    help="train nothing: draw the finalists' figure from --out (beside it, as .png)")
    args = ap.parse_args()
    from jointsid_utils.runtime.environment import configure_runtime

    configure_runtime()  # idle OpenMP threads sleep, the hub stays offline; workers inherit both
    unknown = [c for c in args.candidate if c not in CANDIDATES]
    if unknown:
        raise SystemExit(f"Unknown candidate(s) {unknown}; choose from {', '.join(CANDIDATES)}.")
    generator = {k: yaml.safe_load(v) for k, v in (g.split("=", 1) for g in args.generator)}
    if args.plot_only:
        plot_finalists(args.profile, json.load(open(args.out))["validation"], args.out.replace(".json", ".png"))
        return
    from jointsid_utils.generator.orchestration import worker_init

    started = time.time()
    earlier = json.load(open(args.out)) if os.path.exists(args.out) else {"validation": []}
    rerun = {(c, k) for c in args.candidate for k in args.seeds}
    rows = [r for r in earlier["validation"] if (r["candidate"], r["seed"]) not in rerun
            and r.get("generator", {}) == generator]
    meta = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "profile": args.profile,
            "generator": generator, "date": time.strftime("%Y-%m-%d"), "workers": args.workers}
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn"), initializer=worker_init) as pool:
        futures = [pool.submit(train_candidate, args.profile, c, k, generator) for k in args.seeds
                   for c in args.candidate]
        for future in as_completed(futures):
            rows.append(future.result())
            meta["total_seconds"] = round(time.time() - started, 1)
            _write(args.out, {"meta": meta, "validation": rows, "summary": []})
    summary = summarise(args.profile, rows, generator)
    _write(args.out, {"meta": meta, "validation": rows, "summary": summary})
    for s in summary:
        print(f"{s['candidate']:36s} seeds {s['seeds']} search {s['val_search_mean']} (sd {s['val_search_seed_sd']}) "
              f"rec {s['val_rec_mean']} (sd {s['val_rec_seed_sd']}) vs incumbent "
              f"{ {t: s.get(f'{t}_vs_incumbent', {}).get('diff') for t in ('search', 'rec')} } balance {s.get('balance')}")


if __name__ == "__main__":
    main()
