"""One item's metadata as the phrases the query templates need (``ItemMeta``).

``templates`` decides how many queries of which kind an item gets and keeps the narrowest draw;
this module writes a single draw: the phrase for a kind (a partial or misspelled title, a genre and
era, a runtime or rating band, plot words, tags) and the ``Constraint`` it states, so that
``matching.Catalogue`` can count the items that fit it. The wording itself lives in ``vocabulary``.
"""

from __future__ import annotations

import functools
import math
import re
import string
from typing import Any

import numpy as np

from jointsid_utils.queries.common import as_list, is_known
from jointsid_utils.queries.matching import ANY, Constraint, title_key, words
from jointsid_utils.queries.vocabulary import (CERT_TEMPLATES, CONTEXTS, GENRE_ERA_TEMPLATES, GENRE_HEAD_ORDER,
                                               GENRE_ONLY_TEMPLATES, GENRE_SUFFIXES, GENRE_WORDS, KEYBOARD_ROWS,
                                               MOODS, PARTIAL_TEMPLATES, PLOT_TEMPLATES, RATING_TEMPLATES,
                                               RUNTIME_TEMPLATES, STOPWORDS, TAG_TEMPLATES, TYPO_TEMPLATES,
                                               VAGUE_TEMPLATES, YEAR_SUFFIXES)

MAX_GENRES = 3  # a genre phrase longer than "animated children's comedy" reads as a list, not a query


def _span(year: int, part: str | None) -> tuple[int, int]:
    """The years an era phrase covers: its decade, or the early (0-3), mid (4-6) or late (7-9) part of it."""
    decade = year // 10 * 10
    return {None: (decade, decade + 9), "early": (decade, decade + 3), "mid": (decade + 4, decade + 6),
            "late": (decade + 7, decade + 9)}[part]


@functools.lru_cache(maxsize=None)
def _slots(template: str) -> frozenset[str]:
    return frozenset(name for _, name, _, _ in string.Formatter().parse(template) if name)


class ItemMeta:
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
