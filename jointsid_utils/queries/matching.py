"""How many catalogue items a query's constraints fit: ``n_matching_min`` and ``n_matching_max``, the
measure of a query's ambiguity.

A template query is written from constraints (genres, a span of years, a runtime or rating band, a
certificate, title words, plot keywords, tags). ``Constraint`` holds them and ``Catalogue`` says which
items satisfy all of them, with the same reading the wording has: "a 90s comedy" fits every comedy of
1990-1999, "sabrnia movie" fits every item titled Sabrina. Metadata has gaps (most items have no
certificate or plot), so the count is an interval: ``Catalogue.count`` counts the items that surely fit
(an unknown attribute does not match) and ``Catalogue.count_max`` those that may fit (an unknown attribute
may match). A query with ``n_matching_max == 1`` singles out its item; a larger one is a broad query, and
a search test case on it is partly a guess among equally right answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from jointsid_utils.queries.common import as_list, is_known

ARTICLES = ("the", "a", "an")
# an item with none of these known is a placeholder, not an item a description could be about
ATTRIBUTES_OF_A_PLACEHOLDER = ("genre", "year", "runtime_min", "imdb_rating")


def words(text: str) -> list[str]:
    """Lower-case word tokens; the one tokenizer for titles, plots and the words a query names."""
    return re.findall(r"[a-z][a-z'-]*[a-z]|[a-z0-9]+", text.lower())


def normalise_query(text: str) -> str:
    """A query's text as compared for collisions: lower-case, punctuation stripped, whitespace collapsed."""
    return re.sub(r"[^a-z0-9]+", " ", str(text).lower()).strip()


def title_key(title: str) -> str:
    """A title as a typo query names it: its words, without the parenthesised alias or a leading article."""
    main = re.sub(r"\s*\(.*\)\s*$", "", title).strip() or title
    tokens = words(main)
    if len(tokens) > 1 and tokens[0] in ARTICLES:
        tokens = tokens[1:]
    return " ".join(tokens)


@dataclass(frozen=True)
class Constraint:
    """What a query says about its item; every field that is set must hold (an empty one fits every item)."""

    genres: frozenset[str] = frozenset()  # the item has all of them
    years: tuple[int, int] | None = None  # released in [first, last]
    runtime: tuple[float, float] | None = None  # minutes in [low, high)
    rating: tuple[float, float] | None = None  # IMDb rating in [low, high)
    certificate: str | None = None  # the MPAA certificate
    title_words: frozenset[str] = frozenset()  # all of them are words of the title
    title: str | None = None  # ``title_key`` of the title (a misspelled title still names this one)
    text_words: frozenset[str] = frozenset()  # all of them are words of the item's text or plot
    tags: frozenset[str] = frozenset()  # the item carries all of them

    def __and__(self, other: "Constraint") -> "Constraint":
        """Both constraints at once (a refinement narrows the span or band it repeats)."""
        def both(a: Any, b: Any) -> Any:
            if a is None or b is None:
                return a if b is None else b
            return (max(a[0], b[0]), min(a[1], b[1]))
        return Constraint(genres=self.genres | other.genres, years=both(self.years, other.years),
                          runtime=both(self.runtime, other.runtime), rating=both(self.rating, other.rating),
                          certificate=other.certificate or self.certificate,
                          title_words=self.title_words | other.title_words, title=other.title or self.title,
                          text_words=self.text_words | other.text_words, tags=self.tags | other.tags)

    def describe(self) -> str:
        """A short readable form, e.g. ``genres=Comedy+Drama; years=1990..1999``; ``parse_constraint`` reads it back."""
        parts = []
        for name in ("genres", "years", "runtime", "rating", "certificate", "title_words", "title", "text_words",
                     "tags"):
            value = getattr(self, name)
            if isinstance(value, frozenset) and value:
                parts.append(f"{name}={'+'.join(sorted(value))}")
            elif isinstance(value, tuple):
                parts.append(f"{name}={value[0]:g}..{value[1]:g}")
            elif isinstance(value, str):
                parts.append(f"{name}={value}")
        return "; ".join(parts) or "any item"


