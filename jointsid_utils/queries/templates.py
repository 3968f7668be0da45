"""Search queries per item written offline from the metadata: the seeded template generator.

The paper generated 20 queries per movie with gemini-2.0-flash and kept 10 test queries per item;
we split them 9 train / 1 validation / 10 test (``splits``). Offline we write them from the metadata
with templates of several *kinds* (partial or misspelled titles, genre + era, attributes, plot
keywords, vague moods, tags), so that search is not reduced to copying the title: only a small share
of queries may contain the full title.

Every query is written from a ``Constraint`` (genres, years, a runtime band...), and
``n_matching_min`` / ``n_matching_max`` count the catalogue items that surely / possibly fit it. A
test case on a query that fits many items is a guess, so most slots are *narrowed*: the query adds a
refinement (all genres, the exact year, a runtime or rating band, the certificate) until no other item
may fit it (``n_matching_max == 1``) or nothing is left to add; where that cannot be reached, the draw
that surely fits the fewest items is kept. A share of slots (``BROAD_SHARE``) keeps the first, broad
draw, because people do search that way. ``distinct.distinct_pool`` then redraws, with the same kind
and breadth, every query whose text another query of the pool also has, and ``splits`` gives every
split the same mix of kinds and breadths.

Each item draws from its own generator, ``rng(seed, "queries", item_id)``; which draw a narrowed
slot keeps depends on the catalogue (the counts are over it), so a sliced catalogue (the
smoke profile) may give an item other queries. Kinds that need an attribute the catalogue lacks
(runtime, rating, certificate, plot, tags) are skipped and named in a log line (``skipped_kinds``).
The wording lives in ``vocabulary``; ``item_meta.ItemMeta`` turns one item's metadata into phrases.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd

from jointsid_utils.config import StudyConfig
from jointsid_utils.errors import StudyInputError
from jointsid_utils.queries.common import as_list, check_items, check_split_sizes, finish_queries, is_known
from jointsid_utils.queries.distinct import distinct_pool
from jointsid_utils.queries.item_meta import ItemMeta
from jointsid_utils.queries.matching import Catalogue, Constraint, normalise_query, words
from jointsid_utils.queries.splits import split_pool
from jointsid_utils.queries.vocabulary import GENRE_WORDS, STOPWORDS
from jointsid_utils.runtime.reproducibility import rng

log = logging.getLogger(__name__)


# kind -> relative weight in an item's mix (renormalised over the kinds the item's metadata allows)
KIND_WEIGHTS: dict[str, float] = {
    "title_partial": 3.0,   # some title words, not all, plus a cue
    "title_typo": 2.0,      # the title with character-level typos, plus a cue
    "genre_era": 3.0,       # "90s sci-fi thriller"
    "vague": 3.0,           # "something light and funny for a rainy afternoon"
    "runtime": 1.5,         # only where runtime_min is known
    "rating": 1.5,          # only where imdb_rating is known
    "certificate": 1.0,     # only where mpaa is known
    "plot": 4.0,            # only where a plot is known: salient tf-idf words of the plot
    "tag": 2.0,             # only where tags exist
}
KINDS = tuple(KIND_WEIGHTS)
# kind -> the item columns it is written from (any one will do); a catalogue without them skips the kind.
# The other kinds need only title, year and genres, which every catalogue has.
KIND_NEEDS: dict[str, tuple[str, ...]] = {"runtime": ("runtime_min",), "rating": ("imdb_rating",),
                                          "certificate": ("mpaa",), "plot": ("plot", "text"), "tag": ("tags",)}
# Share of slots that keep their first, un-narrowed draw: broad queries ("a 90s comedy") are realistic;
# the split gives train, validation and test the same share of them per kind.
BROAD_SHARE = 0.3
# large-space kinds to fall back on when a small one (e.g. certificate) runs out of new strings
FALLBACK_KINDS = ("genre_era", "vague", "title_typo", "plot", "title_partial")
REDRAW_TRIES = 3  # draws of the same kind a redraw tries for one of the same breadth
TEXT_KEYWORD_MAX_DF = 0.02  # plot keywords from an item's text: words in at most 2% of the texts


def template_queries(items: pd.DataFrame, cfg: StudyConfig) -> pd.DataFrame:
    """``per_item`` distinct template queries per item, each with its kind, ``n_matching_min/max`` and a split."""
    check_items(items)
    check_split_sizes(cfg)
    kinds, skipped = catalogue_kinds(items)
    if skipped:
        log.info("queries: kinds skipped, the catalogue lacks what they are written from: %s",
                 ", ".join(f"{k} ({v})" for k, v in skipped.items()))
    catalogue = Catalogue(items)
    keywords = plot_keywords(items)
    metas: dict[int, ItemMeta] = {}
    rows: list[dict[str, Any]] = []
    for item in items.to_dict("records"):
        meta = ItemMeta(item, keywords.get(int(item["item_id"]), []), kinds)
        metas[meta.item_id] = meta
        drawn = _item_queries(meta, catalogue, cfg.queries.per_item, rng(cfg.seed, "queries", meta.item_id))
        rows += [q.row(meta.item_id) for q in drawn]

    def redraw(item_id: int, kind: str, broad: bool | None, forbidden: set[str], label: Any) -> dict[str, Any] | None:
        gen = rng(cfg.seed, "queries", item_id, "redraw", label)
        query = _redraw(metas[item_id], kind, bool(broad), catalogue, gen, forbidden)
        return query.row(item_id) if query is not None else None

    pool, stats = distinct_pool(finish_queries(rows), cfg.seed, redraw)
    frame = split_pool(pool, cfg)
    frame.attrs["query_stats"] = {**stats, "skipped_kinds": skipped}
    return frame


def _redraw(meta: "ItemMeta", kind: str, broad: bool, catalogue: Catalogue, gen: np.random.Generator,
            forbidden: set[str]) -> "_Query | None":
    """A new query for a slot whose text another query took: of ``kind`` and the same breadth if one can be
    written, else of ``kind`` at all, else the narrowest of a fallback kind."""
    first: _Query | None = None
    for _ in range(REDRAW_TRIES):
        query = _draw_slot(meta, kind, catalogue, gen, set(forbidden), broad=broad)
        if query is None:
            break
        if query.broad == broad:
            return query
        first = first or query
    if first is not None:
        return first
    best: _Query | None = None
    for candidate_kind in [k for k in _fallback(meta) if k != kind]:
        query = _draw_slot(meta, candidate_kind, catalogue, gen, set(forbidden), broad=False)
        if query is not None and (best is None or query.rank < best.rank):
            best = query
        if best is not None and not best.broad:
            break
    return best


def catalogue_kinds(items: pd.DataFrame) -> tuple[list[str], dict[str, str]]:
    """The kinds this catalogue can give, and for each skipped kind the reason in a few words."""
    skipped: dict[str, str] = {}
    for kind, columns in KIND_NEEDS.items():
        present = [c for c in columns if c in items.columns]
        if not present:
            skipped[kind] = f"no {' or '.join(columns)} column"
        elif not any(_has_value(v) for c in present for v in items[c]):
            skipped[kind] = f"no known {' or '.join(present)} value"
    return [k for k in KINDS if k not in skipped], skipped


def plot_keywords(items: pd.DataFrame, top: int = 10) -> dict[int, list[str]]:
    """The ``top`` most salient plot words per item by tf-idf over the catalogue's plots (title words excluded).

    A catalogue without a ``plot`` column takes the words of its ``text`` instead: genre names and words in
    more than ``TEXT_KEYWORD_MAX_DF`` of the texts excluded, so a keyword names few items.
    """
    column = "plot" if "plot" in items.columns else "text" if "text" in items.columns else None
    if column is None:
        return {}
    genre_words = {w for g in GENRE_WORDS for w in words(g)} | {w for ws in GENRE_WORDS.values() for p in ws
                                                                  for w in words(p)}
    docs: dict[int, list[str]] = {}
    for item_id, plot, title, genres in zip(items["item_id"], items[column], items["title"], items["genres"]):
        if is_known(plot) and str(plot).strip():
            excluded = set(words(str(title)))
            if column == "text":
                excluded |= genre_words | {w for g in as_list(genres) for w in words(str(g))}
            docs[int(item_id)] = [w for w in words(str(plot)) if len(w) >= 4 and w not in STOPWORDS
                                  and w not in excluded and not w.isdigit() and not w.endswith("ly")]
    df = Counter(w for ws in docs.values() for w in set(ws))
    n_docs = len(docs)
    if column == "text":  # a metadata text repeats its field names ("minutes", "rated"): keep only rare words
        docs = {i: [w for w in ws if df[w] <= max(2, TEXT_KEYWORD_MAX_DF * n_docs)] for i, ws in docs.items()}
    out: dict[int, list[str]] = {}
    for item_id, ws in docs.items():
        tf = Counter(ws)
        # smoothed idf; ties broken by first occurrence so the choice is deterministic
        first = {w: i for i, w in reversed(list(enumerate(ws)))}
        score = {w: c * math.log((1 + n_docs) / (1 + df[w])) + 1e-9 * c for w, c in tf.items()}
        out[item_id] = sorted(score, key=lambda w: (-score[w], first[w]))[:top]
    return out


# ---------------------------------------------------------------------------- one item


@dataclass(frozen=True)
class _Query:
    text: str
    kind: str
    constraint: Constraint
    n_min: int
    n_max: int

    @property
    def broad(self) -> bool:
        """Another item may fit it."""
        return self.n_max > 1

    @property
    def rank(self) -> tuple[bool, int, int]:
        """Narrower first: a known-item query, then the fewest items that surely fit, then that may."""
        return self.broad, self.n_min, self.n_max

    def row(self, item_id: int) -> dict[str, Any]:
        """A pool row; ``splits`` sets the split."""
        return {"item_id": item_id, "query": self.text, "kind": self.kind, "split": "", "source": "template",
                "n_matching_min": self.n_min, "n_matching_max": self.n_max,
                "constraint": self.constraint.describe()}


def _item_queries(meta: "ItemMeta", catalogue: Catalogue, n: int, gen: np.random.Generator) -> list[_Query]:
    available = [k for k in KINDS if meta.allows(k)]
    quota = _allocate(n, {k: KIND_WEIGHTS[k] for k in available})
    plan = [k for k in available for _ in range(quota[k])]
    seen: set[str] = set()
    out: list[_Query] = []
    for kind in plan:
        broad = bool(gen.random() < BROAD_SHARE)
        for candidate_kind in [kind] + [k for k in _fallback(meta) if k != kind]:
            query = _draw_slot(meta, candidate_kind, catalogue, gen, seen, broad=broad)
            if query is not None:
                out.append(query)
                break
        else:
            raise StudyInputError(f"Item {meta.item_id} ({meta.title!r}) has too little metadata for {n} distinct "
                                  "queries; lower -p queries.per_item or add genres/year to the item.")
    return out


def _fallback(meta: "ItemMeta") -> list[str]:
    return [k for k in FALLBACK_KINDS if meta.allows(k)]


def _draw_slot(meta: "ItemMeta", kind: str, catalogue: Catalogue, gen: np.random.Generator, seen: set[str], *,
               broad: bool) -> _Query | None:
    """One new query of ``kind``: the first draw if ``broad``, else refined step by step until no other item
    may fit it.

    The query kept is the narrowest (``_Query.rank``, the earliest on a tie); its key joins ``seen``.
    """
    steps = [()] if broad else [tuple(r) for r in _prefixes(meta.refinements(kind, gen))]
    best: _Query | None = None
    for refine in steps:
        drawn = _draw_new(lambda g: meta.draw(kind, g, refine), gen, seen, meta)
        if drawn is None:
            continue
        text, constraint = drawn
        query = _Query(text, kind, constraint, catalogue.count(constraint), catalogue.count_max(constraint))
        if best is None or query.rank < best.rank:
            best = query
        if not best.broad:
            break
    if best is not None:
        seen.add(normalise_query(best.text))
    return best


def _prefixes(seq: list[str]) -> list[list[str]]:
    return [seq[:i] for i in range(len(seq) + 1)]


def _draw_new(make: Callable[[np.random.Generator], tuple[str, Constraint] | None], gen: np.random.Generator,
              seen: set[str], meta: "ItemMeta", attempts: int = 40) -> tuple[str, Constraint] | None:
    for _ in range(attempts):
        raw = make(gen)
        if raw is None:
            return None
        query = _surface(raw[0], gen)
        key = normalise_query(query)
        if key and key not in seen and not meta.leaks_title(query):
            return query, raw[1]
    return None


def _allocate(n: int, weights: dict[str, float]) -> dict[str, int]:
    """Largest-remainder allocation of ``n`` slots, at least one per kind while slots last."""
    total = sum(weights.values())
    exact = {k: n * w / total for k, w in weights.items()}
    quota = {k: max(1, int(v)) for k, v in exact.items()}
    while sum(quota.values()) > n:  # only when there are more kinds than slots
        quota[min(quota, key=lambda k: (exact[k], k))] -= 1
        quota = {k: v for k, v in quota.items() if v > 0}
    for k in sorted(exact, key=lambda k: (-(exact[k] - int(exact[k])), k)):
        if sum(quota.values()) >= n:
            break
        quota[k] = quota.get(k, 0) + 1
    while sum(quota.values()) < n:
        quota[max(exact, key=lambda k: exact[k])] += 1
    return quota


def _surface(text: str, gen: np.random.Generator) -> str:
    """Realistic casing and punctuation: mostly lowercase, some sentence case, some trailing ?/."""
    text = re.sub(r"\s+", " ", text).strip(" ,")
    text = re.sub(r"\s+([,?.])", r"\1", text)
    r = gen.random()
    if r < 0.55:
        text = text.lower()
    elif r < 0.9:
        text = text[:1].upper() + text[1:]
    if not text.endswith(("?", ".", "...")):
        p = gen.random()
        text += "?" if p < 0.12 else "." if p < 0.2 else ""
    return text


def _has_value(value: Any) -> bool:
    if isinstance(value, (list, tuple, np.ndarray)):
        return len(value) > 0
    return is_known(value) and str(value).strip() != ""
