"""A user's recent history beside what a trained generator, and the run's SASRec, recommend next.

The case is the study's rec test case for that user (``generator.examples``): every item before the user's
first test item is the history, and that test item is the held-out one, marked in every list.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from jointsid_utils.cache import runs_root
from jointsid_utils.config import StudyConfig
from jointsid_utils.errors import StudyInputError
from jointsid_utils.explore.search import decode, item_table
from jointsid_utils.explore.trained import Catalogue, TrainedGenerator
from jointsid_utils.generator.tokenization import rec_prompt

SASREC_PREDICTIONS = "baseline__sasrec__rec.parquet"  # notebook 06's saved test lists (evaluation.results)


def held_out_case(catalogue: Catalogue, user: int) -> tuple[np.ndarray, int | None]:
    """(history, held-out item) of ``user``: the items before their first test item, and that item (None
    for a user without a test item: then the whole sequence is history)."""
    inter = catalogue.interactions
    if not isinstance(user, (int, np.integer)) or isinstance(user, bool):
        raise StudyInputError(f"The user id must be an integer, not {user!r}; pick one of 0..{inter['user_id'].max()}.")
    rows = inter[(inter["user_id"] == int(user)).to_numpy()]
    if rows.empty:
        raise StudyInputError(f"User {user} is not in this run's data; pick a user id between "
                              f"{inter['user_id'].min()} and {inter['user_id'].max()}.")
    seq, split = rows["item_id"].to_numpy(), rows["split"].to_numpy()
    test = np.flatnonzero(split == "test")
    return (seq[: test[0]], int(seq[test[0]])) if len(test) else (seq, None)


def user_history(catalogue: Catalogue, user: int, last: int = 10) -> pd.DataFrame:
    """The user's last ``last`` history items (oldest first) with titles, and the held-out item after them."""
    history, held_out = held_out_case(catalogue, user)
    recent = [int(i) for i in history[-last:]]
    table = pd.DataFrame({"position": np.arange(len(history) - len(recent) + 1, len(history) + 1),
                          "item_id": recent, "title": catalogue.titles(recent), "held_out": ""})
    if held_out is not None:
        table.loc[len(table)] = [len(history) + 1, held_out, catalogue.titles([held_out])[0], "<- held out"]
    return table


def recommend(gen: TrainedGenerator, catalogue: Catalogue, user: int, k: int = 10) -> pd.DataFrame:
    """The generator's top ``k`` for ``user``'s test case (the last ``history_k`` items as its rec IDs, as
    in training), protocol "all" (the list as decoded), the held-out item marked."""
    history, held_out = held_out_case(catalogue, user)
    ranked, scores = decode(gen, "rec", rec_prompt(gen.ids, history, gen.settings.history_k))
    return item_table(gen, catalogue, "rec", ranked[:k], scores[:k], {held_out}, "<- held out")


def sasrec_list(cfg: StudyConfig, catalogue: Catalogue, user: int, k: int = 10, seed: int | None = None) -> pd.DataFrame:
    """SASRec's saved top ``k`` for ``user`` (notebook 06 saves its test lists only, so this is that list:
    protocol "all", training seed ``seed`` or the first saved), the held-out item marked; an empty frame
    when the run saved no SASRec lists."""
    _, held_out = held_out_case(catalogue, user)
    path = runs_root() / cfg.folder / "results" / "predictions" / SASREC_PREDICTIONS
    if not path.exists():
        return pd.DataFrame(columns=["rank", "item_id", "title", "target"])
    preds = pd.read_parquet(path)
    preds = preds[(preds["protocol"] == "all").to_numpy() & (preds["user_id"] == int(user)).to_numpy()]
    if seed is not None:
        preds = preds[(preds["seed"] == seed).to_numpy()]
    if preds.empty:
        return pd.DataFrame(columns=["rank", "item_id", "title", "target"])
    ranked = [int(i) for i in preds.sort_values("seed").iloc[0]["ranked"][:k]]
    return pd.DataFrame({"rank": np.arange(1, len(ranked) + 1), "item_id": ranked, "title": catalogue.titles(ranked),
                         "target": ["<- held out" if i == held_out else "" for i in ranked]})
