"""Search queries per item written offline from the metadata: the seeded template generator.

The paper generated 20 queries per movie with gemini-2.0-flash and split them 10 train / 10 test
per item. Offline we write them from the metadata with templates of several *kinds* (partial or
misspelled titles, genre + era, attributes, plot keywords, vague moods, tags), so that search is
not reduced to copying the title: only a small share of queries may contain the full title.

Every query is written from a ``Constraint`` (genres, years, a runtime band...), and
``n_matching`` counts the catalogue items that fit it. A test case on a query that fits many items
is a guess, so most slots are *narrowed*: the query adds a refinement (all genres, the exact year,
a runtime or rating band, the certificate) until it fits its item alone or nothing is left to add.
A share of slots (``BROAD_SHARE``) keeps the first, broad draw, because people do search that way;
the split sends broad queries to train first, and ``distinct.distinct_test_queries`` then redraws
every test query whose text another item also has.

Each item draws from its own generator, ``rng(seed, "queries", item_id)``; which draw a narrowed
slot keeps depends on the catalogue (``n_matching`` is counted over it), so a sliced catalogue (the
smoke profile) may give an item other queries. Kinds that need an attribute the catalogue lacks
(runtime, rating, certificate, plot, tags) are skipped and named in a log line (``skipped_kinds``).
The wording lives in ``vocabulary``; ``_Meta`` turns one item's metadata into phrases.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import string
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd

from jointsid_utils.config import StudyConfig
from jointsid_utils.errors import StudyInputError
from jointsid_utils.queries.common import (as_list, check_items, check_split_sizes, finish_queries, is_known,
                                           split_labels)
from jointsid_utils.queries.distinct import distinct_test_queries
from jointsid_utils.queries.matching import ANY, Catalogue, Constraint, normalise_query, title_key, words
from jointsid_utils.queries.vocabulary import (CERT_TEMPLATES, CONTEXTS, GENRE_ERA_TEMPLATES, GENRE_HEAD_ORDER,
                                               GENRE_ONLY_TEMPLATES, GENRE_SUFFIXES, GENRE_WORDS, KEYBOARD_ROWS,
                                               MOODS, PARTIAL_TEMPLATES, PLOT_TEMPLATES, RATING_TEMPLATES,
                                               RUNTIME_TEMPLATES, STOPWORDS, TAG_TEMPLATES, TYPO_TEMPLATES,
                                               VAGUE_TEMPLATES, YEAR_SUFFIXES)
from jointsid_utils.reproducibility import rng

log = logging.getLogger(__name__)

# Bump when the templates change, so cached queries.parquet files are rebuilt.
TEMPLATE_VERSION = 2

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
# Share of slots that keep their first, un-narrowed draw: broad queries ("a 90s comedy") are realistic
# training text; the split puts them in train first, so few reach the test cases.
BROAD_SHARE = 0.3
# large-space kinds to fall back on when a small one (e.g. certificate) runs out of new strings
FALLBACK_KINDS = ("genre_era", "vague", "title_typo", "plot", "title_partial")
TEXT_KEYWORD_MAX_DF = 0.02  # plot keywords from an item's text: words in at most 2% of the texts
MAX_GENRES = 3  # a genre phrase longer than "animated children's comedy" reads as a list, not a query


def template_queries(items: pd.DataFrame, cfg: StudyConfig) -> pd.DataFrame:
    """``per_item`` distinct template queries per item, each with its kind, ``n_matching`` and a seeded split."""
    check_items(items)
    check_split_sizes(cfg)
    n, n_train = cfg.queries.per_item, cfg.queries.train_per_item
    kinds, skipped = catalogue_kinds(items)
    if skipped:
        log.info("queries: kinds skipped, the catalogue lacks what they are written from: %s",
                 ", ".join(f"{k} ({v})" for k, v in skipped.items()))
    catalogue = Catalogue(items)
    keywords = plot_keywords(items)
    metas: dict[int, _Meta] = {}
    rows: list[dict[str, Any]] = []
    for item in items.to_dict("records"):
        meta = _Meta(item, keywords.get(int(item["item_id"]), []), kinds)
        metas[meta.item_id] = meta
        gen = rng(cfg.seed, "queries", meta.item_id)
        drawn = _item_queries(meta, catalogue, n, gen)
        splits = split_labels([q.kind for q in drawn], n_train, gen, broad=[q.n_matching > 1 for q in drawn])
        rows += [q.row(meta.item_id, s) for q, s in zip(drawn, splits)]

    def redraw(item_id: int, kind: str, forbidden: set[str], label: Any) -> dict[str, Any] | None:
        """A new narrowed test query for the item, of ``kind`` if one fits it alone, else of a fallback kind."""
        meta = metas[item_id]
        gen = rng(cfg.seed, "queries", item_id, "redraw", label)
        best: _Query | None = None
        for candidate_kind in [kind] + [k for k in _fallback(meta) if k != kind]:
            query = _draw_slot(meta, candidate_kind, catalogue, gen, set(forbidden), broad=False)
            if query is not None and (best is None or query.n_matching < best.n_matching):
                best = query
            if best is not None and best.n_matching <= 1:
                break
        return best.row(item_id, "test") if best is not None else None

    frame, stats = distinct_test_queries(finish_queries(rows), cfg.seed, redraw)
    frame.attrs["query_stats"] = {**stats, "skipped_kinds": skipped}
    return frame


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
    n_matching: int

    def row(self, item_id: int, split: str) -> dict[str, Any]:
        return {"item_id": item_id, "query": self.text, "kind": self.kind, "split": split, "source": "template",
                "n_matching": self.n_matching, "constraint": self.constraint.describe()}


def _item_queries(meta: "_Meta", catalogue: Catalogue, n: int, gen: np.random.Generator) -> list[_Query]:
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


def _fallback(meta: "_Meta") -> list[str]:
    return [k for k in FALLBACK_KINDS if meta.allows(k)]


def _draw_slot(meta: "_Meta", kind: str, catalogue: Catalogue, gen: np.random.Generator, seen: set[str], *,
               broad: bool) -> _Query | None:
    """One new query of ``kind``: the first draw if ``broad``, else refined step by step until it fits one item.

    The query kept is the one that fits the fewest items (the earliest on a tie); its key joins ``seen``.
    """
    steps = [()] if broad else [tuple(r) for r in _prefixes(meta.refinements(kind, gen))]
    best: _Query | None = None
    for refine in steps:
        drawn = _draw_new(lambda g: meta.draw(kind, g, refine), gen, seen, meta)
        if drawn is None:
            continue
        text, constraint = drawn
        n_matching = catalogue.count(constraint)
        if best is None or n_matching < best.n_matching:
            best = _Query(text, kind, constraint, n_matching)
        if n_matching <= 1:
            break
    if best is not None:
        seen.add(normalise_query(best.text))
    return best


def _prefixes(seq: list[str]) -> list[list[str]]:
    return [seq[:i] for i in range(len(seq) + 1)]


def _draw_new(make: Callable[[np.random.Generator], tuple[str, Constraint] | None], gen: np.random.Generator,
              seen: set[str], meta: "_Meta", attempts: int = 40) -> tuple[str, Constraint] | None:
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


def _span(year: int, part: str | None) -> tuple[int, int]:
    """The years an era phrase covers: its decade, or the early (0-3), mid (4-6) or late (7-9) part of it."""
    decade = year // 10 * 10
    return {None: (decade, decade + 9), "early": (decade, decade + 3), "mid": (decade + 4, decade + 6),
            "late": (decade + 7, decade + 9)}[part]


@functools.lru_cache(maxsize=None)
def _slots(template: str) -> frozenset[str]:
    return frozenset(name for _, name, _, _ in string.Formatter().parse(template) if name)


class _Meta:
    """An item's metadata as the phrases the templates need; ``draw`` writes one query of a kind and its constraint."""

    def __init__(self, item: dict, keywords: list[str], kinds: list[str]):
        self.item_id = int(item["item_id"])
        self.kinds = set(kinds)
        self.title = str(item["title"])
        self.main_title = re.sub(r"\s*\(.*\)\s*$", "", self.title).strip() or self.title
        self.year = int(item["year"]) if is_known(item.get("year")) else None
        # any category works as a genre word; MovieLens's placeholder "unknown" says nothing
        self.genres = [str(g) for g in as_list(item.get("genres")) if str(g).strip() and str(g).lower() != "unknown"]
        self.minutes = int(item["runtime_min"]) if is_known(item.get("runtime_min")) else None
        self.imdb = float(item["imdb_rating"]) if is_known(item.get("imdb_rating")) else None
        mpaa = item.get("mpaa")
        self.mpaa = str(mpaa).strip().upper() if is_known(mpaa) and str(mpaa).strip() else None
        self.keywords = keywords
        self.tags = [str(t) for t in as_list(item.get("tags")) if str(t).strip()]
        ws = self.main_title.split()
        self.title_words = ws
        self.content_words = [w for w in ws if w.lower().strip(":,.!?'") not in STOPWORDS] or ws
        self._allowed: dict[str, bool] = {}

    def allows(self, kind: str) -> bool:
        if kind not in self._allowed:
            self._allowed[kind] = self._allows(kind)
        return self._allowed[kind]

    def _allows(self, kind: str) -> bool:
        return kind in self.kinds and {
            "title_partial": len(self.title_words) >= 2,
            "title_typo": len(re.sub(r"[^A-Za-z]", "", self.main_title)) >= 3,
            "genre_era": bool(self.genres) or self.year is not None,
            "vague": any(g in MOODS for g in self.genres),
            "runtime": self.minutes is not None,
            "rating": self.imdb is not None,
            "certificate": self.mpaa is not None,
            "plot": len(self.keywords) >= 2,
            "tag": bool(self.tags),
        }[kind]

    def leaks_title(self, query: str) -> bool:
        """True when the query holds the full title (or the title without its parenthesised alias): redrawn."""
        q = query.lower()
        return self.title.lower() in q or (len(self.main_title) > 3 and self.main_title.lower() in q)

    def refinements(self, kind: str, gen: np.random.Generator) -> list[str]:
        """What a narrowed query of ``kind`` may add, in a seeded order: genres and year first, then attributes."""
        natural = [r for r, ok in (("genres", bool(self.genres)), ("year", self.year is not None),
                                   ("title_words", kind == "title_partial" and self._max_title_words() > 1)) if ok]
        attributes = [r for r, ok in (("runtime", self.minutes is not None and "runtime" in self.kinds),
                                      ("rating", self.imdb is not None and "rating" in self.kinds),
                                      ("certificate", self.mpaa is not None and "certificate" in self.kinds
                                       and kind != "certificate")) if ok]
        return [natural[i] for i in gen.permutation(len(natural))] + \
            [attributes[i] for i in gen.permutation(len(attributes))]

    def draw(self, kind: str, gen: np.random.Generator, refine: tuple[str, ...] = ()) -> tuple[str, Constraint] | None:
        """One raw query of ``kind`` with the refinements in ``refine``, and the constraint it was written from."""
        made = getattr(self, f"_{kind}")(gen, refine)
        if made is None:
            return None
        template, extra, constraint = made
        return self._render(gen, template, extra, constraint, refine, kind)

    # -- shared phrases
    def _template(self, gen: np.random.Generator, templates: tuple[str, ...]) -> str:
        """A template whose slots this item can fill (no era wording without a year, no genre slot without genres)."""
        usable = [t for t in templates
                  if (self.year is not None or not _slots(t) & {"era", "era_long", "decade", "year", "year_phrase"})
                  and (self.genres or not _slots(t) & {"g", "genre"})]
        return _pick(gen, usable or templates)

    def _genre(self, gen: np.random.Generator, every: bool = False,
               said: frozenset[str] = frozenset()) -> tuple[str, frozenset[str]]:
        """A genre phrase ("war drama", "romantic comedy") and the genres it names: one or two, or as many as
        ``MAX_GENRES`` allows (``every``), never one already ``said``."""
        left = [g for g in self.genres if g not in said]
        room = MAX_GENRES - len(said) if every else 1 if len(left) == 1 or gen.random() < 0.55 else 2
        k = min(room, len(left))
        if k <= 0:
            return "", frozenset()
        picked = sorted((left[i] for i in gen.choice(len(left), size=k, replace=False)), key=_head_rank)
        phrases = [_pick(gen, GENRE_WORDS.get(g, (g.lower(),))) for g in picked]
        if len(phrases) > 1 and picked[0] == "Romance":
            phrases[0] = "romantic"
        return " ".join(phrases), frozenset(picked)

    def _era(self, gen: np.random.Generator, long: bool) -> tuple[str, tuple[int, int]]:
        """An era phrase ("90s", "early-90s" / "nineties", "early 1990s") and the years it covers."""
        assert self.year is not None
        decade = self.year // 10 * 10
        short = f"{decade % 100:02d}s" if decade < 2000 else f"{decade}s"
        part = ("early" if self.year % 10 <= 3 else "mid" if self.year % 10 <= 6 else "late")
        if long:
            long_names = {1920: "twenties", 1930: "thirties", 1940: "forties", 1950: "fifties", 1960: "sixties",
                          1970: "seventies", 1980: "eighties", 1990: "nineties"}
            choices = [(f"{decade}s", None), (f"{part} {decade}s", part)] + \
                ([(long_names[decade], None)] if decade in long_names else [])
        else:
            choices = [(short, None), (f"{decade}s", None), (f"{part}-{short}", part), (f"{part} {short}", part)]
        phrase, which = _pick(gen, choices)
        return phrase, _span(self.year, which)

    def _render(self, gen: np.random.Generator, template: str, extra: dict[str, str], constraint: Constraint,
                refine: tuple[str, ...], kind: str) -> tuple[str, Constraint]:
        """Fill the template's shared slots, then add each refinement the slots did not already say."""
        slots, c = _slots(template), constraint
        values: dict[str, str] = {name: "" for name in slots}
        values.update(extra, article="a")
        if slots & {"g", "genre"}:
            phrase, picked = self._genre(gen, every="genres" in refine)
            values.update(g=phrase, genre=phrase)
            c &= Constraint(genres=picked)
        if self.year is not None:
            for name, long in (("era", False), ("decade", False), ("era_long", True)):
                if name in slots:
                    values[name], span = self._era(gen, long)
                    c &= Constraint(years=span)
            if "year" in slots:
                values["year"] = str(self.year)
                c &= Constraint(years=(self.year, self.year))
            if "year_phrase" in slots:
                values["year_phrase"], span = _pick(gen, [
                    (f"from {self.year}", (self.year, self.year)), (f"released in {self.year}", (self.year, self.year)),
                    (f"({self.year})", (self.year, self.year)), (f"around {self.year}", (self.year - 1, self.year + 1))])
                c &= Constraint(years=span)
        text = re.sub(r"\s+", " ", template.format(**values))
        text = re.sub(r"\b([Aa]) (?=[aeioAEIO8])", r"\1n ", text)  # "a action" -> "an action", "a 80s" -> "an 80s"
        suffixes = []
        for step in refine:
            if step == "genres" and len(c.genres) < min(MAX_GENRES, len(self.genres)):
                phrase, picked = self._genre(gen, every=True, said=c.genres)
                suffixes.append(_pick(gen, GENRE_SUFFIXES).format(g=phrase))
                c &= Constraint(genres=picked)
            elif step == "year" and self.year is not None and c.years != (self.year, self.year):
                suffixes.append(_pick(gen, YEAR_SUFFIXES).format(y=self.year))
                c &= Constraint(years=(self.year, self.year))
            elif step in ("runtime", "rating", "certificate") and step != kind:
                phrase, part = getattr(self, f"_{step}_phrase")(gen, narrow=True)
                suffixes.append(phrase)
                c &= part
        if suffixes and text.endswith("?"):  # "any suggestions for a cartoon?, from 1995" -> "..., from 1995?"
            return ", ".join([text[:-1]] + suffixes) + "?", c
        return ", ".join([text] + suffixes), c

    def _runtime_phrase(self, gen: np.random.Generator, narrow: bool) -> tuple[str, Constraint]:
        """A runtime post-modifier ("under 90 minutes") and the band of minutes it says, read literally."""
        assert self.minutes is not None
        m, m5, m10, inf = self.minutes, self.minutes // 5 * 5, self.minutes // 10 * 10, math.inf
        if narrow:
            options = [(f"about {m5} minutes long", (m5, m5 + 5)), (f"around {m5} minutes", (m5, m5 + 5)),
                       (f"roughly {m5} min", (m5, m5 + 5))]
        elif m < 90:
            options = [("under 90 minutes", (0, 90)), ("under an hour and a half", (0, 90)),
                       (f"about {m5} minutes long", (m5, m5 + 5)), ("that isn't too long", (0, 90)),
                       ("less than 90 min", (0, 90))]
        elif m <= 125:
            options = [("around two hours long", (90, 126)), (f"about {m10} minutes", (m10, m10 + 10)),
                       ("of normal length", (90, 126)),
                       ("under two hours", (0, 120)) if m < 120 else ("about 2 hours long", (90, 126))]
        elif m <= 150:
            options = [("over two hours", (121, inf)), ("over 2 hours long", (121, inf)),
                       (f"about {m10} minutes long", (m10, m10 + 10)), ("that runs more than two hours", (121, inf))]
        else:
            hours = math.ceil(m / 60)
            options = [("over 2.5 hours long", (151, inf)), ("over two and a half hours", (151, inf)),
                       ("that is a real long epic", (151, inf)), (f"nearly {hours} hours long", (hours * 60 - 60, hours * 60)),
                       ("with a 3 hour runtime", (170, inf)) if m >= 170 else ("longer than 150 minutes", (151, inf))]
        phrase, band = _pick(gen, options)
        return phrase, Constraint(runtime=band)

    def _rating_phrase(self, gen: np.random.Generator, narrow: bool) -> tuple[str, Constraint]:
        """A rating phrase ("highly rated", "imdb 6-ish") and the IMDb band it says."""
        assert self.imdb is not None
        r, top = self.imdb, 10.01
        if narrow:
            exact = round(r, 1)
            options = [(f"imdb {exact:.1f}", (exact - 0.05, exact + 0.05)),
                       (f"rated {exact:.1f} on imdb", (exact - 0.05, exact + 0.05))]
        elif r >= 8.0:
            options = [("highly rated", (7.0, top)), ("critically acclaimed", (8.0, top)),
                       ("top rated on imdb", (8.0, top)), ("imdb 8+", (8.0, top)), ("a must-see", (8.0, top))]
        elif r >= 7.0:
            options = [("highly rated", (7.0, top)), ("well reviewed", (7.0, top)),
                       ("rated above 7 on imdb", (7.0, top)), ("good reviews", (7.0, top))]
        elif r >= 5.5:
            options = [(f"imdb {int(r)}-ish", (int(r), int(r) + 1)), ("decently rated", (5.5, 7.0)),
                       ("fairly well rated", (5.5, 7.0))]
        else:
            options = [("so bad it's good", (0.0, 5.5)), ("low rated", (0.0, 5.5)), ("panned by critics", (0.0, 5.5)),
                       (f"imdb under {math.floor(r) + 1}", (0.0, math.floor(r) + 1))]
        phrase, band = _pick(gen, options)
        return phrase, Constraint(rating=band)

    def _certificate_phrase(self, gen: np.random.Generator, narrow: bool = False) -> tuple[str, Constraint]:
        """A certificate phrase ("PG-13 rated", "rated R"); every wording names exactly one certificate."""
        assert self.mpaa is not None
        c = self.mpaa
        options = {"G": ["G-rated", "G rated family", "all ages"], "PG": ["PG family", "PG", "PG rated family"],
                   "PG-13": ["PG-13", "PG-13 rated", "teen-friendly PG-13"], "R": ["R-rated", "R rated", "rated R"],
                   "NC-17": ["NC-17", "NC-17 rated"]}.get(c, [f"{c}-rated", f"rated {c}"])
        return _pick(gen, options), Constraint(certificate=c)

    # -- kinds: each returns (template, its kind-specific slot values, the constraint those values say)
    def _title_partial(self, gen: np.random.Generator, refine: tuple[str, ...]):
        if len(self.title_words) < 2:
            return None
        ws = self.content_words
        # fewer words than the title: never the whole title, usually a few distinctive words
        max_k = self._max_title_words()
        k = max_k if "title_words" in refine else int(gen.integers(1, max_k + 1))
        start = int(gen.integers(0, len(ws) - k + 1))
        chunk = " ".join(ws[start:start + k]).strip(":,.!?")
        return self._template(gen, PARTIAL_TEMPLATES), {"w": chunk}, Constraint(title_words=frozenset(words(chunk)))

    def _max_title_words(self) -> int:
        return max(1, min(len(self.content_words), len(self.title_words) - 1))

    def _title_typo(self, gen: np.random.Generator, refine: tuple[str, ...]):
        base = self.main_title
        if base.lower().startswith(("the ", "a ", "an ")) and gen.random() < 0.5:
            base = base.split(" ", 1)[1]
        typo = base.lower() if gen.random() < 0.7 else base
        for _ in range(10):  # at least one real change (doubling a letter can be undone by nothing else)
            for _ in range(1 + int(len(base) > 8 and gen.random() < 0.4)):
                typo = _typo(typo, gen)
            if typo.lower() != base.lower():
                break
        # a misspelled title still names every item of that title (remakes share it)
        return self._template(gen, TYPO_TEMPLATES), {"t": typo}, Constraint(title=title_key(self.title))

    def _genre_era(self, gen: np.random.Generator, refine: tuple[str, ...]):
        if self.year is None:
            return (self._template(gen, GENRE_ONLY_TEMPLATES), {}, ANY) if self.genres else None
        if not self.genres:
            return _pick(gen, ["{era} movie", "film from the {era_long}", "{article} {era} film",
                               "movies {year_phrase}"]), {}, ANY
        return self._template(gen, GENRE_ERA_TEMPLATES), {}, ANY

    def _vague(self, gen: np.random.Generator, refine: tuple[str, ...]):
        moody = [g for g in self.genres if g in MOODS]
        if not moody:
            return None
        genre = _pick(gen, moody)  # one genre's mood: vague on purpose
        return (self._template(gen, VAGUE_TEMPLATES), {"m": _pick(gen, MOODS[genre]), "c": _pick(gen, CONTEXTS)},
                Constraint(genres=frozenset([genre])))

    def _runtime(self, gen: np.random.Generator, refine: tuple[str, ...]):
        if self.minutes is None:
            return None
        phrase, c = self._runtime_phrase(gen, narrow="runtime" in refine)
        return self._template(gen, RUNTIME_TEMPLATES), {"rt": phrase}, c

    def _rating(self, gen: np.random.Generator, refine: tuple[str, ...]):
        if self.imdb is None:
            return None
        phrase, c = self._rating_phrase(gen, narrow="rating" in refine)
        return self._template(gen, RATING_TEMPLATES), {"rp": phrase}, c

    def _certificate(self, gen: np.random.Generator, refine: tuple[str, ...]):
        if self.mpaa is None:
            return None
        phrase, c = self._certificate_phrase(gen)
        return self._template(gen, CERT_TEMPLATES), {"cp": phrase}, c

    def _plot(self, gen: np.random.Generator, refine: tuple[str, ...]):
        if len(self.keywords) < 2:
            return None
        # salient words first: draw from the top few more often
        p = np.linspace(2.0, 1.0, len(self.keywords))
        k = min(3, len(self.keywords))
        a, b, *rest = gen.choice(self.keywords, size=k, replace=False, p=p / p.sum())
        picked = {"a": str(a), "b": str(b), "c": str(rest[0] if rest else b)}
        template = self._template(gen, PLOT_TEMPLATES)
        said = frozenset(w for name, word in picked.items() if name in _slots(template) for w in words(word))
        return template, picked, Constraint(text_words=said)

    def _tag(self, gen: np.random.Generator, refine: tuple[str, ...]):
        if not self.tags:
            return None
        a, b = _pick(gen, self.tags), _pick(gen, self.tags)
        picked = {"a": a, "b": b if b != a else ""}
        template = self._template(gen, TAG_TEMPLATES)
        said = frozenset(tag for name, tag in picked.items() if tag and name in _slots(template))
        return template, picked, Constraint(tags=said)


