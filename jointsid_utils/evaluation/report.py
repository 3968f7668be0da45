"""Tables, flags, the headline and the trade-off figure of notebook 06, computed from the result files.

Inputs are the frames of ``evaluation.results``: ``recall_at_<k>.csv`` rows (one per seed) or, for intervals over
seeds and cases, ``statistics.seed_level_table``'s rows; ``baselines.csv`` (random, most-popular, BM25, dense
retrieval); the paired tests of ``statistics.family_tests``. Nothing here trains or decodes. Recall@k is read
from each frame's one ``recall_at_<k>`` column (``metrics.recall_column_in``), at the k its run was scored at.
Rec is reported under both protocols (docs/FEASIBILITY.md): "all" (the ranked list as decoded, the
paper-style number) and "exclude_history" (the user's seen items removed). Never compare across them.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from jointsid_utils.errors import StudyInputError
from jointsid_utils.evaluation.reference import reference_table
from jointsid_utils.metrics import recall_column_in
from jointsid_utils.ids.schemes import Scheme

COLUMNS = {("search", "all", "all"): "search", ("rec", "all", "all"): "rec",
           ("rec", "exclude_history", "all"): "rec_excl", ("rec", "all", "head"): "rec_head",
           ("rec", "all", "torso"): "rec_torso"}


def _cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Recall and interval bounds per (embedding, quantizer, column): as given for seed-level rows
    (``n_seeds``), else the mean over the per-seed rows."""
    f = frame.copy()
    f["col"] = [COLUMNS.get((t, p, s)) for t, p, s in zip(f.task, f.protocol, f.segment)]
    f = f.dropna(subset=["col"])
    if "n_seeds" not in f:
        f["n_seeds"] = f.groupby(["embedding", "quantizer", "col"], sort=False).seed.transform("nunique")
    g = f.groupby(["embedding", "quantizer", "col"], sort=False)
    return g.agg(r=(recall_column_in(frame), "mean"), lo=("ci_low", "mean"), hi=("ci_high", "mean"),
                 n=("n_cases", "first"), seeds=("n_seeds", "max")).reset_index()


def scheme_table(results: pd.DataFrame, schemes: Sequence[Scheme], *, decoding: str = "beam") -> pd.DataFrame:
    """One row per scheme: Recall@k with 95% bounds for search, rec (both protocols) and rec head/torso
    ("all"), beside the paper's numbers, and ``seeds``. From ``statistics.seed_level_table`` (use this) the
    value is the mean over seeds and cases and the interval the variance model's (seed and item-clustered
    case terms); from per-seed ``recall_at_<k>.csv`` rows, the seeds' mean value and mean per-seed bounds."""
    if results.empty:
        raise StudyInputError("No Recall@k rows to tabulate; run notebook 05 first.")
    cells = _cells(results[results.decoding == decoding])
    rows = []
    for emb, quant in schemes:
        c = cells[(cells.embedding == emb) & (cells.quantizer == quant)].set_index("col")
        row = {"embedding": emb, "quantizer": quant, "seeds": int(c.seeds.max()) if len(c) else 0}
        for col in COLUMNS.values():
            have = col in c.index
            row[col] = c.r[col] if have else np.nan
            row[f"{col}_lo"] = c.lo[col] if have else np.nan
            row[f"{col}_hi"] = c.hi[col] if have else np.nan
        rows.append(row)
    table = pd.DataFrame(rows)
    return table.merge(reference_table().drop(columns="table"), on=["embedding", "quantizer"], how="left")


def baseline_value(baselines: pd.DataFrame, method: str, task: str, protocol: str = "all",
                   segment: str = "all") -> float:
    hit = baselines[(baselines.method == method) & (baselines.task == task) & (baselines.protocol == protocol)
                    & (baselines.segment == segment)]
    return float(hit[recall_column_in(baselines)].mean()) if len(hit) else np.nan


