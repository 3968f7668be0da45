"""Notebook 07's table and figure: the joint constructions' ID diagnostics beside ``multitask x rq_kmeans``."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

from jointsid_utils.joint.constructions import id_length
from jointsid_utils.ids.schemes import Scheme, diagnostics_table, id_sets, level_codes

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
            label = f"{scheme[0]} x {scheme[1]}" + (f" ({block})" if block else "")
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
