"""What every embedding method reads: the study's frames, plus the training pairs drawn from them.

Only train data reaches a trainer: every train query and the train interactions. Choosing (a checkpoint,
c0, an epoch) reads the validation split (the validation queries and each user's validation item), the
same set every stage chooses on; test queries and interactions are read only by the dense check. A method that trains and chooses is handed
``selection_data(data)``, which holds no test row at all; only its cache key hashes the full frames.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from jointsid_utils.cache import run_dir
from jointsid_utils.config import StudyConfig, stable_hash
from jointsid_utils.data.split import selection_view, validation_queries
from jointsid_utils.errors import StudyInputError
from jointsid_utils.runtime.reproducibility import rng
from jointsid_utils.stages import Workspace


@dataclass
class EmbeddingData:
    """The frames one embedding stage reads; ``resolve(name)`` returns another method's matrix (fusions)."""

    items: pd.DataFrame
    interactions: pd.DataFrame
    queries: pd.DataFrame
    resolve: Callable[[str], np.ndarray] | None = None
    workspace: Workspace | None = None  # the embeddings stage's while it builds a method: where its model goes
    _fingerprints: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        check_frames(self.items, self.interactions, self.queries)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def texts(self) -> list[str]:
        return self.items["text"].astype(str).tolist()

    def fingerprint(self, part: str) -> str:
        """A content hash of the ``items`` text, the ``interactions`` or the ``queries``."""
        if part not in self._fingerprints:
            self._fingerprints[part] = frame_fingerprint(part, getattr(self, part))
        return self._fingerprints[part]


def selection_data(data: EmbeddingData) -> EmbeddingData:
    """``data`` without its test rows (``data.split.selection_view``): everything a method that trains and
    chooses (c0, epoch, best checkpoint) may read. Cache keys still hash the full frames (``data.fingerprint``),
    never this view's."""
    view = selection_view(data.interactions, data.queries)
    return EmbeddingData(data.items, view.interactions, view.queries, data.resolve, data.workspace)


MODEL = "model"  # the embeddings stage's output holding a method's trained model


def model_output(data: EmbeddingData, cfg: StudyConfig, method: str) -> tuple[Path, Path, str | None]:
    """(where ``method`` saves its model, where its checkpoints go, the stage key it is saved under).

    Inside the embeddings stage: the stage's ``model`` output, its scratch (a killed fine-tune resumes from
    there) and its key. Called outside a stage (a bench fitting one method): ``runs/<folder>/models/<method>``.
    """
    if data.workspace is not None:
        return data.workspace.out / MODEL, data.workspace.scratch, data.workspace.key
    out = run_dir(cfg.folder, "models") / method
    return out, out.with_name(f".{method}-checkpoints"), None


# The columns each frame's fingerprint covers: what the embedding methods and the dense check read.
FINGERPRINT_COLUMNS = {"items": ["item_id", "text"], "interactions": ["user_id", "item_id", "timestamp", "split"],
                       "queries": ["item_id", "query", "split"]}


def frame_fingerprint(part: str, frame: pd.DataFrame) -> str:
    """The cache keys' content hash of one study frame (``items``, ``interactions`` or ``queries``), row order
    included; stages that hold a frame without an ``EmbeddingData`` (the dense check) key on the same hash."""
    hashed = pd.util.hash_pandas_object(frame[FINGERPRINT_COLUMNS[part]], index=False).to_numpy()
    return stable_hash([len(frame), hashed.tobytes().hex()])


def array_fingerprint(array: np.ndarray) -> str:
    """The same kind of content hash for a matrix (item or user vectors): shape, dtype and every byte."""
    array = np.ascontiguousarray(array)
    digest = hashlib.sha256(array.tobytes()).hexdigest()
    return stable_hash([list(array.shape), str(array.dtype), digest])