def add_flags(table: pd.DataFrame, baselines: pd.DataFrame) -> pd.DataFrame:
    """``beats_bm25`` (search), ``beats_most_popular`` (rec, "all") and ``beats_most_popular_excl``
    ("exclude_history"): a scheme is compared with the baseline on the same cases and protocol."""
    out = table.copy()
    out["beats_bm25"] = out.search > baseline_value(baselines, "bm25", "search")
    out["beats_most_popular"] = out.rec > baseline_value(baselines, "most_popular", "rec")
    out["beats_most_popular_excl"] = out.rec_excl > baseline_value(baselines, "most_popular", "rec", "exclude_history")
    notes = []
    for r in out.itertuples():
        n = [] if r.beats_bm25 else ["search <= BM25"]
        n += [] if r.beats_most_popular else ["rec <= most-popular"]
        n += [] if r.beats_most_popular_excl else ["rec (excl.) <= most-popular"]
        notes.append("; ".join(n) or "beats both")
    out["flag"] = notes
    return out


def formatted(table: pd.DataFrame) -> pd.DataFrame:
    """Strings ``0.083 [0.071, 0.095]`` for display, paper columns beside ours."""
    def ci(r, col):
        v = r[col]
        return "-" if pd.isna(v) else f"{v:.3f} [{r[col + '_lo']:.3f}, {r[col + '_hi']:.3f}]"

    def num(v):
        return "-" if pd.isna(v) else f"{v:.3f}"

    rows = []
    for _, r in table.iterrows():
        row = {"scheme": f"{r.embedding} / {r.quantizer}", "seeds": r.seeds, "search": ci(r, "search"),
               "paper search": num(r.paper_search),
               "rec (all)": ci(r, "rec"), "paper rec": num(r.paper_rec), "rec (excl. history)": ci(r, "rec_excl"),
               "rec head": num(r.rec_head), "rec torso": num(r.rec_torso), "paper head": num(r.paper_rec_head),
               "paper torso": num(r.paper_rec_torso)}
        if "flag" in r:
            row["flag"] = r.flag
        rows.append(row)
    return pd.DataFrame(rows).set_index("scheme")


def validation_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Validation Recall@k per scheme and task (``orchestration.validation_table`` rows, one per seed):
    ``mean [lowest, highest seed]`` strings and the number of seeds, the numbers a construction is chosen on."""
    if table.empty:
        return pd.DataFrame()
    rows, column = {}, recall_column_in(table)
    for (emb, quant, task), g in table.groupby(["embedding", "quantizer", "task"], sort=False):
        r = g[column]
        rows.setdefault(f"{emb} / {quant}", {})[f"{task} (validation)"] = (
            f"{r.mean():.3f} [{r.min():.3f}, {r.max():.3f}]")
        rows[f"{emb} / {quant}"]["seeds"] = len(g)
    return pd.DataFrame(rows).T.rename_axis("scheme")


def baselines_table(baselines: pd.DataFrame) -> pd.DataFrame:
    """Baselines and the dense references, one row per method: search, rec (all), rec (excl. history)."""
    b = baselines[baselines.segment == "all"]
    col = np.where(b.task == "search", "search", np.where(b.protocol == "all", "rec (all)", "rec (excl. history)"))
    out = b.assign(col=col).pivot_table(index="method", columns="col", values=recall_column_in(b), aggfunc="mean")
    return out.reindex(columns=[c for c in ("search", "rec (all)", "rec (excl. history)") if c in out.columns])


# ----------------------------------------------------------------------------- headline

def headline(table: pd.DataFrame, baselines: pd.DataFrame, verdict_table: pd.DataFrame,
             profile: str) -> tuple[str, dict[str, float]]:
    """Notebook 06's closing paragraph (markdown) and its numbers: the best scheme per task against BM25
    (search) and most-popular (rec, "all") on the same cases, how many schemes are at or below them, and the
    computed verdicts (``verdicts.verdicts``). ``table`` has ``add_flags``' columns."""
    numbers = {"bm25_search": baseline_value(baselines, "bm25", "search"),
               "most_popular_rec": baseline_value(baselines, "most_popular", "rec"),
               "schemes_below_bm25": int((~table.beats_bm25).sum()),
               "schemes_below_most_popular": int((~table.beats_most_popular).sum())}
    best_search, best_rec = table.loc[table.search.idxmax()], table.loc[table.rec.idxmax()]
    named = {v: ", ".join(f"{getattr(r, 'family', r.finding)} ({r.task})" for r in verdict_table.itertuples()
                          if r.verdict == v) or "none"
             for v in ("reproduces", "contradicted", "inconclusive")}
    text = (f"**Measured on `{profile}`.** Best generative search: {best_search.embedding}/{best_search.quantizer}\n"
            f"{best_search.search:.3f} against BM25 {numbers['bm25_search']:.3f} on the same queries; "
            f"{numbers['schemes_below_bm25']} of {len(table)} schemes are at or\nbelow BM25 on search. Best generative "
            f"rec (all): {best_rec.embedding}/{best_rec.quantizer} {best_rec.rec:.3f} against\nmost-popular "
            f"{numbers['most_popular_rec']:.3f}; {numbers['schemes_below_most_popular']} of {len(table)} schemes are at "
            f"or below most-popular on rec.\nVerdicts (computed, section 9): reproduces: {named['reproduces']};\n"
            f"contradicted: {named['contradicted']}; inconclusive: {named['inconclusive']}.")
    return text, numbers


