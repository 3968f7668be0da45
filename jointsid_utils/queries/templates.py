"""Search queries per item: a seeded offline template generator (default) or an LLM backend.

The paper generated 20 queries per movie with gemini-2.0-flash and split them 10 train / 10 test
per item. Offline we write them from the metadata with templates of several *kinds* (partial or
misspelled titles, genre + era, attributes, plot keywords, vague moods, tags), so that search is
not reduced to copying the title: only a small share of queries may contain the full title.

Every item draws from its own generator, ``rng(seed, "queries", item_id)``, so slicing the
catalogue (the smoke profile) leaves each remaining item's queries unchanged; the one exception is
items with a plot, whose keywords are ranked by tf-idf over the plots present in the catalogue.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from jointsid_utils.cache import cached
from jointsid_utils.config import StudyConfig, as_dict, stable_hash
from jointsid_utils.errors import StudyInputError
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
QUERY_COLUMNS = ["query_id", "item_id", "query", "split", "source", "kind"]
REQUIRED_ITEM_COLUMNS = ("item_id", "title", "year", "genres")

STOPWORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further had has
have having he her here hers herself him himself his how i if in into is it its itself just me more
most my myself no nor not now of off on once only or other our ours out over own same she should so
some such than that the their theirs them themselves then there these they this those through to too
under until up very was we were what when where which while who whom why will with would you your
yours yourself one two three four five first second new later after before however although though
into onto upon film movie story tells become becomes became begins begin takes take gets get goes go
back eventually finally soon meanwhile another around away still even well many much being made make
makes named called finds find found tries try trying decides decide leaves leave left tell told way
years year time day days night also along while whose since must might shall may several three
home life world people man woman men women young old last next meet meets meeting help helps kill
kills killed killing room town city house friend friends family father mother son daughter wife
husband brother sister boy girl group end ends order part place point upon within without
start starts started feel feels latest leading lead leads work works working true together whether
""".split())

GENRE_WORDS: dict[str, tuple[str, ...]] = {  # MovieLens genre -> ways people say it
    "Action": ("action",), "Adventure": ("adventure",), "Animation": ("animated", "animation", "cartoon"),
    "Children's": ("kids", "children's", "family"), "Comedy": ("comedy",), "Crime": ("crime",),
    "Documentary": ("documentary",), "Drama": ("drama",), "Fantasy": ("fantasy",),
    "Film-Noir": ("film noir", "noir"), "Horror": ("horror",), "Musical": ("musical",),
    "Mystery": ("mystery",), "Romance": ("romance",), "Sci-Fi": ("sci-fi", "science fiction", "scifi"),
    "Thriller": ("thriller",), "War": ("war",), "Western": ("western",),
}
# two genres read as modifier + head ("war drama", "romantic comedy"): later in this list = head noun
GENRE_HEAD_ORDER = ("Animation", "Children's", "Sci-Fi", "Action", "Crime", "War", "Romance", "Horror", "Fantasy",
                    "Adventure", "Mystery", "Film-Noir", "Western", "Musical", "Documentary", "Comedy", "Thriller",
                    "Drama")
MOODS: dict[str, tuple[str, ...]] = {  # genre -> what a vague viewer asks for (noun phrases)
    "Action": ("something full of explosions and car chases", "a movie with lots of action",
               "something to get the adrenaline going", "a film with big fight scenes"),
    "Adventure": ("a big adventure", "a movie about a journey somewhere exotic", "something with treasure and danger"),
    "Animation": ("something animated", "a cartoon", "a film with great animation"),
    "Children's": ("something the kids will like", "a movie for the whole family", "something safe for young children"),
    "Comedy": ("something light and funny", "a movie to make me laugh", "something silly and fun",
               "a feel-good funny film"),
    "Crime": ("a movie about gangsters", "something about criminals and cops", "a gritty crime story"),
    "Documentary": ("something about real events", "a real-life documentary", "a film that's true and informative"),
    "Drama": ("something moving and emotional", "a film that will make me cry", "a serious character-driven film"),
    "Fantasy": ("something with magic", "a movie set in another world", "a fairy tale"),
    "Film-Noir": ("something dark and moody in black and white", "a movie with a femme fatale",
                  "old-school noir"),
    "Horror": ("something scary", "a movie to keep me up at night", "something creepy and gory",
               "a truly terrifying film"),
    "Musical": ("something with singing and dancing", "a movie full of songs", "a big musical"),
    "Mystery": ("a puzzling mystery", "a movie where you guess the killer", "something full of clues and twists"),
    "Romance": ("something romantic", "a movie for date night", "a love story", "something sweet and romantic"),
    "Sci-Fi": ("something mind-bending", "a movie about space and aliens", "something futuristic",
               "a film with robots or time travel"),
    "Thriller": ("something tense", "a movie that keeps me on the edge of my seat", "something suspenseful",
                 "a nail-biting film"),
    "War": ("a movie about soldiers at war", "a war story", "something set on a battlefield"),
    "Western": ("a movie with cowboys", "something set in the wild west", "a film with gunslingers and outlaws"),
}
CONTEXTS = ("", "", "for a rainy afternoon", "for tonight", "for movie night", "to watch with my partner",
            "for a lazy sunday", "on a friday night", "to watch alone", "with friends")

PARTIAL_TEMPLATES = (
    "{w} movie", "{w} {year}", "{w} film {decade}", "that {genre} movie called something like {w}",
    "movie with '{w}' in the title", "{w}... the {decade} one", "what was that film, {w} something?",
    "{w} {genre} film", "title has {w} in it, {genre}", "looking for the {genre} movie {w} something",
    "{w} ({year})", "the {w} one from the {decade}", "film {w} {genre}", "{w} - {genre}",
)
TYPO_TEMPLATES = (
    "{t} {year}", "{t} movie", "{t} film {decade}", "watch {t}", "{t} ({genre})", "{t} {genre} movie",
    "where can i see {t}", "{t} {year} film", "movie {t}", "{t} the {genre} one",
)
GENRE_ERA_TEMPLATES = (
    "{era} {g}", "{article} {era} {g}", "{g} from the {era_long}", "looking for {article} {era} {g} movie",
    "good {era} {g} films", "{g} movie from the {era_long}", "best {g} movies of the {era_long}",
    "{era} {g} recommendations", "any {era} {g} movie", "{g} made in the {era_long}",
    "classic {era} {g}", "{g} {year_phrase}",
)
GENRE_ONLY_TEMPLATES = ("{g} movie", "good {g} films", "{article} {g} movie", "{g} recommendations")
VAGUE_TEMPLATES = (
    "{m} {c}", "recommend me {m} {c}", "i want {m} {c}", "any suggestions for {m}?", "need {m} {c}",
    "what should i watch {c}? {m}", "looking for {m}", "{m}, {era} maybe", "show me {m}",
    "in the mood for {m} {c}", "can you suggest {m} {c}", "{m} please",
)
RUNTIME_TEMPLATES = (  # {rt} is a post-modifier: "under 90 minutes", "over two hours long"
    "{g} movie {rt}", "{article} {g} film {rt}", "{era} {g} {rt}", "something {rt}, {g}",
    "{g} {rt} please", "need a {g} movie {rt}", "{g} film {rt}", "any {g} {rt}?",
)
RATING_TEMPLATES = (  # {rp} works before a noun or after a comma: "highly rated", "imdb 8+"
    "{rp} {g} movie", "{rp} {era} {g}", "{g} film, {rp}", "{rp} {g} from the {era_long}", "{rp} {g}",
    "{era} {g}, {rp}",
)
CERT_TEMPLATES = ("{cp} {g}", "{cp} {g} from the {era_long}", "{g} movie {cp}", "need a {cp} {g}",
                  "{era} {cp} {g}")
PLOT_TEMPLATES = (
    "movie where {a} ... {b} ...", "film about {a} and {b}", "the one with {a}, {b} and {c}",
    "{a} {b} {c} movie", "looking for a movie: {a}, {b}, {c}", "what's the film with {a} and {b}?",
    "plot has {a}, {b}, {c}", "{g} movie about {a} and {b}", "movie with {a} {b}, {era} i think",
    "film where {a} and {b} and {c}", "{a} {b} film", "trying to find a movie about {a}, {b}",
)
TAG_TEMPLATES = ("movie tagged {a}", "{a} {b} movie", "something {a}", "{a} film", "films like {a}, {b}",
                 "{g} with {a}")

