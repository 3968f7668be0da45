"""Tables and figures that describe the dataset and queries (notebook 01)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def dataset_stats(items: pd.DataFrame, interactions: pd.DataFrame, queries: pd.DataFrame) -> pd.DataFrame:
    """One row per statistic, as a reader compares it with the paper's ML-25M (62k items, 1.2M interactions)."""
    per_user = interactions.groupby("user_id").size()
    n_users, n_items = interactions.user_id.nunique(), len(items)
    split = interactions.split.value_counts()
    rows = {
        "items": n_items,
        "users": n_users,
        "interactions": len(interactions),
        "train / validation / test interactions":
            f"{split.get('train', 0)} / {split.get('validation', 0)} / {split.get('test', 0)}",
        "density": f"{len(interactions) / (n_users * n_items):.4f}",
        "history length (min / median / max)": f"{per_user.min()} / {per_user.median():.0f} / {per_user.max()}",
        "items with a plot summary": int(items["plot"].notna().sum()) if "plot" in items else 0,
        "items with IMDb attributes": int(items["runtime_min"].notna().sum()) if "runtime_min" in items else 0,
        "queries (train / validation / test)": " / ".join(str(int((queries.split == s).sum()))
                                                          for s in ("train", "validation", "test")),
        "item text length, words (median)": int(items.text.str.split().str.len().median()),
    }
    return pd.DataFrame({"value": [str(v) for v in rows.values()]}, index=pd.Index(list(rows), name="statistic"))


def repairs_table(items: pd.DataFrame) -> pd.DataFrame:
    """What loading repaired (the ingestion policy of docs/DATA.md), one row per repair, 0 where none was needed."""
    repairs = items.attrs.get("repairs", {})
    return pd.DataFrame({"count": [int(n) for n in repairs.values()]},
                        index=pd.Index(list(repairs), name="repair (docs/DATA.md)"))


def plot_history_and_popularity(interactions: pd.DataFrame) -> plt.Figure:
    """History length per user and interactions per item, on log axes (both are long-tailed)."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    per_user = interactions.groupby("user_id").size()
    ax1.hist(per_user, bins=np.logspace(np.log10(per_user.min()), np.log10(per_user.max()), 30), color="#4C72B0")
    ax1.set(xscale="log", xlabel="interactions per user (log)", ylabel="users", title="History length")
    per_item = interactions[interactions.split == "train"].groupby("item_id").size().sort_values(ascending=False)
    ax2.plot(np.arange(1, len(per_item) + 1), per_item.to_numpy(), color="#DD8452")
    head = max(1, int(round(0.01 * len(per_item))))
    ax2.axvline(head, ls="--", color="grey")
    head_share = per_item.iloc[:head].sum() / per_item.sum()
    ax2.text(head * 1.15, per_item.max() * 0.6, f"head: top 1% ({head} items)\n{head_share:.0%} of train interactions",
             fontsize=9)
    ax2.set(xscale="log", yscale="log", xlabel="item rank by train popularity (log)", ylabel="train interactions (log)",
            title="Item popularity")
    for ax in (ax1, ax2):
        ax.xaxis.set_major_formatter(plt.matplotlib.ticker.ScalarFormatter())
    ax2.yaxis.set_major_formatter(plt.matplotlib.ticker.ScalarFormatter())
    ax2.yaxis.set_minor_formatter(plt.matplotlib.ticker.NullFormatter())
    fig.tight_layout()
    return fig


def plot_query_lengths(queries: pd.DataFrame) -> plt.Figure:
    """Words per query, per kind: how much a query says about its item."""
    words = queries.assign(words=queries["query"].str.split().str.len())
    order = words.groupby("kind")["words"].median().sort_values().index.tolist()
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(order) + 1.2))
    data = [words.loc[words.kind == k, "words"].to_numpy() for k in order]
    ax.boxplot(data, vert=False, tick_labels=order, showfliers=False, patch_artist=True,
               boxprops={"facecolor": "#8172B3", "alpha": 0.6})
    ax.set(xlabel="words per query", title="Query length by kind")
    fig.tight_layout()
    return fig


def example_queries(queries: pd.DataFrame, items: pd.DataFrame, titles: list[str], per_kind: int = 1) -> pd.DataFrame:
    """A few queries of every kind for well-known movies (falling back to the most-queried kinds' items)."""
    known = items[items.title.isin(titles)].item_id.tolist()
    pool = queries[queries.item_id.isin(known)] if known else queries
    picked = pool.groupby("kind", group_keys=False).head(per_kind)
    missing = set(queries.kind) - set(picked.kind)
    if missing:
        picked = pd.concat([picked, queries[queries.kind.isin(missing)].groupby("kind").head(per_kind)])
    out = picked.merge(items[["item_id", "title", "year"]], on="item_id")
    return out[["kind", "query", "title", "year", "split"]].sort_values("kind").reset_index(drop=True)
