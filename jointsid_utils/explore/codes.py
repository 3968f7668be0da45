"""What a scheme's codes stand for: per code, its size and the genres, years and words that set its items
apart from the catalogue; and the items that share a full ID before the dedup level (collisions).

"Sets apart" is a share ratio: a genre's (or word's, or decade's) share of the code's items over its share of
the catalogue's (the lift); a feature counts only when at least ``MIN_ITEMS`` of the code's items have it,
so one odd item does not name a code. Words are ranked by share x log(lift), a document-level TF-IDF; a
word in more than ``MAX_WORD_SHARE`` of the catalogue's items (the text template's "genres", "year", "imdb")
cannot set a code apart and is left out, as a TF-IDF's ``max_df`` would.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Iterable

import numpy as np
import pandas as pd

from jointsid_utils.errors import StudyInputError

MIN_ITEMS = 2
MAX_WORD_SHARE = 0.5
WORD = re.compile(r"[a-z][a-z']{2,}")
STOPWORDS = frozenset("""the and for with from that this his her their its into about after when who what
are was were has have had but not all one two out they them she him you your our new film movie story life
man woman young old world""".split())


def prefixes(codes: np.ndarray, level: int) -> np.ndarray:
    """Each item's ID prefix of ``level`` levels (1 = the first-level code) as one string per item."""
    if not 1 <= level <= codes.shape[1]:
        raise StudyInputError(f"Level {level} is outside this scheme's levels 1..{codes.shape[1]}; pass e.g. --level 1.")
    return np.asarray(["-".join(map(str, row)) for row in codes[:, :level]])


def item_words(items: pd.DataFrame) -> list[set[str]]:
    """The distinct non-trivial words of each item's title and text."""
    texts = (items["title"].astype(str) + " " + items.get("text", pd.Series("", index=items.index)).astype(str))
    return [set(WORD.findall(t.lower())) - STOPWORDS for t in texts]


def distinctive(features: Iterable[Iterable[str]], members: np.ndarray, baseline: Counter, n_all: int,
                top: int, weigh_share: bool) -> list[str]:
    """The ``top`` features of the member items with the highest lift over the catalogue (or share x
    log-lift with ``weigh_share``), as ``name xLIFT``."""
    counts = Counter(f for i in members for f in features[i])
    n = len(members)
    scored = []
    for feature, c in counts.items():
        if c < MIN_ITEMS:
            continue
        lift = (c / n) / (baseline[feature] / n_all)
        if lift <= 1:
            continue
        scored.append(((c / n) * np.log(lift) if weigh_share else lift, feature, lift))
    scored.sort(key=lambda s: (-s[0], s[1]))
    return [f"{feature} x{lift:.1f}" for _, feature, lift in scored[:top]]


def code_table(items: pd.DataFrame, codes: np.ndarray, level: int = 1, *, top: int = 3,
               examples: int = 3) -> pd.DataFrame:
    """One row per code of ``level`` (the first ``level`` ID columns before the dedup level): its number of
    items, distinguishing genres, decades and words, median year, example titles (the first items by id)
    and how many of its items collide (share a full ID before dedup with another item)."""
    levels = codes.shape[1] - 1  # the last column is the dedup counter
    if len(codes) != len(items):
        raise StudyInputError(f"The codes cover {len(codes)} items but the catalogue has {len(items)}; load both "
                              "from the same run folder.")
    if not 1 <= level <= levels:
        raise StudyInputError(f"Level {level} is outside this scheme's levels 1..{levels}; pass e.g. --level 1.")
    group = prefixes(codes, level)
    genres = [set(g) for g in items["genres"]]
    decades = [{f"{int(y) // 10 * 10}s"} if pd.notna(y) else set() for y in items["year"]]
    words = item_words(items)
    baselines = [Counter(f for fs in feats for f in fs) for feats in (genres, decades, words)]
    common = {w for w, c in baselines[2].items() if c > MAX_WORD_SHARE * len(items)}
    words = [ws - common for ws in words]
    collided = collided_mask(codes)
    rows = []
    for code in sorted(set(group), key=lambda c: [int(x) for x in c.split("-")]):
        members = np.flatnonzero(group == code)
        rows.append({
            "code": code, "items": len(members),
            "genres": ", ".join(distinctive(genres, members, baselines[0], len(items), top, False)),
            "decades": ", ".join(distinctive(decades, members, baselines[1], len(items), 2, False)),
            "median_year": _median_year(items["year"].iloc[members]),
            "words": ", ".join(distinctive(words, members, baselines[2], len(items), top + 2, True)),
            "examples": " | ".join(items["title"].iloc[members[:examples]].astype(str)),
            "colliding_items": int(collided[members].sum()),
        })
    return pd.DataFrame(rows)


def collided_mask(codes: np.ndarray) -> np.ndarray:
    """True for each item whose ID before the dedup level is shared with another item."""
    _, inverse, counts = np.unique(codes[:, :-1], axis=0, return_inverse=True, return_counts=True)
    return counts[inverse.reshape(-1)] > 1


def collisions(items: pd.DataFrame, codes: np.ndarray, limit: int | None = 20, titles: int = 6) -> pd.DataFrame:
    """The IDs before the dedup level that several items share, largest first: the ID, its number of items
    and their first ``titles`` titles (the dedup level is what tells them apart)."""
    prefix = prefixes(codes, codes.shape[1] - 1)
    collided = np.flatnonzero(collided_mask(codes))
    frame = pd.DataFrame({"id_before_dedup": prefix[collided], "title": items["title"].iloc[collided].astype(str)})
    table = (frame.groupby("id_before_dedup", sort=False)["title"].agg(["size", lambda t: _first(t, titles)])
             .set_axis(["items", "titles"], axis=1).reset_index()
             .sort_values(["items", "id_before_dedup"], ascending=[False, True], ignore_index=True))
    return table if limit is None else table.head(limit)


def _median_year(years: pd.Series) -> int | None:
    known = years.dropna()
    return int(known.median()) if len(known) else None


def _first(titles: pd.Series, n: int) -> str:
    more = len(titles) - n
    return " | ".join(titles.iloc[:n]) + (f" | (+{more} more)" if more > 0 else "")
