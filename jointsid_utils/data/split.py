"""From raw ratings to the study's interactions: slicing, contiguous ids, the leave-last-out split, and the
selection view: the same frames with the test rows removed, the only data a step that chooses may read."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from jointsid_utils.config import StudyConfig
from jointsid_utils.errors import StudyInputError
from jointsid_utils.runtime.reproducibility import rng

INTERACTION_COLUMNS = ["user_id", "item_id", "timestamp", "rating", "split"]
# The split labels each frame may carry, and those a step that chooses something may read (STUDY.md §2,
# "Choices are made on validation only"): queries are split train / validation / test per item.
SPLITS = {"interactions": ("train", "validation", "test"), "queries": ("train", "validation", "test")}
SELECTION_SPLITS = {"interactions": ("train", "validation"), "queries": ("train", "validation")}


def slice_interactions(ratings: pd.DataFrame, cfg: StudyConfig) -> pd.DataFrame:
    """max_items (most rated), then a seeded user sample (max_users / target_interactions), then min_interactions."""
    data = cfg.data
    if data.max_items is not None:
        counts = ratings.groupby("movie").size().rename("n").reset_index()
        counts = counts.sort_values(["n", "movie"], ascending=[False, True], kind="mergesort")  # ties: lower id
        ratings = ratings[ratings["movie"].isin(counts["movie"].head(data.max_items).to_numpy())]
    if data.max_users is not None or data.target_interactions is not None:
        per_user = ratings.groupby("user").size().sort_index()
        order = rng(cfg.seed, "users").permutation(per_user.index.to_numpy())
        if data.max_users is not None:
            order = order[: data.max_users]
        if data.target_interactions is not None:
            # Paper: sample users until about this many interactions (1.2M of ML-25M).
            total = per_user.loc[order].cumsum().to_numpy()
            order = order[: int(np.searchsorted(total, data.target_interactions)) + 1]
        ratings = ratings[ratings["user"].isin(order)]
    per_user = ratings.groupby("user")["movie"].transform("size")
    ratings = ratings[per_user >= data.min_interactions]
    if ratings.empty:
        raise StudyInputError(f"No user has {data.min_interactions}+ interactions after slicing (max_items="
                              f"{data.max_items}, max_users={data.max_users}, target_interactions="
                              f"{data.target_interactions}); raise those limits, lower data.min_interactions "
                              "(to 3 at least) or use a dataset whose users have more interactions.")
    return ratings


def reindex(items: pd.DataFrame, ratings: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep items with interactions; contiguous item ids in source order, user ids in user order.

    The items gain empty enrichment columns (runtime, IMDb rating, MPAA, plot) so every catalogue has
    the same schema whether or not ``enrich_items`` fills them.
    """
    items = items[items["movie"].isin(ratings["movie"].unique())]
    items = items.sort_values("movie").reset_index(drop=True)
    items.insert(0, "item_id", np.arange(len(items), dtype="int64"))
    item_of = pd.Series(items["item_id"].to_numpy(), index=items["movie"].to_numpy())
    items.insert(1, "source_id", items.pop("movie").astype(str))
    users = np.sort(ratings["user"].unique())
    user_of = pd.Series(np.arange(len(users), dtype="int64"), index=users)
    interactions = pd.DataFrame({
        "user_id": user_of.loc[ratings["user"].to_numpy()].to_numpy(),
        "item_id": item_of.loc[ratings["movie"].to_numpy()].to_numpy().astype("int64"),
        "timestamp": ratings["timestamp"].astype("int64").to_numpy(),
        "rating": ratings["rating"].astype("float32").to_numpy(),
    })
    items["runtime_min"] = pd.array([None] * len(items), dtype="Int64")
    items["imdb_rating"] = np.full(len(items), np.nan)
    items["mpaa"] = pd.Series([None] * len(items), dtype=object)
    items["plot"] = pd.Series([None] * len(items), dtype=object)
    return items, interactions