# ----------------------------------------------------------------------------- tests

def tests_table(tests: pd.DataFrame) -> pd.DataFrame:
    """``statistics.family_tests`` rows for display: a - b with its interval, p, Holm p, Cohen's d_z, the
    detectable difference at the family's Holm level and the design (cases, items, seeds)."""
    if tests.empty:
        return pd.DataFrame()
    return pd.DataFrame({
        "label": tests["label"] if "label" in tests else tests["candidate"], "task": tests.task, "a": tests.a, "b": tests.b,
        "recall a / b": [f"{x:.3f} / {y:.3f}" for x, y in zip(tests.recall_a, tests.recall_b)],
        "a - b [95% CI]": [f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]"
                           for d, lo, hi in zip(tests["diff"], tests.ci_low, tests.ci_high)],
        "p": [p_text(p) for p in tests.p_value], "Holm p": [p_text(p) for p in tests.p_holm],
        "significant": tests.significant, "Cohen's d_z": tests.cohens_d.round(3),
        "detectable (80%, alpha/m)": tests.detectable.round(3), "df": tests.df.round(1),
        "units": [f"{c} cases ({i} items) x {s} seeds" for c, i, s in zip(tests.n_cases, tests.n_items, tests.n_seeds)]})


def p_text(p: float) -> str:
    """A p-value for display: four decimals, or its order of magnitude below 0.0001 (analytic, no floor)."""
    return f"{p:.4f}" if p >= 1e-4 else f"{p:.1e}"


def verdicts_table(verdict_table: pd.DataFrame, run: Sequence[str] = ()) -> pd.DataFrame:
    """``verdicts.verdicts`` for display, one row per (finding, task), with the findings of ``run`` that got no
    row (their schemes were not trained) listed as "not run"."""
    shown = verdict_table.assign(**{"a - b (weakest)": verdict_table["diff"].round(3),
                                    "detectable": verdict_table.detectable.round(3),
                                    "Holm p": [p_text(p) for p in verdict_table.p_holm]})
    missing = [f for f in run if f not in set(verdict_table.finding)]
    extra = pd.DataFrame({"finding": missing, "family": missing, "task": "-", "verdict": "not run"})
    cols = ["finding", "family", "task", "rec_protocol", "verdict", "comparison", "a - b (weakest)", "detectable",
            "Holm p", "sided", "m", "rule"]
    return pd.concat([shown, extra], ignore_index=True).reindex(columns=cols).fillna("")


def subset_wide(table: pd.DataFrame) -> pd.DataFrame:
    """``statistics.subset_table`` as one row per scheme, one column per subset: ``0.083 [0.071, 0.095]``,
    the subset's case count in the column name."""
    cell = [f"{r:.3f} [{lo:.3f}, {hi:.3f}]" for r, lo, hi in zip(table[recall_column_in(table)], table.ci_low,
                                                                  table.ci_high)]
    named = table.assign(scheme=[f"{e} / {q} ({s} seed{'s' if s > 1 else ''})"
                                 for e, q, s in zip(table.embedding, table.quantizer, table.n_seeds)],
                         column=[f"{s} (n={n})" for s, n in zip(table.subset, table.n_cases)], cell=cell)
    order = list(dict.fromkeys(named.column))
    return named.pivot(index="scheme", columns="column", values="cell").reindex(
        index=list(dict.fromkeys(named.scheme)), columns=order)


