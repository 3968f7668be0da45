"""Notebook 04's figures: codebook usage over training, and the ablation per configuration."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd


def plot_usage_over_training(history: pd.DataFrame, configs: Sequence[str], *, embeddings: Sequence[str] | None = None,
                             codebook_size: int | None = None):
    """Codes used per level over training: rows = embeddings, columns = levels, one line per configuration
    (mean over seeds, shaded min..max)."""
    import matplotlib.pyplot as plt

    embeddings = list(embeddings or history.embedding.unique())
    shown = history[history.config.isin(configs)]  # levels of the plotted configs only (no empty panels)
    levels = sorted(shown.level.unique())
    fig, axes = plt.subplots(len(embeddings), len(levels), figsize=(5.2 * len(levels), 3.4 * len(embeddings)),
                             squeeze=False, sharex=True, sharey=True)
    colours = dict(zip(configs, plt.get_cmap("tab10").colors))
    for i, emb in enumerate(embeddings):
        for j, lvl in enumerate(levels):
            ax = axes[i, j]
            for k, name in enumerate(configs):
                h = history[(history.embedding == emb) & (history.level == lvl) & (history.config == name)]
                if h.empty:
                    continue
                g = h.groupby("step").used
                ax.plot(g.mean().index, g.mean().values, color=colours[name], lw=2.6 if k == 0 else 1.6,
                        ls="--" if k == 0 else "-", label=name, zorder=3 if k == 0 else 2)
                ax.fill_between(g.min().index, g.min().values, g.max().values, color=colours[name], alpha=0.15, lw=0)
            if codebook_size:
                ax.axhline(codebook_size, color="grey", ls=":", lw=1)
            ax.set_title(f"{emb} · level {lvl}")
            ax.set_xlabel("training step")
            ax.set_ylabel("codes used")
            ax.set_ylim(0, (codebook_size or ax.get_ylim()[1]) * 1.05)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.suptitle("RQ-VAE codebook usage over training (mean over seeds, band = min..max)", y=1.0)
    fig.tight_layout()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(5, len(labels)), fontsize=9)
    return fig


def plot_ablation(summary: pd.DataFrame, embedding: str, order: Sequence[str] | None = None):
    """Three panels per configuration: share of each level's codebook used, perplexity / codebook size,
    collision rate before dedup (mean over seeds, error bar = sd)."""
    import matplotlib.pyplot as plt

    s = summary[summary.embedding == embedding].copy()
    order = [c for c in (order or s.config.unique()) if c in set(s.config)]
    levels = sorted(s.level.unique())
    fig, axes = plt.subplots(1, 3, figsize=(15, 0.32 * len(order) + 1.6), sharey=True)
    y = np.arange(len(order))
    height = 0.8 / len(levels)
    for k, lvl in enumerate(levels):
        lv = s[s.level == lvl].set_index("config").reindex(order)
        offs = y - 0.4 + height * (k + 0.5)
        axes[0].barh(offs, lv.used_share, height, xerr=lv.used_sd / lv.codebook_size, label=f"level {lvl}")
        axes[1].barh(offs, lv.perplexity / lv.codebook_size, height, xerr=lv.perplexity_sd / lv.codebook_size,
                     label=f"level {lvl}")
    first = s[s.level == levels[0]].set_index("config").reindex(order)
    axes[2].barh(y, first.collision_rate, 0.6, xerr=first.collision_rate_sd, color="tab:red")
    axes[0].set_yticks(y, order)
    axes[0].invert_yaxis()
    axes[0].set_xlabel("codes used / codebook size")
    axes[1].set_xlabel("perplexity / codebook size")
    axes[2].set_xlabel("collision rate before dedup (lower is better)")
    for ax in axes:
        ax.set_xlim(0, 1.05)
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle(f"RQ-VAE ablation on {embedding} (mean ± sd over seeds; each row changes the paper-like config)", y=1.0)
    fig.tight_layout()
    return fig