ANY = Constraint()


def parse_constraint(text: str) -> Constraint:
    """The ``Constraint`` that ``Constraint.describe`` wrote (so a saved query's counts can be recounted)."""
    fields: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        if part == "any item":
            continue
        name, _, value = part.partition("=")
        if name in ("years", "runtime", "rating"):
            low, high = (float(v) for v in value.split(".."))
            fields[name] = (int(low), int(high)) if name == "years" else (low, high)
        elif name in ("certificate", "title"):
            fields[name] = value
        else:
            fields[name] = frozenset(value.split("+"))
    return Constraint(**fields)


@dataclass
class Catalogue:
    """The items table indexed for ``count``: item-id sets per genre, year, certificate, word, tag and title,
    and per attribute the items where it is unknown (``count_max`` lets them match)."""

    items: pd.DataFrame
    _sets: dict[tuple, frozenset[int]] = field(default_factory=dict, repr=False)
    _counts: dict[Constraint, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        ids = self.items["item_id"].astype("int64").to_numpy()
        self.all_ids = frozenset(int(i) for i in ids)
        self._ids = ids
        index: dict[tuple, set[int]] = {}

        def add(key: tuple, item_id: int) -> None:
            index.setdefault(key, set()).add(item_id)

        columns = set(self.items.columns)
        for row in self.items.to_dict("records"):
            item_id = int(row["item_id"])
            for g in as_list(row.get("genres")):
                add(("genre", str(g)), item_id)
            if is_known(row.get("year")):
                add(("year", int(row["year"])), item_id)
            mpaa = row.get("mpaa")
            if is_known(mpaa) and str(mpaa).strip():
                add(("certificate", str(mpaa).strip().upper()), item_id)
            title = str(row["title"])
            for w in words(title):
                add(("title_word", w), item_id)
            add(("title", title_key(title)), item_id)
            text = " ".join(str(row[c]) for c in ("text", "plot") if c in columns and is_known(row[c]))
            for w in set(words(text)) | set(words(title)):
                add(("text_word", w), item_id)
            for t in as_list(row.get("tags")):
                add(("tag", str(t).strip().lower()), item_id)
        self._sets = {k: frozenset(v) for k, v in index.items()}
        self._numbers = {c: pd.to_numeric(self.items[c], errors="coerce").to_numpy(dtype="float64")
                         if c in columns else np.full(len(ids), np.nan) for c in ("runtime_min", "imdb_rating")}
        self._unknown = self._unknown_sets(columns)
        self._maxima: dict[Constraint, int] = {}

    def _unknown_sets(self, columns: set[str]) -> dict[str, frozenset[int]]:
        """Per constrained attribute, the items whose value is missing: they may or may not fit.

        Plot words and tags count as unknown only for items without them in a catalogue that has the column;
        without the column the item text is all a query's words were drawn from, and it is known. A
        placeholder item with no attribute known at all (MovieLens's "unknown") is left out: it would make
        every descriptive query broad while no query describes it.
        """
        def where(flags: Any) -> frozenset[int]:
            return frozenset(int(i) for i, f in zip(self._ids, flags) if f)

        def blank(value: Any) -> bool:
            return not is_known(value) or not str(value).strip()

        genres = [[g for g in as_list(v) if str(g).strip() and str(g).lower() != "unknown"]
                  for v in self.items["genres"]]
        unknown = {"genre": where(not g for g in genres),
                   "year": where(not is_known(v) for v in self.items["year"]),
                   "certificate": where(blank(v) for v in self.items["mpaa"]) if "mpaa" in columns else self.all_ids,
                   "runtime_min": where(np.isnan(self._numbers["runtime_min"])),
                   "imdb_rating": where(np.isnan(self._numbers["imdb_rating"])),
                   "text_word": where(blank(v) for v in self.items["plot"]) if "plot" in columns else frozenset(),
                   "tag": where(not as_list(v) for v in self.items["tags"]) if "tags" in columns else frozenset()}
        placeholders = frozenset.intersection(*(v for k, v in unknown.items() if k in ATTRIBUTES_OF_A_PLACEHOLDER))
        return {k: v - placeholders for k, v in unknown.items()}

    def matches(self, c: Constraint, *, maybe: bool = False) -> frozenset[int]:
        """The ids of the items that surely satisfy ``c``; with ``maybe``, also those whose unknown
        attributes might."""
        def get(key: tuple, attribute: str | None = None) -> frozenset[int]:
            return self._maybe(key, attribute) if maybe and attribute else self._sets.get(key, frozenset())

        sets = [get(("genre", g), "genre") for g in c.genres]
        sets += [get(("title_word", w)) for w in c.title_words]
        sets += [get(("text_word", w), "text_word") for w in c.text_words]
        sets += [get(("tag", t.lower()), "tag") for t in c.tags]
        if c.title is not None:
            sets.append(get(("title", c.title)))
        if c.certificate is not None:
            sets.append(get(("certificate", c.certificate.upper()), "certificate"))
        if c.years is not None:
            self._span(c.years)
            sets.append(get(("span", c.years), "year"))
        for column, band in (("runtime_min", c.runtime), ("imdb_rating", c.rating)):
            if band is not None:
                self._band(column, band)
                sets.append(get(("band", column, band), column))
        if not sets:
            return self.all_ids
        sets.sort(key=len)
        out = set(sets[0])
        for s in sets[1:]:
            out &= s
            if not out:
                break
        return frozenset(out)

    def count(self, c: Constraint) -> int:
        """``n_matching_min``: ``len(matches(c))``, memoised: templates ask for the same few constraints many times."""
        if c not in self._counts:
            self._counts[c] = len(self.matches(c))
        return self._counts[c]

    def count_max(self, c: Constraint) -> int:
        """``n_matching_max``: the items that may satisfy ``c`` when an unknown attribute is allowed to match."""
        if c not in self._maxima:
            self._maxima[c] = len(self.matches(c, maybe=True))
        return self._maxima[c]

    def _maybe(self, key: tuple, attribute: str) -> frozenset[int]:
        """The items that surely match ``key`` or whose ``attribute`` is unknown, memoised."""
        memo = ("maybe",) + key
        if memo not in self._sets:
            self._sets[memo] = self._sets.get(key, frozenset()) | self._unknown[attribute]
        return self._sets[memo]

    def _span(self, years: tuple[int, int]) -> frozenset[int]:
        key = ("span", years)
        if key not in self._sets:
            self._sets[key] = frozenset().union(*[self._sets.get(("year", y), frozenset())
                                                  for y in range(years[0], years[1] + 1)])
        return self._sets[key]

    def _band(self, column: str, band: tuple[float, float]) -> frozenset[int]:
        key = ("band", column, band)
        if key not in self._sets:
            values = self._numbers[column]
            with np.errstate(invalid="ignore"):
                hit = (values >= band[0]) & (values < band[1])
            self._sets[key] = frozenset(int(i) for i in self._ids[hit])
        return self._sets[key]


def matching_item_sets(queries: pd.DataFrame, items: pd.DataFrame) -> pd.Series:
    """Per query_id, the sorted int64 ids of the items that surely fit the query's saved ``constraint``.

    The relevant set of a broad query for set-relevance recall: the query's own item is always in it, and
    a query without a constraint (an LLM query, whose fit is unknown) has only its own item.
    """
    catalogue = Catalogue(items)
    memo: dict[str, frozenset[int]] = {}
    out = []
    for item_id, text in zip(queries["item_id"].astype("int64"), queries["constraint"].fillna("").astype(str)):
        if text.strip() in ("", ANY.describe()):
            fits: frozenset[int] = frozenset()
        else:
            if text not in memo:
                memo[text] = catalogue.matches(parse_constraint(text))
            fits = memo[text]
        out.append(np.array(sorted(fits | {int(item_id)}), dtype="int64"))
    return pd.Series(out, index=pd.Index(queries["query_id"].to_numpy(), name="query_id"), name="matching_items",
                     dtype=object)