# ----------------------------------------------------------------------------- figure

def _place_labels(ax, points: list[tuple[float, float, str]]) -> None:
    """Point labels moved apart (adjustText), then any pair that still overlaps pushed apart vertically, so no
    label covers another; each label keeps a leader line to its point."""
    from adjustText import adjust_text

    texts = [ax.text(x, y, text, fontsize=8) for x, y, text in points]
    if not texts:
        return
    adjust_text(texts, x=[p[0] for p in points], y=[p[1] for p in points], ax=ax, expand=(1.4, 1.8),
                force_text=(0.4, 0.8), iter_lim=2000, arrowprops=dict(arrowstyle="-", color="0.5", lw=0.5))
    _separate(ax, texts)


def _separate(ax, texts: list, rounds: int = 50) -> None:
    """Push overlapping labels apart vertically, the upper one of each pair up by the overlap (a few pixels
    more), until none overlaps: adjustText's force model leaves a pair now and then in a crowded panel."""
    renderer = ax.figure.canvas.get_renderer()
    to_data = ax.transData.inverted()
    for _ in range(rounds):
        boxes = [t.get_window_extent(renderer) for t in texts]
        pair = next(((i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes))
                     if boxes[i].overlaps(boxes[j])), None)
        if pair is None:
            return
        lower, upper = sorted(pair, key=lambda k: boxes[k].y0)
        shift = boxes[lower].y1 - boxes[upper].y0 + 3  # pixels
        x, y = texts[upper].get_position()
        _, y_px = ax.transData.transform((x, y))
        texts[upper].set_position((x, to_data.transform((0, y_px + shift))[1]))


# search references drawn as horizontal lines, rec references as vertical ones: (method, label, colour, style)
SEARCH_LINES = (("bm25_tuned", "BM25 tuned", "k", "--"), ("dense_search", "dense (search-tuned)", "0.35", "-."))
REC_LINES = (("sasrec", "SASRec", "navy", "--"), ("most_popular", "most-popular", "firebrick", "--"))


def _reference_lines(ax, baselines: pd.DataFrame, protocol: str) -> None:
    """The practitioner's systems and the floors as labelled lines (named in the figure's legend below); a
    search reference outside the panel, which is zoomed on the schemes, is named at its top or bottom edge."""
    outside: dict[str, list[str]] = {"above": [], "below": []}
    low, high = ax.get_ylim()
    for method, name, colour, style in (*SEARCH_LINES, ("random", "random", "grey", ":")):
        value = baseline_value(baselines, method, "search")
        if np.isnan(value):
            continue
        if low <= value <= high:
            ax.axhline(value, color=colour, ls=style, lw=1.2, label=f"{name} (search)")
        else:
            outside["above" if value > high else "below"].append(f"{name} {value:.2f}")
    for side, y, arrow in (("above", 0.99, "\u2191"), ("below", 0.01, "\u2193")):
        if outside[side]:
            ax.text(0.01, y, f"search, {side} this range {arrow}: " + ", ".join(outside[side]), fontsize=8,
                    transform=ax.transAxes, va="top" if side == "above" else "bottom",
                    bbox=dict(facecolor="white", alpha=0.85, edgecolor="none", pad=1.5))
    for method, name, colour, style in (*REC_LINES, ("random", "random", "grey", ":")):
        value = baseline_value(baselines, method, "rec", protocol)
        if not np.isnan(value):
            ax.axvline(value, color=colour, ls=style, lw=1.2, label=f"{name} (rec, vertical)")


