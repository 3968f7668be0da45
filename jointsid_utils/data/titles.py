"""Movie titles as MovieLens and IMDb write them: year suffixes, trailing articles, matching keys.

Both sources move a leading article to the end ("Matrix, The"), MovieLens appends the year
("Toy Story (1995)"), and either may add an alternate title in parentheses. The item text shows the
title as people say it; enrichment matches titles through ``normalise_title`` keys.
"""

from __future__ import annotations

import re
import unicodedata

# Articles MovieLens and IMDb move to the end ("Matrix, The"; "Bonheur, Le"; "Oeil de Vichy, L'").
ARTICLES = ("The", "A", "An", "La", "Le", "Les", "L'", "Il", "El", "Los", "Las", "Lo", "Das", "Der", "Die",
            "Det", "Den", "Un", "Une", "Una", "Gli", "I")
_ARTICLE_RE = re.compile(r"^(?P<body>.+?), (?P<art>" + "|".join(re.escape(a) for a in ARTICLES) + r")$")
_YEAR_RE = re.compile(r"\s*\((?P<year>\d{4})(?:\s*[-–]\s*\d{0,4})?\s*\)\s*$")


def move_article(title: str) -> str:
    """"Matrix, The" -> "The Matrix"; also inside a trailing alternate title "(Oeil de Vichy, L')"."""
    main, alt = title, ""
    m = re.match(r"^(?P<main>.*?)(?P<alt>\s\([^()]*\))$", title)
    if m and m.group("main"):
        main, alt = m.group("main"), m.group("alt")
        inner = move_article(alt.strip()[1:-1])
        alt = f" ({inner})"
    m = _ARTICLE_RE.match(main)
    if m:
        art = m.group("art")
        main = f"{art}{m.group('body')}" if art.endswith("'") else f"{art} {m.group('body')}"
    return main + alt


def split_title_year(raw: str) -> tuple[str, int | None]:
    """"Usual Suspects, The (1995)" -> ("The Usual Suspects", 1995)."""
    raw = (raw or "").strip()
    m = _YEAR_RE.search(raw)
    year = int(m.group("year")) if m else None
    title = raw[: m.start()].strip() if m else raw
    return move_article(title), year


def normalise_title(title: str) -> str:
    """Lowercase, accents and punctuation stripped, article moved to the front: a matching key."""
    title = move_article(title.strip())
    title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    title = title.lower().replace("&", " and ")
    title = re.sub(r"[^a-z0-9]+", " ", title)
    return " ".join(title.split())


def title_keys(title: str) -> list[str]:
    """Matching keys of a title: the full title, the title without its parenthetical, and the parenthetical
    (an alternate title), so "Shanghai Triad (Yao a yao yao dao waipo qiao)" matches either name."""
    keys = [normalise_title(title)]
    m = re.match(r"^(?P<main>.*?)\s*\((?P<alt>[^()]*)\)$", title)
    if m and m.group("main"):
        keys += [normalise_title(m.group("main")), normalise_title(m.group("alt"))]
    return [k for k in dict.fromkeys(keys) if k]
