"""Item attributes beyond MovieLens and the encoder's item text.

``enrich_items`` adds runtime, IMDb rating and MPAA certificate from ggplot2movies (matched on title
and year) and plot summaries from Wikipedia (matched on title, checked against the year);
``item_text`` writes the one string per item that the text encoders embed.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from jointsid_utils import assets
from jointsid_utils.data.titles import normalise_title, title_keys

PLOT_CHARS_IN_TEXT = 600  # the encoders truncate at 256-384 tokens; the full plot stays in `plot`


def enrich_items(items: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Add runtime, IMDb rating and MPAA (ggplot2movies, title + year) and plots (Wikipedia, title)."""
    items = items.copy()
    _add_imdb_attributes(items)
    _add_plots(items)
    counts = {"ggplot2movies_matched": int(items["runtime_min"].notna().sum()),
              "mpaa_known": int(items["mpaa"].notna().sum()),
              "plots_matched": int(items["plot"].notna().sum())}
    return items, counts


def _add_imdb_attributes(items: pd.DataFrame) -> None:
    """Fill ``runtime_min``, ``imdb_rating`` and ``mpaa`` in place where a ggplot2movies film matches."""
    imdb = assets.ggplot2movies()
    imdb = imdb.sort_values("votes", ascending=False)  # the most-voted film wins a (title, year) clash
    by_key: dict[tuple[str, int], Any] = {}
    for row in imdb[["title", "year", "length", "rating", "mpaa"]].itertuples(index=False):
        by_key.setdefault((normalise_title(str(row.title)), int(row.year)), row)
    runtime, rating, mpaa = [], [], []
    for title, year in zip(items["title"], items["year"]):
        hit = None
        if not pd.isna(year):
            # Release years in MovieLens and IMDb differ by one now and then; exact year first.
            for dy in (0, 1, -1):
                hit = next((by_key.get((k, int(year) + dy)) for k in title_keys(title)
                            if (k, int(year) + dy) in by_key), None)
                if hit is not None:
                    break
        runtime.append(None if hit is None or pd.isna(hit.length) else int(hit.length))
        rating.append(np.nan if hit is None or pd.isna(hit.rating) else float(hit.rating))
        mpaa.append(None if hit is None or pd.isna(hit.mpaa) or not str(hit.mpaa).strip() else str(hit.mpaa))
    items["runtime_min"] = pd.array(runtime, dtype="Int64")
    items["imdb_rating"] = np.asarray(rating, dtype=float)
    items["mpaa"] = pd.Series(mpaa, dtype=object, index=items.index)


def _add_plots(items: pd.DataFrame) -> None:
    """Fill ``plot`` in place with the film summary whose title and year match."""
    by_title: dict[str, list[tuple[int | None, str]]] = {}
    for key, text in assets.plot_summaries().items():
        # Keys are Wikipedia titles: "Vertigo (film)", "Hamlet (1996 film)", but also "Heat" (physics).
        m = re.match(r"^(?P<title>.*?)\s*\((?P<note>[^()]*)\)$", key)
        title, note = (m.group("title"), m.group("note")) if m else (key, "")
        first = re.split(r"(?<=[a-z0-9)])\.\s", text.strip(), maxsplit=1)[0][:400]
        if "film" not in note and not re.search(r"\b(film|movie|documentary)\b", first, re.I):
            continue  # an article about the word, not the film
        year = re.search(r"\b(1[89]\d\d|20\d\d)\b", note) or re.search(r"\b(1[89]\d\d|20\d\d)\b", first)
        by_title.setdefault(normalise_title(title), []).append((int(year.group(1)) if year else None, text.strip()))
    plots = []
    for title, year in zip(items["title"], items["year"]):
        cands = [c for k in title_keys(title) for c in by_title.get(k, [])]
        plots.append(_pick_plot(cands, None if pd.isna(year) else int(year)))
    items["plot"] = pd.Series(plots, dtype=object, index=items.index)


def _pick_plot(cands: list[tuple[int | None, str]], year: int | None) -> str | None:
    """The summary whose year agrees with the item's (within one); without years, only a unique one."""
    if year is None:
        return cands[0][1] if len(cands) == 1 and cands[0][0] is None else None
    agree = [text for y, text in cands if y is not None and abs(y - year) <= 1]
    return agree[0] if agree else None


def item_text(row: Any) -> str:
    """"Title: Toy Story. Year: 1995. Genres: ... Runtime: 81 min. Rated: PG. IMDb rating 8.2. Tags: ... Plot: ..."

    Tags come before the plot so the encoder's token limit truncates the plot, not the tags.
    """
    parts = [f"Title: {row.title}."]
    if not pd.isna(row.year):
        parts.append(f"Year: {int(row.year)}.")
    if len(row.genres):
        parts.append(f"Genres: {', '.join(row.genres)}.")
    if not pd.isna(row.runtime_min):
        parts.append(f"Runtime: {int(row.runtime_min)} min.")
    if row.mpaa is not None and not pd.isna(row.mpaa):
        parts.append(f"Rated: {row.mpaa}.")
    if not pd.isna(row.imdb_rating):
        parts.append(f"IMDb rating {row.imdb_rating:.1f}.")
    if len(row.tags):
        parts.append(f"Tags: {', '.join(row.tags)}.")
    if row.plot is not None and not pd.isna(row.plot):
        plot = " ".join(str(row.plot).split())
        if len(plot) > PLOT_CHARS_IN_TEXT:
            plot = plot[:PLOT_CHARS_IN_TEXT].rsplit(" ", 1)[0] + " ..."
        parts.append(f"Plot: {plot}")
    return " ".join(parts)
