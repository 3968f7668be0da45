"""Figures of notebook 03: per-level codebook usage, the codebook-size sweep, genres over first-level codes."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from jointsid_utils.ids.schemes import Scheme, id_sets


def plot_codebook_usage(results: Mapping[Scheme, tuple[np.ndarray, Mapping[str, Any]]], schemes: Sequence[Scheme],
                        title: str = "", label: str = "embedding"):
    """Small multiples, one row per ID set and one column per level: code shares sorted high to low.

    The dashed line is a uniform code distribution (1 / codebook size); a collapsed level is one tall bar.
    ``label`` names rows by ``"embedding"``, ``"quantizer"`` or ``"both"``.
    """
    import matplotlib.pyplot as plt

    rows = []
    for scheme in schemes:
        codes, diag = results[scheme]
        L = int(diag["config"]["levels"])
        for b, (block, d) in enumerate(id_sets(diag)):
            start = b * (L + 1)
            name = {"embedding": scheme[0], "quantizer": scheme[1]}.get(label, f"{scheme[0]} / {scheme[1]}")
            rows.append((name + (f" ({block})" if block else ""), codes[:, start:start + L], d["levels"]))
    n_levels = max(c.shape[1] for _, c, _ in rows)
    fig, axes = plt.subplots(len(rows), n_levels, figsize=(4.2 * n_levels, 1.25 * len(rows) + 0.6),
                             sharey="row", squeeze=False)  # per-row scale: a collapsed row would flatten the rest
    for r, (name, codes, levels) in enumerate(rows):
        for lvl in range(n_levels):
            ax = axes[r, lvl]
            if lvl >= codes.shape[1]:
                ax.axis("off")
                continue
            K = levels[lvl]["codebook_size"]
            counts = np.sort(np.bincount(codes[:, lvl], minlength=K))[::-1] / len(codes)
            ax.bar(np.arange(K), counts, width=1.0, color="C0" if levels[lvl]["used"] > K / 2 else "C3")
            ax.axhline(1 / K, color="k", ls="--", lw=0.8)
            ax.set_xlim(-0.5, K - 0.5)
            ax.text(0.98, 0.9, f"used {levels[lvl]['used']}/{K}  ppl {levels[lvl]['perplexity']:.0f}  "
                               f"top {levels[lvl]['top_code_share']:.0%}",
                    transform=ax.transAxes, ha="right", va="top", fontsize=8,
                    bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "pad": 1})
            ax.tick_params(labelsize=7)
            if K > 16:
                ax.set_xticks([0, K // 2, K - 1])
            if lvl == 0:
                ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
            if r == 0:
                ax.set_title(f"level {lvl + 1}", fontsize=10)
            if r == len(rows) - 1:
                ax.set_xlabel("codes, most used first", fontsize=8)
    fig.suptitle(title + "  (share of items per code; dashed = uniform)", fontsize=11)
    fig.tight_layout()
    return fig


def plot_codebook_sweep(sweep: pd.DataFrame, chosen: int | None = None):
    """Against codebook size: perplexity / size per level (how much of each level is in use), the
    collision rate before dedup, and the largest group of items under one 2-level prefix."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for i, (emb, g) in enumerate(sweep.groupby("embedding", sort=False)):
        for level, gl in g.groupby("level"):
            axes[0].plot(gl.codebook_size, gl.perplexity_share, marker="o", color=f"C{i}",
                         ls="-" if level == 1 else "--", label=f"{emb} L{level}")
        first = g[g.level == 1]
        axes[1].plot(first.codebook_size, first.collision_rate, marker="o", color=f"C{i}", label=emb)
        axes[2].plot(first.codebook_size, first.max_items_per_prefix, marker="o", color=f"C{i}", label=emb)
    titles = ["effective usage: perplexity / codebook size", "collision rate (before dedup)",
              "largest group under one prefix"]
    for ax, t in zip(axes, titles):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(sweep.codebook_size.unique()))
        ax.get_xaxis().set_major_formatter(plt.ScalarFormatter())
        ax.set_xlabel("codebook size per level")
        ax.set_title(t, fontsize=10)
        if chosen is not None:
            ax.axvline(chosen, color="grey", lw=6, alpha=0.25)
    axes[0].set_ylim(0, 1.05)
    axes[1].set_ylim(0, 1.05)
    axes[0].legend(fontsize=7, ncol=2)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_genre_spread(matrices: Mapping[str, pd.DataFrame]):
    """One heatmap per embedding: genre x its largest first-level codes, share of the genre's items."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    genres = sorted(set().union(*(m.index for m in matrices.values())))
    # one colour scale for all panels, set by the data (64 codes spread a genre thinner than 8 do)
    vmax = max(0.05, float(np.quantile(np.concatenate([m.to_numpy().ravel() for m in matrices.values()]), 0.99)))
    fig, axes = plt.subplots(1, len(matrices), figsize=(5.2 * len(matrices), 6), sharey=True, squeeze=False)
    for ax, (name, m) in zip(axes[0], matrices.items()):
        m = m.reindex(index=genres, fill_value=0.0)
        # codes ordered by the genre they hold most of, so genre-pure codes form a rough diagonal
        m = m[sorted(m.columns, key=lambda c: (genres.index(m[c].idxmax()), -m[c].max()))]
        sns.heatmap(m, ax=ax, cmap="mako_r", vmin=0, vmax=vmax, cbar=ax is axes[0, -1],
                    cbar_kws={"label": "share of the genre's items"}, xticklabels=True, yticklabels=True)
        ax.set_title(f"{name}: {m.shape[1]} largest first-level codes", fontsize=10)
        ax.set_xlabel("first-level code (ordered by its main genre)")
        ax.set_ylabel("")
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig
