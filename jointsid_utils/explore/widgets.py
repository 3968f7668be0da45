"""Notebook 08's widgets: two scheme/seed pickers side by side, a query box, a user picker and a code browser.

Every answer is one of the package's tables (``search``, ``recommend``, ``code_table``) with a caption. The
widgets draw them as HTML into ``HTML`` widgets (a state update; an ``Output`` widget's captured display
keeps a headless papermill run waiting on the cell until its timeout); the static cells ``display`` them.
The generators load on first use and stay loaded for the session. ``ipywidgets`` comes with the ``lab`` extra.
"""

from __future__ import annotations

from html import escape
from typing import Any, Callable

import pandas as pd

from IPython.display import display

from jointsid_utils.config import StudyConfig
from jointsid_utils.errors import StudyInputError
from jointsid_utils.explore.codes import code_table, collisions
from jointsid_utils.explore.recommend import recommend, sasrec_list, user_history
from jointsid_utils.explore.search import search
from jointsid_utils.explore.trained import Catalogue, TrainedGenerator, load_generator, trained_schemes, trained_seeds


class Explorer:
    """The widgets of one run folder; ``box`` is what the notebook displays."""

    def __init__(self, cfg: StudyConfig, catalogue: Catalogue, schemes: tuple[str, str], query: str, user: int,
                 loaded: list[TrainedGenerator] = ()):
        import ipywidgets as w

        self.cfg, self.catalogue = cfg, catalogue
        self.loaded = {(g.name, g.seed): g for g in loaded}  # generators the notebook already loaded
        names = trained_schemes(cfg)
        if not names:
            raise StudyInputError(f"The run folder {cfg.folder} has no trained generator; run notebook 05 first.")
        self.pickers = [self._picker(w, names, s) for s in schemes]
        self.query = w.Text(value=query, description="query", continuous_update=False,
                            layout=w.Layout(width="60%"))
        users = catalogue.interactions["user_id"]
        self.user = w.BoundedIntText(value=user, min=int(users.min()), max=int(users.max()), description="user")
        self.code_scheme = w.Dropdown(options=names, value=names[0] if schemes[0] not in names else schemes[0],
                                      description="codes of")
        self.level = w.BoundedIntText(value=1, min=1, max=8, description="level")
        self.out = {name: w.HTML() for name in ("search", "recommend", "codes")}
        self.query.observe(lambda _: self.show_search(), "value")
        self.user.observe(lambda _: self.show_recommend(), "value")
        for widget in (self.code_scheme, self.level):
            widget.observe(lambda _: self.show_codes(), "value")
        for scheme, seed in self.pickers:
            scheme.observe(lambda change, seed=seed: self._reseed(change, seed), "value")
            seed.observe(lambda _: (self.show_search(), self.show_recommend()), "value")
        self.box = w.VBox([w.HBox([w.VBox(p) for p in self.pickers]), self.query, self.out["search"], self.user,
                           self.out["recommend"], w.HBox([self.code_scheme, self.level]), self.out["codes"]])
        self.show_search(), self.show_recommend(), self.show_codes()

    def _picker(self, w, names: list[str], scheme: str) -> tuple[Any, Any]:
        chosen = scheme if scheme in names else names[0]
        seeds = trained_seeds(self.cfg, tuple(chosen.split("__", 1)))
        return (w.Dropdown(options=names, value=chosen, description="scheme"),
                w.Dropdown(options=seeds, value=seeds[0], description="seed"))

    def _reseed(self, change: dict, seed) -> None:
        seed.options = trained_seeds(self.cfg, tuple(change["new"].split("__", 1)))  # observers redraw

    def generators(self) -> list[TrainedGenerator]:
        out = []
        for scheme, seed in self.pickers:
            key = (scheme.value, seed.value)
            if key not in self.loaded:
                self.loaded[key] = load_generator(self.cfg, scheme.value, seed.value)
            out.append(self.loaded[key])
        return out

    def _draw(self, name: str, sections: Callable[[], Sections]) -> None:
        try:
            self.out[name].value = as_html(sections())
        except StudyInputError as err:
            self.out[name].value = f"<p><b>error:</b> {escape(str(err))}</p>"

    def show_search(self) -> None:
        self._draw("search", lambda: [s for g in self.generators() for s in search_sections(g, self.catalogue,
                                                                                              self.query.value)])

    def show_recommend(self) -> None:
        self._draw("recommend", lambda: recommend_sections(self.cfg, self.catalogue, self.generators(), self.user.value))

    def show_codes(self) -> None:
        self._draw("codes", lambda: code_sections(self.cfg, self.catalogue, self.code_scheme.value, self.level.value))


Sections = list[tuple[str, pd.DataFrame]]  # (caption, table) pairs, in reading order


def as_html(sections: Sections) -> str:
    return "".join(f"<p><b>{escape(caption, quote=False)}</b></p>" + table.to_html(index=False) for caption, table in sections)


def show(sections: Sections) -> None:
    """The sections as captions and tables in the notebook (what a headless run keeps)."""
    for caption, table in sections:
        print(caption)
        display(table)


def search_sections(gen: TrainedGenerator, catalogue: Catalogue, query: str, k: int = 10) -> Sections:
    """The scheme's decoded IDs and top items for ``query``, and where a test query's targets rank."""
    table = search(gen, catalogue, query, k)
    ranks = table.attrs["target_ranks"]
    note = ("; a test query: its target ranks " + ", ".join(f"{r or 'beyond the decoded list'}" for r in ranks.values())
            if ranks else "")
    return [(f"{gen.name} (seed {gen.seed}): {query!r}{note}", table)]


def recommend_sections(cfg: StudyConfig, catalogue: Catalogue, gens: list[TrainedGenerator], user: int,
                       k: int = 10) -> Sections:
    """The user's recent history, each generator's top ``k`` and SASRec's saved list, the held-out item marked."""
    out = [(f"user {user}: recent history", user_history(catalogue, user))]
    out += [(f"{gen.name} (seed {gen.seed}): top {k}", recommend(gen, catalogue, user, k)) for gen in gens]
    sasrec = sasrec_list(cfg, catalogue, user, k)
    out.append(("SASRec (its saved test list)" if len(sasrec) else "SASRec: this run saved no list for the user",
                sasrec))
    return out


def code_sections(cfg: StudyConfig, catalogue: Catalogue, scheme: str, level: int = 1) -> Sections:
    """What each code of ``level`` stands for, and the items that share an ID before the dedup level."""
    from jointsid_utils.ids.schemes import load_ids

    ids = load_ids(cfg, *scheme.split("__", 1))
    return [(f"{scheme}: level {level} codes (search IDs)", code_table(catalogue.items, ids.search, level)),
            ("items sharing a full ID before the dedup level", collisions(catalogue.items, ids.search))]


def show_search(gen: TrainedGenerator, catalogue: Catalogue, query: str, k: int = 10) -> None:
    show(search_sections(gen, catalogue, query, k))


def show_recommend(cfg: StudyConfig, catalogue: Catalogue, gens: list[TrainedGenerator], user: int, k: int = 10) -> None:
    show(recommend_sections(cfg, catalogue, gens, user, k))


def show_codes(cfg: StudyConfig, catalogue: Catalogue, scheme: str, level: int = 1) -> None:
    show(code_sections(cfg, catalogue, scheme, level))
