"""How many catalogue items a query's constraints fit: ``n_matching``, the measure of a query's ambiguity.

A template query is written from constraints (genres, a span of years, a runtime or rating band, a
certificate, title words, plot keywords, tags). ``Constraint`` holds them and ``Catalogue.count``
says how many items satisfy all of them, with the same reading the wording has: "a 90s comedy" fits
every comedy of 1990-1999, "sabrnia movie" fits every item titled Sabrina. A query with
``n_matching == 1`` singles out its item; a larger one is a broad query, and a search test case on it
is partly a guess among ``n_matching`` equally right answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from jointsid_utils.queries.common import as_list, is_known

ARTICLES = ("the", "a", "an")


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
    """The ``Constraint`` that ``Constraint.describe`` wrote (so a saved query's ``n_matching`` can be recounted)."""
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
    """The items table indexed for ``count``: item-id sets per genre, year, certificate, word, tag and title."""

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

    def matches(self, c: Constraint) -> frozenset[int]:
        """The ids of the items that satisfy ``c``."""
        sets = [self._sets.get(("genre", g), frozenset()) for g in c.genres]
        sets += [self._sets.get(("title_word", w), frozenset()) for w in c.title_words]
        sets += [self._sets.get(("text_word", w), frozenset()) for w in c.text_words]
        sets += [self._sets.get(("tag", t.lower()), frozenset()) for t in c.tags]
        if c.title is not None:
            sets.append(self._sets.get(("title", c.title), frozenset()))
        if c.certificate is not None:
            sets.append(self._sets.get(("certificate", c.certificate.upper()), frozenset()))
        if c.years is not None:
            sets.append(self._span(c.years))
        for column, band in (("runtime_min", c.runtime), ("imdb_rating", c.rating)):
            if band is not None:
                sets.append(self._band(column, band))
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
        """``len(matches(c))``, memoised: templates ask for the same few constraints many times."""
        if c not in self._counts:
            self._counts[c] = len(self.matches(c))
        return self._counts[c]

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
