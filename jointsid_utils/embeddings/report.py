"""Tables and figures for notebook 02: stage timings, training curves, genre maps, nearest neighbours, the
dense check's expected orderings and the recorded metrics."""

from __future__ import annotations

import json
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from jointsid_utils.cache import manifest_path, run_dir
from jointsid_utils.config import StudyConfig
from jointsid_utils.cutoff import recall_column, recall_column_in
from jointsid_utils.embeddings.dense_check import PRIMARY_PROTOCOL, recall_of
from jointsid_utils.embeddings.registry import embedding_path


def _read_json(path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def stage_timings(cfg: StudyConfig, methods: Sequence[str]) -> pd.DataFrame:
    """Seconds each method took when its matrix was built (from the cache manifests), and training details."""
    rows = []
    for method in methods:
        manifest = _read_json(manifest_path(embedding_path(cfg, method))) or {}
        info = _read_json(run_dir(cfg.folder, "models", method) / "jointsid_model.json") or {}
        shape = np.load(embedding_path(cfg, method), mmap_mode="r").shape if embedding_path(cfg, method).exists() else ()
        rows.append({"method": method, "dim": shape[1] if len(shape) == 2 else None,
                     "build_seconds": manifest.get("build_seconds"), "train_seconds": info.get("train_seconds"),
                     "pairs_per_second": info.get("pairs_per_second"), "built_at": manifest.get("built_at")})
    return pd.DataFrame(rows)


def finetune_curves(cfg: StudyConfig, method: str) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """(training loss per logged step, validation metrics per evaluation incl. step 0 = base encoder)."""
    log = _read_json(run_dir(cfg.folder, "models", method) / "training_log.json")
    if log is None:
        return None
    hist = log["log_history"]
    loss = pd.DataFrame([{"step": r["step"], "loss": r["loss"]} for r in hist if "loss" in r])
    evals = [{"step": 0, **{k: v for k, v in log["baseline"].items()}}]
    evals += [{"step": r["step"], **{k[5:]: v for k, v in r.items() if k.startswith("eval_") and "recall" in k or k == "eval_score"}}
              for r in hist if "eval_score" in r]
    return loss, pd.DataFrame(evals).drop_duplicates("step", keep="last")


def enmf_curves(cfg: StudyConfig) -> tuple[pd.DataFrame, dict] | None:
    log = _read_json(run_dir(cfg.folder, "models", "rec") / "training_log.json")
    if log is None:
        return None
    rows = [{"c0": run["c0"], **row} for run in log["runs"] for row in run["curve"]]
    chosen = ("chosen_c0", "chosen_epoch", f"val_{recall_column(cfg.evaluation.k)}")
    return pd.DataFrame(rows), {k: log[k] for k in chosen}


def plot_training(cfg: StudyConfig):
    """One figure: MNRL loss of the fine-tunes, their validation Recall@k, ENMF validation Recall@k per c0."""
    import matplotlib.pyplot as plt

    k = cfg.evaluation.k
    column = recall_column(k)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for method, colour in (("search", "tab:blue"), ("multitask", "tab:purple")):
        curves = finetune_curves(cfg, method)
        if curves is None:
            continue
        loss, evals = curves
        axes[0].plot(loss.step, loss.loss, color=colour, label=method)
        for col, style in ((f"search_{column}", "-o"), (f"rec_{column}", "--s")):
            if col in evals:
                axes[1].plot(evals.step, evals[col], style, color=colour,
                             label=f"{method}: {col.split('_')[0]} (validation)")
    axes[0].set(title="MNRL training loss", xlabel="step", ylabel="loss")
    axes[1].set(title=f"Validation Recall@{k} while fine-tuning\n(step 0 = base encoder)", xlabel="step",
                ylabel=f"Recall@{k}")
    enmf = enmf_curves(cfg)
    if enmf is not None:
        curve, chosen = enmf
        val = curve.dropna(subset=[f"val_{column}"])
        for c0, part in val.groupby("c0"):
            axes[2].plot(part.epoch, part[f"val_{column}"], label=f"c0={c0:g}",
                         lw=2.5 if c0 == chosen["chosen_c0"] else 1)
        axes[2].axvline(chosen["chosen_epoch"], color="grey", ls=":")
        axes[2].set(title=f"ENMF validation Recall@{k} (train items excluded)\nchosen c0={chosen['chosen_c0']:g}, "
                          f"epoch {chosen['chosen_epoch']}", xlabel="epoch", ylabel=f"Recall@{k}")
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def main_genre(items: pd.DataFrame, top: int = 7) -> pd.Series:
    """Each item's first genre, the rarer ones grouped as "other"."""
    first = items["genres"].map(lambda g: g[0] if len(g) else "unknown")
    keep = set(first.value_counts().index[:top])
    return first.where(first.isin(keep), "other")


def plot_genre_maps(vectors: Mapping[str, np.ndarray], items: pd.DataFrame, *, seed: int = 0):
    """PCA of each method's item vectors to 2-D, coloured by main genre; one panel per method."""
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA

    genre = main_genre(items)
    order = list(genre.value_counts().index)
    palette = dict(zip(order, plt.get_cmap("tab10").colors))
    n = len(vectors)
    cols = min(3, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 4.2 * rows), squeeze=False)
    for ax, (method, x) in zip(axes.flat, vectors.items()):
        xy = PCA(n_components=2, random_state=seed).fit_transform(x)
        for g in reversed(order):  # the big genres last, on top
            mask = (genre == g).to_numpy()
            ax.scatter(xy[mask, 0], xy[mask, 1], s=6, alpha=0.6, color=palette[g], label=g)
        ax.set_title(method)
        ax.set_xticks([]), ax.set_yticks([])
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles[::-1], labels[::-1], loc="lower center", ncol=len(order), markerscale=3, frameon=False)
    fig.suptitle("Items in the first two principal components, coloured by main genre")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def find_items(items: pd.DataFrame, titles: Sequence[str]) -> list[int]:
    """Item ids of the given titles (exact match first, else the most-rated substring match); missing ones skipped."""
    found = []
    lower = items["title"].str.lower()
    for title in titles:
        exact = items.index[lower == title.lower()]
        hits = exact if len(exact) else items.index[lower.str.contains(title.lower(), regex=False)]
        if len(hits):
            found.append(int(items.loc[hits[0], "item_id"]))
    return found


