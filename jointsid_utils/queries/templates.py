"""Search queries per item written offline from the metadata: the seeded template generator.

The paper generated 20 queries per movie with gemini-2.0-flash and split them 10 train / 10 test
per item. Offline we write them from the metadata with templates of several *kinds* (partial or
misspelled titles, genre + era, attributes, plot keywords, vague moods, tags), so that search is
not reduced to copying the title: only a small share of queries may contain the full title.

Every item draws from its own generator, ``rng(seed, "queries", item_id)``, so slicing the
catalogue (the smoke profile) leaves each remaining item's queries unchanged; the one exception is
items with a plot, whose keywords are ranked by tf-idf over the plots present in the catalogue.
The wording lives in ``vocabulary``; ``_Meta`` turns one item's metadata into phrases.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any, Callable

import numpy as np
import pandas as pd

from jointsid_utils.config import StudyConfig
from jointsid_utils.errors import StudyInputError
from jointsid_utils.queries.common import (as_list, check_items, check_split_sizes, finish_queries, is_known,
                                           split_labels)
from jointsid_utils.queries.vocabulary import (CERT_TEMPLATES, CONTEXTS, GENRE_ERA_TEMPLATES, GENRE_HEAD_ORDER,
                                               GENRE_ONLY_TEMPLATES, GENRE_WORDS, KEYBOARD_ROWS, MOODS,
                                               PARTIAL_TEMPLATES, PLOT_TEMPLATES, RATING_TEMPLATES, RUNTIME_TEMPLATES,
                                               STOPWORDS, TAG_TEMPLATES, TYPO_TEMPLATES, VAGUE_TEMPLATES)
from jointsid_utils.reproducibility import rng

# Bump when the templates change, so cached queries.parquet files are rebuilt.
TEMPLATE_VERSION = 1

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


def template_queries(items: pd.DataFrame, cfg: StudyConfig) -> pd.DataFrame:
    """``per_item`` distinct template queries per item, each with its kind and a seeded split."""
    check_items(items)
    check_split_sizes(cfg)
    n, n_train = cfg.queries.per_item, cfg.queries.train_per_item
    keywords = plot_keywords(items)
    rows: list[dict[str, Any]] = []
    for item in items.to_dict("records"):
        item_id = int(item["item_id"])
        gen = rng(cfg.seed, "queries", item_id)
        pairs = _item_queries(item, keywords.get(item_id, []), n, gen)
        splits = split_labels([k for _, k in pairs], n_train, gen)
        rows += [{"item_id": item_id, "query": q, "kind": k, "split": s, "source": "template"}
                 for (q, k), s in zip(pairs, splits)]
    return finish_queries(rows)


def plot_keywords(items: pd.DataFrame, top: int = 10) -> dict[int, list[str]]:
    """The ``top`` most salient plot words per item by tf-idf over the catalogue's plots (title words excluded)."""
    if "plot" not in items.columns:
        return {}
    docs: dict[int, list[str]] = {}
    for item_id, plot, title in zip(items["item_id"], items["plot"], items["title"]):
        if is_known(plot) and str(plot).strip():
            title_words = set(_words(str(title)))
            docs[int(item_id)] = [w for w in _words(str(plot)) if len(w) >= 4 and w not in STOPWORDS
                                  and w not in title_words and not w.isdigit() and not w.endswith("ly")]
    df = Counter(w for words in docs.values() for w in set(words))
    n_docs = len(docs)
    out: dict[int, list[str]] = {}
    for item_id, words in docs.items():
        tf = Counter(words)
        # smoothed idf; ties broken by first occurrence so the choice is deterministic
        first = {w: i for i, w in reversed(list(enumerate(words)))}
        score = {w: c * math.log((1 + n_docs) / (1 + df[w])) + 1e-9 * c for w, c in tf.items()}
        out[item_id] = sorted(score, key=lambda w: (-score[w], first[w]))[:top]
    return out


# ---------------------------------------------------------------------------- one item


def _item_queries(item: dict, keywords: list[str], n: int, gen: np.random.Generator) -> list[tuple[str, str]]:
    meta = _Meta(item, keywords)
    makers: dict[str, Callable[[np.random.Generator], str | None]] = {
        "title_partial": meta.title_partial, "title_typo": meta.title_typo, "genre_era": meta.genre_era,
        "vague": meta.vague, "runtime": meta.runtime, "rating": meta.rating, "certificate": meta.certificate,
        "plot": meta.plot, "tag": meta.tag,
    }
    available = [k for k in KINDS if meta.allows(k)]
    quota = _allocate(n, {k: KIND_WEIGHTS[k] for k in available})
    plan = [k for k in available for _ in range(quota[k])]
    # large-space kinds to fall back on when a small one (e.g. certificate) runs out of new strings
    fallback = [k for k in ("genre_era", "vague", "title_typo", "plot", "title_partial") if k in available]
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for kind in plan:
        for candidate_kind in [kind] + [k for k in fallback if k != kind]:
            query = _draw_new(makers[candidate_kind], gen, seen, meta)
            if query is not None:
                out.append((query, candidate_kind))
                break
        else:
            raise StudyInputError(f"Item {meta.item_id} ({meta.title!r}) has too little metadata for {n} distinct "
                                  "queries; lower -p queries.per_item or add genres/year to the item.")
    return out


