"""Notebook 04's tables from the RQ-VAE diagnosis records (``rqvae_diagnosis.run_grid``): tidy per-run and
per-step frames, mean ± sd over seeds, the scale probe, when codes die, the stage's IDs, the metrics."""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from jointsid_utils.ids.rqvae_diagnosis import CONFIGS, FIXED


def input_scale(vectors: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Per embedding: items, width, mean row norm and mean per-coordinate sd (the scale the RQ-VAE's
    encoder and random codebook meet)."""
    return pd.DataFrame({m: {"items": v.shape[0], "dim": v.shape[1], "mean row norm": float((v ** 2).sum(1).mean() ** 0.5),
                             "per-coordinate sd": float(v.std(0).mean())} for m, v in vectors.items()}).T


def configs_table() -> pd.DataFrame:
    """The grid's configurations: knob group and what each changes from the paper-like ``rq_vae``."""
    return pd.DataFrame([(name, group, ", ".join(f"{k}={v}" for k, v in change.items()) or "(library defaults)")
                         for name, (group, change) in CONFIGS.items()],
                        columns=["config", "knob", "change from paper-like"])


def runs_table(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per (embedding, configuration, seed, level) with the level's and the run's diagnostics."""
    rows = []
    for r in records:
        for lvl, stats in enumerate(r["levels"]):
            rows.append({
                "embedding": r["embedding"], "config": r["name"], "group": r["group"], "seed": r["seed"],
                "level": lvl + 1, "codebook_size": stats["codebook_size"], "used": stats["used"],
                "used_share": stats["used"] / stats["codebook_size"], "perplexity": stats["perplexity"],
                "top_code_share": stats["top_code_share"], "collision_rate": r["collision_rate"],
                "max_items_per_prefix": r["max_items_per_prefix"], "distinct_prefixes": r["distinct_prefixes"],
                "reconstruction_mse": r["reconstruction_mse"], "fit_seconds": r["fit_seconds"],
                "steps": r["config"]["steps"],
                "codes_used_init_l1": r["probe_init"]["codes_used_init"],
                "latent_radius_init": r["probe_init"]["latent_radius"],
                "code_spacing_init": r["probe_init"]["code_spacing"],
                "code_gap_init": r["probe_init"]["code_gap"],
                "latent_radius_final": r["probe_final"]["latent_radius"],
            })
    return pd.DataFrame(rows)


def history_table(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per (embedding, configuration, seed, logged step, level): codes used, perplexity, losses."""
    rows = []
    for r in records:
        for h in r["history"]:
            for lvl, (used, ppl) in enumerate(zip(h["used"], h["perplexity"])):
                rows.append({"embedding": r["embedding"], "config": r["name"], "seed": r["seed"], "step": h["step"],
                             "level": lvl + 1, "used": used, "perplexity": ppl, "distinct_ids": h["distinct_ids"],
                             "recon_loss": h["recon_loss"], "commit_loss": h["commit_loss"][lvl]})
    return pd.DataFrame(rows)


def summary_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and sd over seeds per (embedding, configuration, level)."""
    cols = ["codebook_size", "used", "used_share", "perplexity", "top_code_share", "collision_rate", "max_items_per_prefix",
            "distinct_prefixes", "reconstruction_mse", "codes_used_init_l1", "fit_seconds"]
    g = runs.groupby(["embedding", "config", "level"], sort=False)[cols]
    out = g.mean().join(g.std(ddof=1).add_suffix("_sd")).join(g.size().rename("seeds"))
    return out.reset_index()


def pretty_table(summary: pd.DataFrame, embedding: str) -> pd.DataFrame:
    """The ablation table for one embedding: 'mean ± sd' strings, one row per configuration, levels side by side."""
    s = summary[summary.embedding == embedding]

    def pm(m: float, sd: float, fmt: str) -> str:
        return f"{m:{fmt}}" if not np.isfinite(sd) else f"{m:{fmt}} ± {sd:{fmt}}"

    rows = []
    for name, block in s.groupby("config", sort=False):
        row: dict[str, Any] = {"config": name, "knob": CONFIGS.get(name, ("custom",))[0]}
        for _, lv in block.iterrows():
            k = int(lv.level)
            row[f"L{k} used"] = pm(lv.used, lv.used_sd, ".1f") + f" / {int(lv.codebook_size)}"
            row[f"L{k} perplexity"] = pm(lv.perplexity, lv.perplexity_sd, ".1f")
        first = block.iloc[0]
        row["collision rate"] = pm(first.collision_rate, first.collision_rate_sd, ".3f")
        row["max items/prefix"] = pm(first.max_items_per_prefix, first.max_items_per_prefix_sd, ".1f")
        row["recon MSE x1e3"] = pm(1e3 * first.reconstruction_mse, 1e3 * first.reconstruction_mse_sd, ".3f")
        row["seeds"] = int(first.seeds)
        rows.append(row)
    return pd.DataFrame(rows).set_index("config")


def death_steps(history: pd.DataFrame, threshold: float = 0.1) -> pd.DataFrame:
    """Per (embedding, config, seed, level): the first logged step where codes used fall below
    ``threshold`` x the best count seen so far, and the step where usage is lowest."""
    rows = []
    for (emb, cfg, seed, lvl), h in history.groupby(["embedding", "config", "seed", "level"], sort=False):
        h = h.sort_values("step")
        peak = h.used.cummax()
        dead = h[h.used <= np.maximum(1, threshold * peak)]
        rows.append({"embedding": emb, "config": cfg, "seed": seed, "level": lvl,
                     "first_logged_used": int(h.used.iloc[0]), "min_used": int(h.used.min()),
                     "step_of_min": int(h.step.iloc[int(h.used.values.argmin())]),
                     "collapsed_at_step": int(dead.step.iloc[0]) if len(dead) else None,
                     "final_used": int(h.used.iloc[-1])})
    return pd.DataFrame(rows)


def probe_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Level 1's scale probe per (embedding, configuration), mean over seeds: latent radius versus code
    spacing at initialisation (a ratio far below 1 leaves one code nearest to every item), codes in use
    before training and after it."""
    probe = (runs[runs.level == 1].groupby(["embedding", "config"], sort=False)
             [["latent_radius_init", "code_spacing_init", "code_gap_init", "codes_used_init_l1", "latent_radius_final",
               "used"]].mean().rename(columns={"used": "used_l1_final"}))
    probe["radius / spacing"] = probe.latent_radius_init / probe.code_spacing_init.where(probe.code_spacing_init > 0)
    return probe


def death_summary(history: pd.DataFrame, configs: Sequence[str]) -> pd.DataFrame:
    """``death_steps`` of ``configs``, mean over seeds per (embedding, configuration, level)."""
    deaths = death_steps(history)
    return (deaths[deaths.config.isin(list(configs))].groupby(["embedding", "config", "level"], sort=False)
            [["first_logged_used", "min_used", "step_of_min", "final_used"]].mean())


def stage_table(stage: Mapping[tuple[str, str], Mapping[str, Any]]) -> pd.DataFrame:
    """One row per (embedding, quantizer) of ``rqvae_diagnosis.stage_diagnostics``: collisions, codes used
    and perplexity per level, reconstruction error, fit time."""
    return pd.DataFrame([{"embedding": e, "quantizer": q, "collision_rate": d["collision_rate"],
                          "max_items_per_prefix": d["max_items_per_prefix"], "distinct_prefixes": d["distinct_prefixes"],
                          **{f"L{i + 1} used": lv["used"] for i, lv in enumerate(d["levels"])},
                          **{f"L{i + 1} perplexity": lv["perplexity"] for i, lv in enumerate(d["levels"])},
                          "reconstruction_mse": d["reconstruction_mse"], "fit_seconds": d["fit_seconds"]}
                         for (e, q), d in stage.items()])


def stage_history(stage: Mapping[tuple[str, str], Mapping[str, Any]], seed: int) -> pd.DataFrame:
    """The stage builds' training histories in ``history_table``'s layout (the quantizer as ``config``), so
    ``rqvae_plots.plot_usage_over_training`` draws them."""
    return pd.DataFrame([{"embedding": e, "config": q, "seed": seed, "step": h["step"], "level": level + 1,
                          "used": used}
                         for (e, q), d in stage.items() for h in d["training"].get("history", [])
                         for level, used in enumerate(h["used"])])


# The configurations whose numbers notebook 04 records: the baseline, the fix, and each remedy alone.
RECORDED = ("paper_like", FIXED, "standardise_input", "kmeans_init", "dead_code_2", "residual_only")


def diagnosis_metrics(plan: Mapping[str, Any], records: Sequence[Mapping[str, Any]], summary: pd.DataFrame,
                      stage: Mapping[tuple[str, str], Mapping[str, Any]], levels: int) -> dict[str, Any]:
    """Notebook 04's recorded metrics: per embedding and ``RECORDED`` configuration the codes used per level
    and the collision rate (mean over seeds; None where the grid did not run it), and the stage's IDs."""
    def mean(emb: str, name: str, col: str, level: int = 1) -> float | None:
        row = summary[(summary.embedding == emb) & (summary.config == name) & (summary.level == level)]
        return float(row[col].iloc[0]) if len(row) else None

    metrics: dict[str, Any] = {"ablation_steps": plan["steps"], "seeds": list(plan["seeds"]), "runs": len(records)}
    for emb in plan["configs"]:
        for name in RECORDED:
            for level in range(1, levels + 1):
                metrics[f"{emb}/{name}/L{level}_used"] = mean(emb, name, "used", level)
            metrics[f"{emb}/{name}/collision_rate"] = mean(emb, name, "collision_rate")
    for (e, q), d in stage.items():
        metrics[f"stage/{e}/{q}/collision_rate"] = d["collision_rate"]
        metrics[f"stage/{e}/{q}/used"] = [lv["used"] for lv in d["levels"]]
    return metrics