def split_leave_last_out(interactions: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Per user, in time order: last = test, second-to-last = validation, rest = train.

    Interactions with the same (user, timestamp) are ordered by a key drawn from ``rng(seed, "ties")``,
    never by item id: ids follow source order, which tracks popularity, so an id tie-break would make
    the test item the least popular of a user's last burst (STUDY.md, "Ties in the split and the dedup
    level"). Rows are put in a canonical order before the draw, so the result depends on the
    interactions and the seed, not on the input's row order.
    """
    canonical = interactions.sort_values(["user_id", "timestamp", "item_id"], kind="mergesort")
    tie_key = rng(seed, "ties").permutation(len(canonical))
    order = np.lexsort((tie_key, canonical["timestamp"].to_numpy(), canonical["user_id"].to_numpy()))
    out = canonical.iloc[order].reset_index(drop=True)
    from_end = out.groupby("user_id").cumcount(ascending=False).to_numpy()
    out["split"] = np.where(from_end == 0, "test", np.where(from_end == 1, "validation", "train"))
    out["split"] = out["split"].astype(str)
    return out[INTERACTION_COLUMNS]


class SelectionView(NamedTuple):
    """The interactions and queries without their test rows (row order kept, index renumbered)."""

    interactions: pd.DataFrame
    queries: pd.DataFrame


def selection_view(interactions: pd.DataFrame, queries: pd.DataFrame) -> SelectionView:
    """The study's frames with every test row removed: the one data entry point of every step that *chooses*
    (ENMF's c0 and epoch, a fine-tune's or the generator's best checkpoint), so choosing cannot read the test
    split. A split label outside ``SPLITS`` fails here rather than slipping through as "not test"."""
    return SelectionView(*(_selection_rows(name, frame) for name, frame in
                           (("interactions", interactions), ("queries", queries))))


def _selection_rows(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    if "split" not in frame.columns:
        raise StudyInputError(f"The {name} frame has no 'split' column, so its test rows cannot be held back; "
                              "build it with jointsid_utils.data.dataset / jointsid_utils.queries.stage.")
    labels = frame["split"].astype(str)
    unknown = sorted(set(labels.unique()) - set(SPLITS[name]))
    if unknown:
        raise StudyInputError(f"The {name} frame has split label(s) {unknown}, not one of {list(SPLITS[name])}; "
                              "rebuild it with jointsid_utils.data.dataset / jointsid_utils.queries.stage.")
    return frame[labels.isin(SELECTION_SPLITS[name]).to_numpy()].reset_index(drop=True)


def validation_queries(queries: pd.DataFrame, n_cases: int | None, seed: int) -> pd.DataFrame:
    """The validation queries every step that chooses reads (fine-tunes, BM25, the generator's checkpoint, the
    benches), in row order; a seeded subsample of ``n_cases`` when there are more (None = all).

    ``seed`` is the study seed, never a training seed, and the draw is one permutation cut at ``n_cases``: every
    scheme and training seed scores the same cases, and a stage with a smaller cap sees a subset of a larger
    one's. No train query is ever held out in its place, so no encoder trains on what another stage validates on.
    """
    if "split" not in queries.columns:
        raise StudyInputError("The queries frame has no 'split' column, so its validation rows cannot be found; "
                              "build it with jointsid_utils.queries.stage.")
    q_val = queries[(queries["split"] == "validation").to_numpy()]
    if q_val.empty and n_cases != 0:
        raise StudyInputError("The queries frame has no validation rows to choose on; rebuild queries.parquet with "
                              "jointsid_utils.queries.stage and queries.validation_per_item >= 1.")
    if n_cases is not None and n_cases < len(q_val):
        pick = np.sort(rng(seed, "queries", "validation").permutation(len(q_val))[:n_cases])
        q_val = q_val.iloc[pick]
    return q_val.reset_index(drop=True)