_KEYBOARD = "qwertyuiop asdfghjkl zxcvbnm".split()


# ---------------------------------------------------------------------------- public API


def generate_queries(items: pd.DataFrame, cfg: StudyConfig, *, cache_dir: Path | str | None = None) -> pd.DataFrame:
    """The query frame for ``items`` from the configured backend (``cfg.queries.backend``).

    ``cache_dir`` only matters for the LLM backend (its per-item answer cache).
    """
    _check_items(items)
    _check_split_sizes(cfg)
    backend = cfg.queries.backend
    if backend == "template":
        return template_queries(items, cfg)
    if backend == "openai":
        from jointsid_utils.queries.llm import llm_queries

        return llm_queries(items, cfg, cache_dir=cache_dir)
    raise StudyInputError(f"Unknown query backend {backend!r}; pass -p queries.backend template or openai.")


def prepare_queries(items: pd.DataFrame, cfg: StudyConfig, out_dir: Path | str) -> pd.DataFrame:
    """``out_dir/queries.parquet``, built once per (queries config, seed, items) and reloaded after."""
    out_dir = Path(out_dir)
    _check_items(items)
    key = {"queries": as_dict(cfg.queries), "items": items_fingerprint(items), "template_version": TEMPLATE_VERSION}

    def build(tmp: Path) -> None:
        frame = generate_queries(items, cfg, cache_dir=out_dir / "llm_cache")
        frame.to_parquet(tmp, index=False)

    path = cached(out_dir / "queries.parquet", key, build, seed=cfg.seed)
    return _conform(pd.read_parquet(path))


def template_queries(items: pd.DataFrame, cfg: StudyConfig) -> pd.DataFrame:
    """``per_item`` distinct template queries per item, each with its kind and a seeded split."""
    _check_items(items)
    _check_split_sizes(cfg)
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
    return _finish(rows)


def split_labels(kinds: list[str], n_train: int, gen: np.random.Generator) -> list[str]:
    """Exactly ``n_train`` "train" labels, stratified by kind (systematic sampling over kind-sorted queries)."""
    n = len(kinds)
    kind_rank = {k: r for r, k in enumerate(gen.permutation(sorted(set(kinds))))}
    order = sorted(range(n), key=lambda i: (kind_rank[kinds[i]], gen.random()))
    labels = ["test"] * n
    if n_train > 0:
        step, start = n / n_train, gen.random() * n / n_train
        for j in range(n_train):
            labels[order[int(start + j * step)]] = "train"
    return labels


def exact_title_share(queries: pd.DataFrame, items: pd.DataFrame) -> float:
    """Share of queries containing their item's full title (case-insensitive substring)."""
    titles = items.set_index("item_id")["title"].astype(str).str.lower()
    t = titles.reindex(queries["item_id"]).to_numpy()
    q = queries["query"].str.lower().to_numpy()
    return float(np.mean([ti in qi for ti, qi in zip(t, q)])) if len(q) else 0.0


def query_report(queries: pd.DataFrame, items: pd.DataFrame) -> dict[str, Any]:
    """Numbers a notebook shows: kind shares, exact-title share, distinctness, split balance."""
    per_item = queries.groupby("item_id")["query"]
    return {
        "n_queries": int(len(queries)),
        "n_items": int(queries["item_id"].nunique()),
        "kind_share": {k: round(float(v), 4) for k, v in queries["kind"].value_counts(normalize=True).items()},
        "exact_title_share": round(exact_title_share(queries, items), 4),
        "min_distinct_per_item": int(per_item.nunique().min()) if len(queries) else 0,
        "train_share": round(float((queries["split"] == "train").mean()), 4) if len(queries) else 0.0,
        "items_sharing_a_query": int(queries.groupby("query")["item_id"].nunique().gt(1).sum()),
    }