# ---------------------------------------------------------------------------- helpers


def _typo(text: str, gen: np.random.Generator) -> str:
    """One character-level typo: drop, swap neighbours, double, or hit a neighbouring key."""
    letters = [i for i, ch in enumerate(text) if ch.isalpha() and i > 0]
    if len(letters) < 2:
        return text
    i = int(gen.choice(letters))
    op = gen.integers(4)
    if op == 0:
        return text[:i] + text[i + 1:]
    if op == 1 and i + 1 < len(text) and text[i + 1].isalpha() and text[i + 1] != text[i]:
        return text[:i] + text[i + 1] + text[i] + text[i + 2:]
    if op == 2:
        return text[:i] + text[i] + text[i:]
    row = next((r for r in KEYBOARD_ROWS if text[i].lower() in r), None)
    if row is None:
        return text[:i] + text[i + 1:]
    j = row.index(text[i].lower())
    neighbours = [row[x] for x in (j - 1, j + 1) if 0 <= x < len(row)]
    return text[:i] + _pick(gen, neighbours) + text[i + 1:]


def _pick(gen: np.random.Generator, options: Any) -> Any:
    options = list(options)
    return options[int(gen.integers(len(options)))]


def _head_rank(genre: str) -> int:
    """Where a genre goes in a two-genre phrase: later is the head noun; unlisted categories come first."""
    return GENRE_HEAD_ORDER.index(genre) if genre in GENRE_HEAD_ORDER else -1