def _draw_new(make: Callable[[np.random.Generator], str | None], gen: np.random.Generator, seen: set[str],
              meta: "_Meta", attempts: int = 40) -> str | None:
    for _ in range(attempts):
        raw = make(gen)
        if raw is None:
            return None
        query = _surface(raw, gen)
        key = re.sub(r"[^a-z0-9]+", " ", query.lower()).strip()
        if key and key not in seen and not meta.leaks_title(query):
            seen.add(key)
            return query
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


class _Meta:
    """An item's metadata as the phrases the templates need; each kind method draws one raw query."""

    def __init__(self, item: dict, keywords: list[str]):
        self.item_id = int(item["item_id"])
        self.title = str(item["title"])
        self.main_title = re.sub(r"\s*\(.*\)\s*$", "", self.title).strip() or self.title
        self.year = int(item["year"]) if is_known(item.get("year")) else None
        self.genres = [g for g in as_list(item.get("genres")) if g in GENRE_WORDS]
        self.minutes = int(item["runtime_min"]) if is_known(item.get("runtime_min")) else None
        self.imdb = float(item["imdb_rating"]) if is_known(item.get("imdb_rating")) else None
        mpaa = item.get("mpaa")
        self.mpaa = str(mpaa).strip().upper() if is_known(mpaa) and str(mpaa).strip() else None
        self.keywords = keywords
        self.tags = [str(t) for t in as_list(item.get("tags")) if str(t).strip()]
        words = self.main_title.split()
        self.title_words = words
        self.content_words = [w for w in words if w.lower().strip(":,.!?'") not in STOPWORDS] or words

    def allows(self, kind: str) -> bool:
        return {
            "title_partial": len(self.title_words) >= 2,
            "title_typo": len(re.sub(r"[^A-Za-z]", "", self.main_title)) >= 3,
            "genre_era": bool(self.genres) or self.year is not None,
            "vague": bool(self.genres),
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

    # -- shared phrases
    def _template(self, gen: np.random.Generator, templates: tuple[str, ...]) -> str:
        """A template whose slots this item can fill (no era wording without a year, no genre slot without genres)."""
        usable = [t for t in templates
                  if (self.year is not None or not re.search(r"\{(era|era_long|decade|year|year_phrase)\}", t))
                  and (self.genres or not re.search(r"\{(g|genre)\}", t))]
        return _pick(gen, usable or templates)

    def _genre(self, gen: np.random.Generator, max_genres: int = 2) -> str:
        if not self.genres:
            return ""
        k = 1 if len(self.genres) == 1 or gen.random() < 0.55 else min(max_genres, len(self.genres))
        picked = [self.genres[i] for i in gen.choice(len(self.genres), size=k, replace=False)]
        picked.sort(key=GENRE_HEAD_ORDER.index)
        words = [_pick(gen, GENRE_WORDS[g]) for g in picked]
        if len(words) > 1 and picked[0] == "Romance":
            words[0] = "romantic"
        return " ".join(words)

    def _era(self, gen: np.random.Generator) -> tuple[str, str]:
        """(short era like "90s" / "early-90s" / "1990s", long era like "nineties" / "1990s")."""
        if self.year is None:
            return "", ""
        decade = self.year // 10 * 10
        short = f"{decade % 100:02d}s" if decade < 2000 else f"{decade}s"
        part = ("early" if self.year % 10 <= 3 else "mid" if self.year % 10 <= 6 else "late")
        choices_short = [short, f"{decade}s", f"{part}-{short}", f"{part} {short}"]
        long_names = {1920: "twenties", 1930: "thirties", 1940: "forties", 1950: "fifties", 1960: "sixties",
                      1970: "seventies", 1980: "eighties", 1990: "nineties"}
        choices_long = [f"{decade}s", f"{part} {decade}s"] + ([long_names[decade]] if decade in long_names else [])
        return _pick(gen, choices_short), _pick(gen, choices_long)

    def _fill(self, gen: np.random.Generator, template: str, **extra: str) -> str:
        era, era_long = self._era(gen)
        genre = extra.pop("g", None) or self._genre(gen)
        year_phrase = (_pick(gen, [f"from {self.year}", f"released in {self.year}", f"({self.year})",
                                   f"around {self.year}"]) if self.year else "")
        decade = era if era else ""
        values = dict(g=genre, genre=genre, era=era, era_long=era_long, decade=decade,
                      year=str(self.year) if self.year else era, year_phrase=year_phrase,
                      article="a", **extra)
        text = re.sub(r"\s+", " ", template.format(**values))
        return re.sub(r"\b([Aa]) (?=[aeioAEIO8])", r"\1n ", text)  # "a action" -> "an action", "a 80s" -> "an 80s"

    # -- kinds
    def title_partial(self, gen: np.random.Generator) -> str | None:
        if len(self.title_words) < 2:
            return None
        words = self.content_words
        # fewer words than the title: never the whole title, usually a few distinctive words
        max_k = max(1, min(len(words), len(self.title_words) - 1))
        k = int(gen.integers(1, max_k + 1))
        start = int(gen.integers(0, len(words) - k + 1))
        chunk = " ".join(words[start:start + k]).strip(":,.!?")
        return self._fill(gen, self._template(gen, PARTIAL_TEMPLATES), w=chunk)

    def title_typo(self, gen: np.random.Generator) -> str | None:
        base = self.main_title
        if base.lower().startswith(("the ", "a ", "an ")) and gen.random() < 0.5:
            base = base.split(" ", 1)[1]
        typo = base.lower() if gen.random() < 0.7 else base
        for _ in range(10):  # at least one real change (doubling a letter can be undone by nothing else)
            for _ in range(1 + int(len(base) > 8 and gen.random() < 0.4)):
                typo = _typo(typo, gen)
            if typo.lower() != base.lower():
                break
        return self._fill(gen, self._template(gen, TYPO_TEMPLATES), t=typo)

    def genre_era(self, gen: np.random.Generator) -> str | None:
        if self.year is None:
            return self._fill(gen, self._template(gen, GENRE_ONLY_TEMPLATES)) if self.genres else None
        if not self.genres:
            return self._fill(gen, _pick(gen, ["{era} movie", "film from the {era_long}", "{article} {era} film",
                                               "movies {year_phrase}"]))
        return self._fill(gen, self._template(gen, GENRE_ERA_TEMPLATES))

    def vague(self, gen: np.random.Generator) -> str | None:
        if not self.genres:
            return None
        mood = _pick(gen, MOODS[_pick(gen, self.genres)])  # one genre's mood: vague on purpose
        return self._fill(gen, self._template(gen, VAGUE_TEMPLATES), m=mood, c=_pick(gen, CONTEXTS))

    def runtime(self, gen: np.random.Generator) -> str | None:
        if self.minutes is None:
            return None
        m = self.minutes
        if m < 90:
            options = ["under 90 minutes", "under an hour and a half", f"about {m // 5 * 5} minutes long",
                       "that isn't too long", "less than 90 min"]
        elif m <= 125:
            options = ["around two hours long", f"about {m // 10 * 10} minutes", "of normal length",
                       "under two hours" if m < 120 else "about 2 hours long"]
        elif m <= 150:
            options = ["over two hours", "over 2 hours long", f"about {m // 10 * 10} minutes long",
                       "that runs more than two hours"]
        else:
            options = ["over 2.5 hours long", "over two and a half hours", "that is a real long epic",
                       f"nearly {math.ceil(m / 60)} hours long", "with a 3 hour runtime" if m >= 170 else
                       "longer than 150 minutes"]
        return self._fill(gen, self._template(gen, RUNTIME_TEMPLATES), rt=_pick(gen, options))

    def rating(self, gen: np.random.Generator) -> str | None:
        if self.imdb is None:
            return None
        r = self.imdb
        if r >= 8.0:
            options = ["highly rated", "critically acclaimed", "top rated on imdb", "imdb 8+", "a must-see"]
        elif r >= 7.0:
            options = ["highly rated", "well reviewed", "rated above 7 on imdb", "good reviews"]
        elif r >= 5.5:
            options = [f"imdb {int(r)}-ish", "decently rated", "fairly well rated"]
        else:
            options = ["so bad it's good", "low rated", "panned by critics", f"imdb under {math.ceil(r)}"]
        return self._fill(gen, self._template(gen, RATING_TEMPLATES), rp=_pick(gen, options))

    def certificate(self, gen: np.random.Generator) -> str | None:
        if self.mpaa is None:
            return None
        c = self.mpaa
        options = {"G": ["G-rated", "G rated family", "all ages"], "PG": ["PG family", "PG", "PG rated family"],
                   "PG-13": ["PG-13", "PG-13 rated", "teen-friendly PG-13"], "R": ["R-rated", "R rated", "rated R"],
                   "NC-17": ["NC-17", "NC-17 rated"]}.get(c, [f"{c}-rated", f"rated {c}"])
        return self._fill(gen, self._template(gen, CERT_TEMPLATES), cp=_pick(gen, options))

    def plot(self, gen: np.random.Generator) -> str | None:
        if len(self.keywords) < 2:
            return None
        # salient words first: draw from the top few more often
        p = np.linspace(2.0, 1.0, len(self.keywords))
        k = min(3, len(self.keywords))
        a, b, *rest = gen.choice(self.keywords, size=k, replace=False, p=p / p.sum())
        c = rest[0] if rest else b
        return self._fill(gen, self._template(gen, PLOT_TEMPLATES), a=str(a), b=str(b), c=str(c))

    def tag(self, gen: np.random.Generator) -> str | None:
        if not self.tags:
            return None
        a = _pick(gen, self.tags)
        b = _pick(gen, self.tags)
        return self._fill(gen, self._template(gen, TAG_TEMPLATES), a=a, b=b if b != a else "")


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


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z][a-z'-]*[a-z]|[a-z0-9]+", text.lower())
