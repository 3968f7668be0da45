"""Notebook 05's views of the trained generators: loss curves, times, and decoded examples.

Reads ``models/generator/<scheme>__seed<k>/train_info.json`` (the Trainer's log history) and the saved
predictions (``results/predictions/``); nothing here trains or decodes.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd

from jointsid_utils.config import StudyConfig
from jointsid_utils.generator.orchestration import scheme_name
from jointsid_utils.generator.tokenization import make_id_scheme
from jointsid_utils.generator.training import model_dir
from jointsid_utils.metrics import predictions_path

if TYPE_CHECKING:
    from jointsid_utils.ids.schemes import Scheme

RECALL_COLUMNS = ("search/all", "rec/all", "rec/exclude_history")


def loss_curves(cfg: StudyConfig, schemes: Sequence[Scheme], seed: int) -> pd.DataFrame:
    """Tidy loss curves: scheme, epoch, step, curve ("train" every 50 steps, "validation" per epoch), loss."""
    rows = []
    for s in schemes:
        path = model_dir(cfg.folder, scheme_name(s), seed) / "train_info.json"
        if not path.exists():
            continue
        info = json.loads(path.read_text())
        for h in info.get("log_history", []):
            for key, curve in (("loss", "train"), ("eval_loss", "validation")):
                if key in h:
                    rows.append({"scheme": f"{s[0]} / {s[1]}", "epoch": h.get("epoch"), "step": h.get("step"),
                                 "curve": curve, "loss": float(h[key])})
        if "train_loss" in info.get("metrics", {}) and not any(r["curve"] == "train" and r["scheme"] == f"{s[0]} / {s[1]}"
                                                                 for r in rows):
            # runs shorter than one logging interval only report the mean train loss: draw it at the end
            m = info["metrics"]
            rows.append({"scheme": f"{s[0]} / {s[1]}", "epoch": m.get("epoch"), "step": None, "curve": "train (mean)",
                         "loss": float(m["train_loss"])})
    return pd.DataFrame(rows, columns=["scheme", "epoch", "step", "curve", "loss"])


def plot_loss_curves(curves: pd.DataFrame, *, ncols: int = 4):
    """Small multiples, one panel per scheme, shared axes: train and validation loss by epoch."""
    import matplotlib.pyplot as plt

    schemes = list(dict.fromkeys(curves.scheme))
    nrows = max(1, -(-len(schemes) // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.3 * ncols, 2.5 * nrows), sharex=True, sharey=True,
                             squeeze=False)
    styles = {"train": dict(color="tab:blue", lw=1.2), "train (mean)": dict(color="tab:blue", marker="x", ls=""),
              "validation": dict(color="tab:orange", marker="o", ms=4, lw=1.5)}
    for ax, scheme in zip(axes.flat, schemes):
        c = curves[curves.scheme == scheme]
        for curve, g in c.groupby("curve", sort=False):
            ax.plot(g.epoch, g.loss, label=curve, **styles.get(curve, {}))
        best = c[c.curve == "validation"]
        if len(best):
            b = best.loc[best.loss.idxmin()]
            ax.annotate(f"best {b.loss:.2f}", (b.epoch, b.loss), textcoords="offset points", xytext=(-10, 8), fontsize=7)
        ax.set_title(scheme, fontsize=9)
    for ax in axes.flat[len(schemes):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("epoch")
    for ax in axes[:, 0]:
        ax.set_ylabel("cross-entropy")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, bbox_to_anchor=(0.5, -0.02), frameon=False)
    fig.suptitle("Generator loss per scheme (train every 50 steps, validation per epoch)", y=1.0)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def loss_summary(curves: pd.DataFrame) -> pd.DataFrame:
    """Per scheme: first, lowest and last validation loss, and whether it was still falling at the end."""
    table = curves[curves.curve == "validation"].groupby("scheme").loss.agg(["first", "min", "last"])
    table["still falling at the end"] = table["last"] <= table["min"]
    return table


def recall_table(runs: pd.DataFrame) -> pd.DataFrame:
    """``train_all_schemes``' summary rows with their Recall@k per task/protocol as columns."""
    recalls = pd.DataFrame([{"embedding": r.embedding, "quantizer": r.quantizer, "seed": r.seed, **r.recall}
                            for r in runs.itertuples()])
    return runs[["embedding", "quantizer", "seed", "status"]].merge(recalls, on=["embedding", "quantizer", "seed"])