def neighbours(vectors: Mapping[str, np.ndarray], items: pd.DataFrame, item_ids: Sequence[int], k: int = 5
               ) -> pd.DataFrame:
    """For each query item, its ``k`` nearest items (cosine) under each method, as titles."""
    titles = (items["title"] + " (" + items["year"].astype("string").fillna("?") + ")").to_numpy()
    table = {}
    for method, x in vectors.items():
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        for item in item_ids:
            sims = x @ x[item]
            sims[item] = -np.inf
            table[(titles[item], method)] = [titles[j] for j in np.argsort(-sims)[:k]]
    frame = pd.DataFrame(table).T
    frame.columns = [f"#{i + 1}" for i in range(frame.shape[1])]
    frame.index.names = ["movie", "method"]
    return frame


def dense_checks(table: pd.DataFrame) -> dict[str, bool]:
    """The orderings the dense check should show under the primary protocol: each tuned space beats
    ``content`` on the task it was tuned for (``multitask`` on both)."""
    def r(method: str, task: str, user_vector: str = "history_mean") -> float:
        return recall_of(table, method, task, user_vector=user_vector)

    return {
        "search beats content on search": r("search", "search") > r("content", "search"),
        "rec beats content on rec (ENMF user vector)": r("rec", "rec", "enmf_user") > r("content", "rec"),
        "rec beats content on rec (history mean)": r("rec", "rec") > r("content", "rec"),
        "multitask beats content on search": r("multitask", "search") > r("content", "search"),
        "multitask beats content on rec": r("multitask", "rec") > r("content", "rec"),
    }


def dense_metrics(table: pd.DataFrame, methods: Sequence[str], timings: pd.DataFrame,
                  checks: Mapping[str, bool]) -> dict[str, float | int | None]:
    """Notebook 02's recorded metrics: dense Recall@k per method, task and protocol (4 decimals; named by the
    table's ``recall_at_<k>`` column), build seconds per method, and how many ``dense_checks`` hold."""
    column = recall_column_in(table)

    def r(method: str, task: str, protocol: str = PRIMARY_PROTOCOL, user_vector: str = "history_mean") -> float:
        return round(recall_of(table, method, task, protocol, user_vector), 4)

    metrics = {f"search_{column}/{m}": r(m, "search") for m in ("content", "search", "multitask")}
    metrics |= {f"rec_{column}/{m}": r(m, "rec") for m in methods}
    metrics |= {f"rec_{column}_exclude_history/{m}": r(m, "rec", "exclude_history") for m in methods}
    metrics |= {f"rec_{column}/rec_enmf_user": r("rec", "rec", user_vector="enmf_user"),
                f"rec_{column}_exclude_history/rec_enmf_user": r("rec", "rec", "exclude_history", "enmf_user")}
    metrics |= {f"build_seconds/{row.method}": row.build_seconds for row in timings.itertuples()}
    metrics |= {"checks_passed": int(sum(checks.values())), "checks_total": len(checks)}
    return metrics