def items_fingerprint(items: pd.DataFrame) -> str:
    """A hash of everything the generators read, so a changed catalogue rebuilds the queries."""
    cols = [c for c in ("item_id", "title", "year", "genres", "runtime_min", "imdb_rating", "mpaa", "plot",
                        "tags", "text") if c in items.columns]
    records = [[_plain(v) for v in row] for row in items[cols].itertuples(index=False, name=None)]
    return stable_hash({"columns": cols, "rows": records}, length=16)


def plot_keywords(items: pd.DataFrame, top: int = 10) -> dict[int, list[str]]:
    """The ``top`` most salient plot words per item by tf-idf over the catalogue's plots (title words excluded)."""
    if "plot" not in items.columns:
        return {}
    docs: dict[int, list[str]] = {}
    for item_id, plot, title in zip(items["item_id"], items["plot"], items["title"]):
        if _known(plot) and str(plot).strip():
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
        self.year = int(item["year"]) if _known(item.get("year")) else None
        self.genres = [g for g in _as_list(item.get("genres")) if g in GENRE_WORDS]
        self.minutes = int(item["runtime_min"]) if _known(item.get("runtime_min")) else None
        self.imdb = float(item["imdb_rating"]) if _known(item.get("imdb_rating")) else None
        mpaa = item.get("mpaa")
        self.mpaa = str(mpaa).strip().upper() if _known(mpaa) and str(mpaa).strip() else None
        self.keywords = keywords
        self.tags = [str(t) for t in _as_list(item.get("tags")) if str(t).strip()]
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
    row = next((r for r in _KEYBOARD if text[i].lower() in r), None)
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


def _known(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, (list, tuple, np.ndarray)):
        return True
    try:
        return not bool(pd.isna(value))
    except (TypeError, ValueError):
        return True


def _as_list(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, (list, tuple, np.ndarray)):
        return list(value)
    if isinstance(value, str):
        return [v for v in value.split("|") if v]
    return []


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if not _known(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _check_items(items: Any) -> None:
    if not isinstance(items, pd.DataFrame):
        raise StudyInputError(f"Queries need the items as a pandas DataFrame, got {type(items).__name__}; "
                              "pass the frame from jointsid_utils.data.dataset.")
    missing = [c for c in REQUIRED_ITEM_COLUMNS if c not in items.columns]
    if missing:
        raise StudyInputError(f"The items frame lacks the column(s) {', '.join(missing)}; "
                              "build it with jointsid_utils.data.dataset so it has item_id, title, year and genres.")
    if items.empty:
        raise StudyInputError("The items frame is empty; check the data config (data.max_items) before generating queries.")
    if items["item_id"].duplicated().any():
        raise StudyInputError("The items frame has duplicate item_id values; each item needs one unique integer id.")
    blank = items["title"].isna() | (items["title"].astype(str).str.strip() == "")
    if blank.any():
        raise StudyInputError(f"{int(blank.sum())} item(s) have no title (first: item_id "
                              f"{items.loc[blank, 'item_id'].iloc[0]}), and queries are written from it; "
                              "give every item a title (jointsid_utils.data.dataset does).")


def _check_split_sizes(cfg: StudyConfig) -> None:
    q = cfg.queries
    if q.per_item < 1 or not 0 <= q.train_per_item <= q.per_item:
        raise StudyInputError(f"queries.train_per_item={q.train_per_item} must lie between 0 and "
                              f"queries.per_item={q.per_item} (which must be at least 1); fix the overrides.")


def _finish(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["item_id", "query", "split", "source", "kind"])
    frame = frame.sort_values("item_id", kind="stable").reset_index(drop=True)
    frame.insert(0, "query_id", np.arange(len(frame), dtype="int64"))
    return _conform(frame)


def _conform(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame[QUERY_COLUMNS].copy()
    frame["query_id"] = frame["query_id"].astype("int64")
    frame["item_id"] = frame["item_id"].astype("int64")
    for c in ("query", "split", "source", "kind"):
        frame[c] = frame[c].astype(str)
    return frame.reset_index(drop=True)