def check_frames(items: pd.DataFrame, interactions: pd.DataFrame, queries: pd.DataFrame) -> None:
    """Fail with one sentence when a frame breaks the STUDY.md §4 schema the embeddings rely on."""
    for name, frame, cols in (("items", items, {"item_id", "text"}),
                              ("interactions", interactions, {"user_id", "item_id", "timestamp", "split"}),
                              ("queries", queries, {"item_id", "query", "split"})):
        missing = cols - set(frame.columns)
        if missing:
            raise StudyInputError(f"The {name} frame lacks column(s) {sorted(missing)}; "
                                  "build it with jointsid_utils.data.dataset / jointsid_utils.queries.stage.")
    if len(items) < 2:
        raise StudyInputError(f"The items frame has {len(items)} item(s); the embeddings need at least 2, so check "
                              "the data config (data.max_items) and reload with jointsid_utils.data.dataset.prepare_data.")
    blank = items["text"].isna() | (items["text"].astype(str).str.strip() == "")
    if blank.any():
        raise StudyInputError(f"items.text is missing or empty for {int(blank.sum())} item(s) (first: row "
                              f"{int(np.flatnonzero(blank.to_numpy())[0])}), which the encoders would embed as noise; "
                              "rebuild the items with jointsid_utils.data.dataset.prepare_data, which writes each item's text.")
    if items["item_id"].tolist() != list(range(len(items))):
        raise StudyInputError("items.item_id must be 0..n-1 in row order (row i = item i); "
                              "reload the items with jointsid_utils.data.dataset.prepare_data.")
    for name, frame in (("interactions", interactions), ("queries", queries)):
        ids = frame["item_id"].to_numpy()
        if len(ids) and (ids.min() < 0 or ids.max() >= len(items)):
            raise StudyInputError(f"{name}.item_id holds ids outside 0..{len(items) - 1}; "
                                  "rebuild it from the same items frame.")


# ----------------------------------------------------------------------------- search pairs

def finetune_queries(queries: pd.DataFrame, *, n_val: int | None, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(fit, validation) queries of a fine-tune: every train query, and the shared validation split
    (``data.split.validation_queries``, capped at ``n_val`` by the study ``seed``); the test split is never touched."""
    train = queries[(queries["split"] == "train").to_numpy()].reset_index(drop=True)
    return train, validation_queries(queries, n_val, seed)


def query_item_pairs(fit_queries: pd.DataFrame, items: pd.DataFrame, *, max_pairs: int | None,
                     seed: int) -> pd.DataFrame:
    """(query, item text) pairs for MNRL: the anchor is the query, the positive its item's text."""
    pairs = fit_queries[["query", "item_id"]].copy()
    if max_pairs is not None and len(pairs) > max_pairs:
        pairs = pairs.sample(n=max_pairs, random_state=int(rng(seed, "embeddings", "query_pairs").integers(2**31)))
    texts = items["text"].astype(str).to_numpy()
    return pd.DataFrame({"anchor": pairs["query"].astype(str).to_numpy(),
                         "positive": texts[pairs["item_id"].to_numpy()],
                         "item_id": pairs["item_id"].to_numpy()}).reset_index(drop=True)


# ----------------------------------------------------------------------------- item pairs

def consecutive_item_pairs(interactions: pd.DataFrame) -> pd.DataFrame:
    """(item_a, item_b) for every two consecutive **train** interactions of the same user, in time order."""
    train = interactions[interactions["split"] == "train"].sort_values(["user_id", "timestamp"], kind="stable")
    users = train["user_id"].to_numpy()
    ids = train["item_id"].to_numpy()
    same_user = users[1:] == users[:-1]
    pairs = pd.DataFrame({"user_id": users[1:][same_user], "item_a": ids[:-1][same_user],
                          "item_b": ids[1:][same_user]})
    return pairs[pairs["item_a"] != pairs["item_b"]].reset_index(drop=True)


def item_text_pairs(interactions: pd.DataFrame, items: pd.DataFrame, *, n_pairs: int | None,
                    seed: int) -> pd.DataFrame:
    """(item_a text, item_b text) MNRL pairs from consecutive train items, a seeded sample of ``n_pairs``."""
    pairs = consecutive_item_pairs(interactions)
    if n_pairs is not None and len(pairs) > n_pairs:
        pairs = pairs.sample(n=n_pairs, random_state=int(rng(seed, "embeddings", "item_pairs").integers(2**31)))
    texts = items["text"].astype(str).to_numpy()
    return pd.DataFrame({"anchor": texts[pairs["item_a"].to_numpy()], "positive": texts[pairs["item_b"].to_numpy()],
                         "item_a": pairs["item_a"].to_numpy(), "item_b": pairs["item_b"].to_numpy()}
                        ).reset_index(drop=True)


# ----------------------------------------------------------------------------- histories

def histories(interactions: pd.DataFrame, splits: tuple[str, ...]) -> dict[int, np.ndarray]:
    """user_id -> item ids of the given splits in time order."""
    part = interactions[interactions["split"].isin(splits)].sort_values(["user_id", "timestamp"], kind="stable")
    return {int(u): g.to_numpy() for u, g in part.groupby("user_id", sort=True)["item_id"]}


def targets(interactions: pd.DataFrame, split: str) -> pd.Series:
    """user_id -> the held-out item of ``split`` ("validation" or "test")."""
    part = interactions[interactions["split"] == split]
    return part.set_index("user_id")["item_id"].sort_index()