def recall_metrics(recalls: pd.DataFrame) -> dict[str, Any]:
    """``{"<embedding>__<quantizer>/seed<k>/<task>/<protocol>": recall}`` for the notebook's metrics record."""
    return {f"{r['embedding']}__{r['quantizer']}/seed{r['seed']}/{col}": r[col]
            for _, r in recalls.iterrows() for col in RECALL_COLUMNS if col in r}


def timing_table(summaries: pd.DataFrame) -> pd.DataFrame:
    """Per scheme and seed: train and decode seconds, examples per epoch, parameters."""
    t = summaries.copy()
    t["train_examples"] = [(e or {}).get("train_search", 0) + (e or {}).get("train_rec", 0) for e in t.examples]
    cols = ["embedding", "quantizer", "seed", "train_seconds", "decode_seconds", "job_seconds", "train_examples",
            "parameters", "vocab_size", "workers"]
    return t[[c for c in cols if c in t]]


def plot_times(times: pd.DataFrame, title: str):
    """One stacked bar per scheme and seed: train then decode seconds (``timing_table`` rows)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.32 * len(times) + 1.2))
    labels = times.embedding + " / " + times.quantizer + " s" + times.seed.astype(str)
    ax.barh(labels, times.train_seconds, label="train")
    ax.barh(labels, times.decode_seconds, left=times.train_seconds, label="decode")
    ax.invert_yaxis()
    ax.set_xlabel("seconds")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    ax.set_title(title)
    return fig


def _id_text(scheme, task: str, item: int) -> str:
    return "".join(scheme.item_tokens(task, int(item)))


def example_predictions(cfg: StudyConfig, scheme: Scheme, codes: np.ndarray, items: pd.DataFrame,
                        interactions: pd.DataFrame, task: str, *, n_cases: int = 3, top: int = 5, seed: int = 0,
                        case_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """A few test cases with the top generated IDs decoded to titles; the target is marked with ``<==``.

    Search cases show the query; rec cases the user's last three history titles. Cases default to the
    first ``n_cases`` where the target is in the top ``evaluation.k``, then the first misses, so both are seen.
    """
    k = cfg.evaluation.k
    path = predictions_path(cfg.folder, scheme[0], scheme[1], task)
    preds = pd.read_parquet(path)
    preds = preds[(preds.seed == seed) & (preds.protocol == "all") & (preds.decoding == "beam")]
    sid = make_id_scheme(scheme_name(scheme), codes)
    title = items.set_index("item_id")["title"].astype(str)
    if case_ids is None:
        hit = np.array([t in list(r)[:k] for t, r in zip(preds.target, preds.ranked)])
        n_hit = min(n_cases - n_cases // 2, int(hit.sum()))
        chosen = pd.concat([preds[hit].head(n_hit), preds[~hit].head(n_cases - n_hit)])
    else:
        chosen = preds[preds.case_id.isin(case_ids)]
    rows = []
    for r in chosen.itertuples():
        if task == "search":
            context = f"query: {r.query}"
        else:
            u = interactions[(interactions.user_id == r.user_id) & (interactions.split != "test")]
            context = "history: " + " | ".join(title[i] for i in u.item_id.tolist()[-3:])
        ranked = list(r.ranked)
        rank = ranked.index(r.target) + 1 if r.target in ranked else None
        rows.append({"case": r.case_id, "context": context, "rank": "target", "ID": _id_text(sid, task, r.target),
                     "title": title[r.target], "mark": f"target at rank {rank}" if rank else f"target not in top {k}"})
        for position, item in enumerate(ranked[:top], 1):
            rows.append({"case": r.case_id, "context": "", "rank": position, "ID": _id_text(sid, task, item),
                         "title": title[item], "mark": "<== target" if item == r.target else ""})
    return pd.DataFrame(rows)
