"""A free-text query through a trained generator: its decoded semantic IDs and items, best first."""

from __future__ import annotations

import numpy as np
import pandas as pd

from jointsid_utils.errors import StudyInputError
from jointsid_utils.explore.trained import Catalogue, TrainedGenerator
from jointsid_utils.generator.predict import rank_cases
from jointsid_utils.generator.tokenization import search_prompt


def decode(gen: TrainedGenerator, task: str, prompt: str) -> tuple[list[int], list[float]]:
    """The generator's ranked items and beam scores for one prompt, decoded exactly as the study's test
    cases are (``generator.predict.rank_cases``: the ID trie, the run's decoding and ``top_k``)."""
    case = pd.DataFrame({"case_id": ["explore"], "prompt": [prompt], "target": [-1]})
    frame = rank_cases(gen.model, gen.tokenizer, gen.ids, task, case, gen.settings, [("all", None)])
    return list(frame.at[0, "ranked"]), list(frame.at[0, "scores"])


def target_items(catalogue: Catalogue, query: str) -> list[int]:
    """The items a test query of the run was written for (empty when ``query`` is no test query)."""
    q = catalogue.queries
    hit = q[(q["split"] == "test").to_numpy() & (q["query"].str.strip().str.lower() == query.strip().lower()).to_numpy()]
    return sorted(set(hit["item_id"].astype(int)))


def search(gen: TrainedGenerator, catalogue: Catalogue, query: str, k: int = 10) -> pd.DataFrame:
    """The top ``k`` items for ``query``: rank, decoded semantic ID, title, genres, beam score (a log
    probability) and, for a test query, ``target`` marking its items. ``attrs["target_ranks"]`` gives where
    each target item ranks in the whole decoded list (None: not in it)."""
    if not isinstance(query, str) or not query.strip():
        raise StudyInputError("The search query is empty; type a few words, e.g. 'space adventure with robots'.")
    ranked, scores = decode(gen, "search", search_prompt(query.strip()))
    targets = target_items(catalogue, query)
    table = item_table(gen, catalogue, "search", ranked[:k], scores[:k], set(targets))
    table.attrs["target_ranks"] = {int(t): (ranked.index(t) + 1 if t in ranked else None) for t in targets}
    table.attrs["decoded"] = len(ranked)
    return table


def item_table(gen: TrainedGenerator, catalogue: Catalogue, task: str, ranked: list[int], scores: list[float],
               marked: set[int], mark: str = "<- target") -> pd.DataFrame:
    """One row per ranked item, with its ID, title and genres; ``target`` marks the held-out items."""
    items = catalogue.items.set_index("item_id")
    return pd.DataFrame({
        "rank": np.arange(1, len(ranked) + 1),
        "semantic_id": [gen.semantic_id(task, i) for i in ranked],
        "item_id": ranked,
        "title": catalogue.titles(ranked),
        "genres": [", ".join(items.at[i, "genres"]) for i in ranked],
        "score": np.round(scores, 3),
        "target": [mark if i in marked else "" for i in ranked],
    })
