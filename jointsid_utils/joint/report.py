"""Notebook 07's table and figure: the joint constructions' ID diagnostics beside ``multitask x rq_kmeans``."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

from jointsid_utils.cutoff import recall_column_in
from jointsid_utils.joint.constructions import id_length
from jointsid_utils.joint.shared_task import unit_rows
from jointsid_utils.ids.schemes import Scheme, diagnostics_table, id_sets, level_codes

NEIGHBOURS = 10  # nearest items per item for the neighbour agreement
GROUP_BINS = (1, 2, 3, 5, 9)  # items per pre-dedup ID: 1 (unique), 2, 3-4, 5-8, 9 or more
GROUP_LABELS = ("1 (unique)", "2", "3-4", "5-8", "9+")


def comparison_table(results: Mapping[Scheme, tuple[np.ndarray, Mapping[str, Any]]]) -> pd.DataFrame:
    """``diagnostics_table`` plus what the generator sees: ID tokens per item and task, and for balanced_unique
    the collisions it removed (``collision_rate`` is then 0 by construction) and the share of items it moved."""
    table = diagnostics_table(results)
    extra = []
    for scheme, (_, diag) in results.items():
        for _ in id_sets(diag):
            extra.append({"id_tokens": id_length(scheme, diag),
                          "collisions_unconstrained": diag.get("collision_rate_before_reassignment"),
                          "moved_share": diag.get("moved_share")})
    return pd.concat([table, pd.DataFrame(extra)], axis=1)


def prefix_group_shares(results: Mapping[Scheme, tuple[np.ndarray, Mapping[str, Any]]]) -> pd.DataFrame:
    """Per ID set, the share of items whose ID before the dedup counter is shared by 1, 2, 3-4, 5-8, 9+
    items: the part of each ID the generator cannot read from the item's meaning."""
    rows = {}
    for scheme, (_, diag) in results.items():
        for block, _ in id_sets(diag):
            codes = level_codes(results, scheme, block or "search")
            _, inverse, counts = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
            per_item = counts[inverse.reshape(-1)]
            bins = np.digitize(per_item, GROUP_BINS) - 1
            name = scheme[0] if scheme[0] == scheme[1] else f"{scheme[0]} x {scheme[1]}"  # a construction
            label = name + (f" ({block})" if block else "")
            rows[label] = np.bincount(bins, minlength=len(GROUP_BINS)) / len(per_item)
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(GROUP_LABELS))


def plot_prefix_groups(results: Mapping[Scheme, tuple[np.ndarray, Mapping[str, Any]]], title: str = ""):
    """Stacked bars, one per ID set: how many items share each item's pre-dedup ID (green = unique)."""
    import matplotlib.pyplot as plt

    shares = prefix_group_shares(results).iloc[::-1]  # first scheme on top
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(shares) + 1.4))
    colors = plt.get_cmap("RdYlGn_r")(np.linspace(0.1, 0.9, len(GROUP_LABELS)))
    left = np.zeros(len(shares))
    for col, color in zip(shares.columns, colors):
        ax.barh(shares.index, shares[col], left=left, color=color, label=col, edgecolor="white", linewidth=0.5)
        left += shares[col].to_numpy()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of items")
    ax.legend(title="items sharing the ID", ncols=len(GROUP_LABELS), loc="lower center", bbox_to_anchor=(0.5, 1.0),
              fontsize=8, title_fontsize=8, frameon=False)
    ax.set_title(title, fontsize=11, pad=34)
    fig.tight_layout()
    return fig


def neighbour_agreement(results: Mapping[Scheme, tuple[np.ndarray, Mapping[str, Any]]],
                        vectors: Mapping[str, np.ndarray], k: int = NEIGHBOURS) -> pd.DataFrame:
    """Per scheme, the share of each item's ``k`` nearest items that share its first code, with neighbours
    by the search-tuned vectors (items that answer the same queries) and by ENMF (items consumed together).

    Why: the first code is the generator's first and hardest decision. If items a task confuses with each
    other sit under one first code, that task's beam reaches the right subtree more often; a construction
    that raises one agreement and lowers the other trades one task's recall for the other's. For two-ID
    schemes each task reads its own block (they share column 0, so the two agree)."""
    neighbours = {}
    for task in ("search", "rec"):  # each task's neighbours in its own tuned space
        V = unit_rows(vectors[task])
        sims = V @ V.T
        np.fill_diagonal(sims, -np.inf)
        neighbours[task] = np.argpartition(-sims, k, axis=1)[:, :k]
    rows = {}
    for scheme in results:
        row = {}
        for task, nn in neighbours.items():
            first = level_codes(results, scheme, task)[:, 0]
            row[f"{task}_neighbours_same_first_code"] = float((first[nn] == first[:, None]).mean())
        rows[scheme] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index = pd.MultiIndex.from_tuples(table.index, names=["embedding", "quantizer"])
    return table


def _point_label(embedding: str, quantizer: str) -> str:
    """``multitask`` for RQ-KMeans IDs, the quantizer alone where it already names the scheme (a tuning
    candidate such as ``multitask_cf@0.5``), else ``embedding x quantizer``."""
    if quantizer == "rq_kmeans":
        return embedding
    return quantizer if quantizer.startswith(embedding) else f"{embedding} x {quantizer}"


def plot_agreement_vs_recall(agreement: pd.DataFrame, validation: pd.DataFrame, title: str = ""):
    """Two panels (search, rec): x = the share of a task's neighbours under the item's first code, y = the
    scheme's validation Recall@k (``validation``'s ``recall_at_<k>`` column) for that task (mean over seeds, bars
    from the lowest to the highest seed).
    One colour and marker per scheme, named in one legend below the panels (labels beside points collide)."""
    import matplotlib.pyplot as plt

    recall = recall_column_in(validation)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    colors, markers = plt.get_cmap("tab10").colors, "osD^vP*Xhp"
    style = {scheme: (colors[i % 10], markers[i % len(markers)]) for i, scheme in enumerate(agreement.index)}
    for ax, task in zip(axes, ("search", "rec")):
        v = validation[validation.task == task].groupby(["embedding", "quantizer"])[recall].agg(["mean", "min", "max"])
        both = agreement.join(v, how="inner")
        for scheme, row in both.iterrows():
            color, marker = style[scheme]
            ax.errorbar(row[f"{task}_neighbours_same_first_code"], row["mean"], fmt=marker, color=color, ms=7,
                        yerr=[[row["mean"] - row["min"]], [row["max"] - row["mean"]]], ecolor=color, capsize=3,
                        label=_point_label(*scheme))
        ax.set_xlabel(f"share of {NEIGHBOURS} nearest items ({'search-tuned' if task == 'search' else 'ENMF'} "
                      "vectors)\nunder the item's first code")
        ax.set_ylabel(f"validation Recall@{recall.removeprefix('recall_at_')}, {task}")
        ax.set_title(task, fontsize=10)
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncols=min(4, max(1, len(labels))), fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.06 * (1 + (len(labels) - 1) // 4), 1, 1))
    return fig