def plot_tradeoff(table: pd.DataFrame, baselines: pd.DataFrame):
    """Search vs rec Recall@k (``baselines``' cut-off), one point per scheme with 95% intervals (from
    ``scheme_table``: over seeds and cases when it was given seed-level rows), one panel per rec protocol; tuned
    BM25, dense search, SASRec, most-popular and random as reference lines."""
    import matplotlib.pyplot as plt

    k = recall_column_in(baselines).removeprefix("recall_at_")
    fig, axes = plt.subplots(1, 2, figsize=(14, 6.2), sharey=True)
    colours = plt.get_cmap("tab20")(np.linspace(0, 1, max(len(table), 2)))
    # zoomed on the schemes: their intervals and a margin for the labels, not 0 to 1
    low, high = (float(np.nanmin(table.search_lo)), float(np.nanmax(table.search_hi))) if len(table) else (0, 1)
    pad = 0.12 * max(high - low, 0.02)
    ylim = (max(0.0, low - pad), min(1.0, high + pad))
    pending = []  # labels are placed once each panel has its final limits
    for ax, (rec_col, protocol, title) in zip(axes, (("rec", "all", "rec: ranked list as decoded (paper-style)"),
                                                     ("rec_excl", "exclude_history", "rec: history items removed"))):
        labels = []
        for i, r in enumerate(table.itertuples()):
            x, y = getattr(r, rec_col), r.search
            if np.isnan(x) or np.isnan(y):
                continue
            xerr = [[x - getattr(r, f"{rec_col}_lo")], [getattr(r, f"{rec_col}_hi") - x]]
            yerr = [[y - r.search_lo], [r.search_hi - y]]
            marker = "o" if r.quantizer == "rq_kmeans" else "s"
            ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt=marker, color=colours[i], ms=7, capsize=2, lw=1,
                        label=f"{r.embedding} / {r.quantizer}")
            labels.append((x, y, r.embedding if r.quantizer == "rq_kmeans" else f"mt/{r.quantizer}"))
        ax.set_ylim(*ylim)
        _reference_lines(ax, baselines, protocol)
        ax.set_xlabel(f"rec Recall@{k} ({protocol})")
        ax.set_title(title, fontsize=10)
        pending.append((ax, labels))
    axes[0].set_ylabel(f"search Recall@{k}")
    handles, names = axes[1].get_legend_handles_labels()
    schemes = [(h, n) for h, n in zip(handles, names) if "/" in n]
    lines = [(h, n) for h, n in zip(handles, names) if "/" not in n]
    axes[1].legend(*zip(*schemes), loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8,
                   title="scheme (o RQ-KMeans, s other)")
    if lines:
        fig.legend(*zip(*lines), loc="lower center", ncol=len(lines), fontsize=8, frameon=False,
                   bbox_to_anchor=(0.45, -0.04), title="baselines on the same test cases (lines)",
                   title_fontsize=8)
    seeds = int(table.seeds.max()) if "seeds" in table and len(table) else 1
    over = f"over {seeds} seeds and test cases" if seeds > 1 else "over test cases, 1 seed"
    fig.suptitle(f"Search vs recommendation trade-off (mean, 95% intervals {over})", y=1.0)
    fig.tight_layout()
    for ax, labels in pending:
        _place_labels(ax, labels)
    return fig


def evaluation_metrics(table: pd.DataFrame, baselines: pd.DataFrame, verdict_table: pd.DataFrame,
                       headline_numbers: dict, decoding: pd.DataFrame, extra: dict) -> dict:
    """Notebook 06's recorded metrics: the headline, baselines, computed verdicts, decoding rows and every
    scheme's Recall@k columns (mean over seeds), plus ``extra`` (seed count, power, significant pairs)."""
    metrics = {**headline_numbers,
               "most_popular_rec_excl": baseline_value(baselines, "most_popular", "rec", "exclude_history"),
               "random_search": baseline_value(baselines, "random", "search"),
               "verdicts": {f"{getattr(r, 'family', r.finding)}/{r.task}": r.verdict
                            for r in verdict_table.itertuples()},
               "decoding": {f"{t}/{p}": dict(decoding.loc[(t, p)]) for t, p in decoding.index}, **extra}
    for r in table.itertuples():
        for col in ("search", "rec", "rec_excl", "rec_head", "rec_torso"):
            metrics[f"{r.embedding}__{r.quantizer}/{col}"] = getattr(r, col)
    return metrics


def case_counts(baselines: pd.DataFrame, results: pd.DataFrame) -> str:
    """One line: how many search and rec test cases every number rests on, and the seeds in the results."""
    b = baselines[baselines.segment == "all"]
    search = int(b[(b.method == "bm25")].n_cases.iloc[0])
    users = int(b[(b.method == "most_popular")].n_cases.iloc[0])
    seeds = sorted(results.seed.unique().tolist()) if len(results) else []
    return f"test cases: {search} search queries, {users} users; generator seeds in the results: {seeds}"
