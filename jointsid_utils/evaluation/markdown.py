"""A run's result tables as Markdown, rendered from a results folder (a run's, or the committed snapshot
``docs/results/``, ``evaluation.snapshot``), so the numbers in the README and docs are never typed by hand.

    python -m jointsid_utils.evaluation.markdown default      # a run's tables: runs/default/results/tables.md
    python -m jointsid_utils.evaluation.markdown --snapshot   # docs/results/ from the plain default run, then
                                                              # docs/RESULTS.md, the README's blocks, figures/
    python -m jointsid_utils.evaluation.markdown --check      # exit 1 when README or RESULTS.md differ

The README holds rendered blocks between ``<!-- results:NAME -->`` and ``<!-- /results:NAME -->``. Titles name
the folder's cut-off (``folder_k``: Recall@30 at the paper's ``evaluation.k``).

Tables A, B and "beyond the paper" (mean over seeds [95% interval over seeds and cases], the paper's number
beside ours), the computed verdicts on findings F1-F8 (``verdicts.csv``, a list the README embeds), the
paired tests of each family (difference, interval, Holm p, the detectable difference at the Holm level),
the joint constructions' validation numbers and the per-notebook timings.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Sequence

import pandas as pd

from jointsid_utils.cache import REPO_ROOT, atomic_path, run_dir
from jointsid_utils.errors import StudyInputError
from jointsid_utils.evaluation.snapshot import SNAPSHOT, collect, folder_k, read_meta
from jointsid_utils.metrics import recall_column_in

README = REPO_ROOT / "README.md"
RESULTS_DOC = REPO_ROOT / "docs" / "RESULTS.md"

NAMES = {"content": "content", "search": "search-tuned", "rec": "rec-tuned (ENMF)", "separate": "separate",
         "prefix_share": "prefix-share", "fused_concat": "fused concat", "fused_svd": "fused SVD",
         "multitask": "multi-task bi-encoder", "rq_kmeans": "RQ-KMeans", "rq_vae": "RQ-VAE (paper-like)",
         "rq_vae_fixed": "RQ-VAE fixed (k-means init + dead-code replacement)", "residual_lfq": "ResidualLFQ",
         "dict_learning": "dictionary learning"}


def _read(folder: Path, name: str) -> pd.DataFrame:
    path = Path(folder) / name
    if not path.exists():
        raise StudyInputError(f"{path} is missing; run notebook 06 (or take the snapshot) first.")
    return pd.read_csv(path)


def _optional(folder: Path, name: str) -> pd.DataFrame | None:
    """A results table that a run may leave out or write empty (no joint constructions trained)."""
    path = Path(folder) / name
    if not path.exists():
        return None
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return None


def _markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


def _cell(r: pd.Series, col: str, best: float | None) -> str:
    if pd.isna(r[col]):
        return "–"
    value = f"{r[col]:.3f}"
    value = f"**{value}**" if best is not None and value == f"{best:.3f}" else value  # as the reader sees them
    return f"{value} [{r[col + '_lo']:.3f}, {r[col + '_hi']:.3f}]"


def _paper(v: float) -> str:
    return "–" if pd.isna(v) else f"{v:.3f}"


def scheme_markdown(table: pd.DataFrame, by: str, *, k: int) -> str:
    """Table A (``by="embedding"``) or B (``by="quantizer"``) or the joint constructions: one row per scheme,
    Recall@``k``, the best value of each task in bold."""
    best = {c: table[c].max() for c in ("search", "rec", "rec_excl")}
    rows = [[NAMES.get(r[by], r[by]) if by != "scheme" else f"{r.embedding} / {r.quantizer}", int(r.seeds),
             _cell(r, "search", best["search"]), _paper(r.paper_search), _cell(r, "rec", best["rec"]),
             _paper(r.paper_rec), _cell(r, "rec_excl", best["rec_excl"])] for _, r in table.iterrows()]
    first = {"embedding": "IDs", "quantizer": "quantizer", "scheme": "scheme"}[by]
    return _markdown([first, "seeds", f"search Recall@{k}", "paper", f"rec Recall@{k}, all", "paper",
                      "rec, excl. history"], rows)


def pairs_markdown(pairs: pd.DataFrame) -> str:
    """Paired tests: a - b over (case, seed) with its interval, Holm p within the family and the MDE."""
    if pairs.empty:
        return "*No pairs.*"
    if "rec_protocol" in pairs:  # search rows repeat in the "exclude_history" family: show them once
        pairs = pairs[~((pairs.task == "search") & (pairs.rec_protocol == "exclude_history"))]

    def name(r: pd.Series) -> str:
        weight = f"{r.weight:g} x " if "weight" in r and r.weight != 1 else ""
        return f"{r.a} vs {weight}{r.b}"

    def task(r: pd.Series) -> str:  # the "exclude_history" family's rec rows, where the pairs file has them
        return f"{r.task}, excl. history" if r.task == "rec" and r.get("rec_protocol") == "exclude_history" else r.task

    def holm_p(r: pd.Series) -> str:
        return f"{_p(r.p_holm)} (one-sided)" if r.get("sided") == "one" else _p(r.p_holm)

    rows = [[name(r), task(r), f"{r.recall_a:.3f} / {r.recall_b:.3f}",
             f"{r['diff']:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}]", holm_p(r),
             "yes" if r.significant else "no", f"{r.detectable:.3f}"] for _, r in pairs.iterrows()]
    return _markdown(["comparison", "task", "recall a / b", "a - b [95% CI]", "Holm p", "significant",
                      "detectable (80%, Holm level)"], rows)


def _p(p: float) -> str:
    return f"{p:.4f}" if p >= 1e-4 else f"{p:.1e}"


def verdicts_markdown(verdicts: pd.DataFrame) -> str:
    """The computed verdict list (``results/verdicts.csv``): one line per finding and task, with the deciding
    comparison, its difference and the difference the family could detect."""
    def task(r: pd.Series) -> str:  # snapshots before the per-protocol families have neither column
        protocol = r.get("rec_protocol")
        return f"{r.task}, history excluded" if isinstance(protocol, str) and protocol != "all" else r.task

    def holm_p(r: pd.Series) -> str:
        return f"one-sided Holm p {_p(r.p_holm)}" if r.get("sided") == "one" else f"Holm p {_p(r.p_holm)}"

    lines = [f"- **{r.finding}** ({task(r)}): **{r.verdict}**; {r.comparison}: a - b {r['diff']:+.3f}, "
             f"{holm_p(r)}, detectable {r.detectable:.3f} (family of {int(r.m)}). Rule: {r.rule}."
             for _, r in verdicts.iterrows()]
    return "\n".join(lines) if lines else "*No finding was run.*"


def validation_markdown(folder: Path) -> str:
    """Validation Recall@k per scheme and task: mean over seeds [lowest, highest seed] (``validation.csv``)."""
    summary = _optional(folder, "validation.csv")
    if summary is None or summary.empty:
        return "*No job scored the validation cases.*"
    summary = summary.set_index("scheme")
    cols = [c for c in ("search (validation)", "rec (validation)", "seeds") if c in summary]
    return _markdown(["scheme", *cols], [[i, *(summary.loc[i, c] for c in cols)] for i in summary.index])


def timings_markdown(folder: Path) -> str:
    """Per-notebook wall time and peak RSS of the run (``timings.csv``), with the total."""
    t = _read(folder, "timings.csv")
    rows = [[r.notebook, f"{r.seconds:,.0f}", f"{r.peak_rss_mb:,.0f}"] for r in t.itertuples()]
    rows.append(["**total**", f"**{t.seconds.sum():,.0f}** ({t.seconds.sum() / 60:.0f} min)", ""])
    return _markdown(["notebook", "seconds", "peak RSS (MB)"], rows)


def baselines_markdown(baselines: pd.DataFrame) -> str:
    """Each baseline on the generator's test cases: Recall@k per task and rec protocol (mean over its training
    seeds, with their range where it has several), and the setting chosen on validation."""
    b, recall = baselines[baselines.segment == "all"], recall_column_in(baselines)
    columns = [("search", "all", "search"), ("rec", "all", "rec, all"), ("rec", "exclude_history", "rec, excl.")]
    rows = []
    for method, g in b.groupby("method", sort=False):
        row = [f"`{method}`"]
        for task, protocol, _ in columns:
            cell = g[(g.task == task) & (g.protocol == protocol)][recall]
            if cell.empty:
                row.append("–")
            elif len(cell) > 1:
                row.append(f"{cell.mean():.3f} (seeds {cell.min():.3f}-{cell.max():.3f})")
            else:
                row.append(f"{cell.iloc[0]:.3f}")
        setting = g.setting.dropna().astype(str)
        row.append(setting.iloc[0] if len(setting) and setting.iloc[0] else "")
        rows.append(row)
    rows += _two_systems(rows)
    return _markdown(["baseline", *(c[2] for c in columns), "setting (chosen on validation)"], rows)


def cutoffs_markdown(folder: Path) -> str:
    """Recall@k beside Recall and NDCG at the extra cut-offs (``metrics_by_cutoff.csv``), per scheme and baseline,
    for search and both rec protocols: mean over seeds and cases. Descriptive: verdicts read Recall@k only."""
    table = _optional(folder, "metrics_by_cutoff.csv")
    if table is None or table.empty:
        return ("*Pending the next reference run: this snapshot was taken before runs wrote "
                "`metrics_by_cutoff.csv` (Recall and NDCG at `evaluation.extra_k`, from the saved predictions).*")
    metrics = [c for c in table.columns if re.fullmatch(r"(recall|ndcg)_at_\d+", c)]
    groups = [("search", "all", "search"), ("rec", "all", "rec"), ("rec", "exclude_history", "rec excl.")]
    shown = {"recall": "Recall", "ndcg": "NDCG"}
    header = [f"{title} {shown[m.split('_at_')[0]]}@{m.split('_at_')[1]}" for _, _, title in groups for m in metrics]
    rows = []
    for (emb, quant), g in table.groupby(["embedding", "quantizer"], sort=False):
        cells = []
        for task, protocol, _ in groups:
            cell = g[(g.task == task) & (g.protocol == protocol)]
            cells += [f"{cell[m].iloc[0]:.3f}" if len(cell) else "–" for m in metrics]
        rows.append([f"`{quant}`" if emb == "baseline" else f"{emb} / {quant}", *cells])
    return _markdown(["scheme", *header], rows)


def _two_systems(rows: list[list[str]]) -> list[list[str]]:
    """The practitioner's pair as rows: the better search system of tuned BM25 and dense search, with SASRec
    for rec (the F7 comparison, from the rows above)."""
    by = {r[0].strip("`"): r for r in rows}
    if "sasrec" not in by:
        return []
    out = []
    for search in ("bm25_tuned", "dense_search"):
        if search in by:
            out.append([f"**two systems**: `{search}` + `sasrec`", by[search][1], *by["sasrec"][2:4], ""])
    return out


def variance_markdown(variance: pd.DataFrame) -> str:
    """Per scheme and task: the seed SD (of the seed means), the case SD, the item-cluster design effect and the
    two parts of the standard error, so a reader can see whether more seeds or more cases would help."""
    v = variance[variance.protocol == "all"] if "protocol" in variance else variance
    recall = recall_column_in(variance)
    rows = [[f"{r.embedding} / {r.quantizer}", r.task, f"{getattr(r, recall):.3f}", f"{r.seed_sd:.4f}",
             f"{r.case_sd:.3f}", f"{r.design_effect:.2f}", f"{r.se_seed:.4f}", f"{r.se_case:.4f}",
             f"{int(r.n_seeds)} x {int(r.n_cases)} ({int(r.n_items)} items)"] for r in v.itertuples()]
    k = recall.removeprefix("recall_at_")
    return _markdown(["scheme", "task", f"Recall@{k}", "seed SD", "case SD", "design effect", "SE from seeds",
                      "SE from cases", "seeds x cases"], rows)


def subsets_markdown(table: pd.DataFrame, schemes: Sequence[str]) -> str:
    """Search Recall@k per query subset (all, known item, each kind) for the named schemes (``emb/quant``)."""
    t, recall = table.assign(scheme=table.embedding + "/" + table.quantizer), recall_column_in(table)
    t = t[t.scheme.isin(schemes)]
    subsets = list(dict.fromkeys(t.subset))
    rows = []
    for scheme in schemes:
        g = t[t.scheme == scheme].set_index("subset")
        if len(g):
            rows.append([scheme, *(f"{g[recall][s]:.3f}" if s in g.index else "–" for s in subsets)])
    counts = t.drop_duplicates("subset").set_index("subset").n_cases
    return _markdown(["scheme", *(f"{s} ({int(counts[s])})" for s in subsets)], rows)


def source_line(folder: Path) -> str:
    meta = read_meta(folder)
    if not meta:
        return ""
    return (f"*From the `{meta.get('profile')}` run of {meta.get('date')} at commit `{meta.get('commit')}` (config "
            f"`{meta.get('config_hash')}`), on {meta.get('machine')}.*")


def beyond_markdown(folder: Path) -> str:
    """The joint constructions beside multi-task x RQ-KMeans and the best single-task IDs of each task
    (search-tuned and ENMF, from table A), so the reader sees at once whether one ID space serves both tasks
    as well as two task-specific ones do; bold marks the best of these rows."""
    beyond = _optional(folder, "table_beyond.csv")
    if beyond is None or len(beyond) < 2:  # the incumbent alone: the constructions were not trained
        return "*The joint constructions were not trained in this run.*"
    table_a = _read(folder, "table_a.csv")
    single = table_a[table_a.embedding.isin(["search", "rec"]) & (table_a.quantizer == "rq_kmeans")]
    return scheme_markdown(pd.concat([single, beyond], ignore_index=True), "scheme", k=folder_k(folder))


def blocks(folder: Path) -> dict[str, str]:
    """The README's rendered blocks, by name."""
    verdicts = _optional(folder, "verdicts.csv")
    baselines = _optional(folder, "baselines.csv")
    k = folder_k(folder)
    return {
        "source": source_line(folder),
        "table-a": scheme_markdown(_read(folder, "table_a.csv"), "embedding", k=k),
        "table-b": scheme_markdown(_read(folder, "table_b.csv"), "quantizer", k=k),
        "beyond": beyond_markdown(folder),
        "verdicts": verdicts_markdown(verdicts if verdicts is not None else pd.DataFrame()),
        "baselines": baselines_markdown(baselines) if baselines is not None else "*No baselines.*",
        "timings": timings_markdown(folder),
    }


def results_markdown(folder: Path, title: str = "Results") -> str:
    """Every table of a results folder, as one Markdown document."""
    k = folder_k(folder)
    parts = [f"# {title}", source_line(folder), "## Table A: how the IDs are built (RQ-KMeans)",
             scheme_markdown(_read(folder, "table_a.csv"), "embedding", k=k),
             "## Table B: quantizers on the multi-task embedding",
             scheme_markdown(_read(folder, "table_b.csv"), "quantizer", k=k)]
    baselines = _optional(folder, "baselines.csv")
    if baselines is not None:
        parts += ["## Baselines on the same test cases", baselines_markdown(baselines)]
    parts += [f"## Recall and NDCG at other cut-offs, beside Recall@{k} (mean over seeds; no verdict reads them)",
              cutoffs_markdown(folder)]
    beyond = _optional(folder, "table_beyond.csv")
    if beyond is not None and len(beyond) > 1:  # the incumbent alone: the constructions were not trained
        parts += ["## Beyond the paper: joint constructions", scheme_markdown(beyond, "scheme", k=k),
                  "### Their validation numbers", validation_markdown(folder)]
    verdicts = _optional(folder, "verdicts.csv")
    if verdicts is not None:
        parts += ["## Verdicts on the declared findings (computed)", verdicts_markdown(verdicts)]
    families = [(f"F{i}", f"Finding F{i}: its family of paired tests (Holm within the family)") for i in range(1, 9)]
    for family, title_ in (*families,
                           ("joint", "All pairs of the paper's joint schemes (Holm within each task)"),
                           ("beyond", "Each construction against multi-task x RQ-KMeans (one Holm family)")):
        pairs = _optional(folder, f"pairs_{family}.csv")
        if pairs is not None and len(pairs):
            parts += [f"## {title_}", pairs_markdown(pairs)]
    variance = _optional(folder, "variance.csv")
    if variance is not None and len(variance):
        parts += ["## Variance: seeds against cases", variance_markdown(variance)]
    by_kind = _optional(folder, "search_by_query_kind.csv")
    if by_kind is not None and len(by_kind):
        schemes = list(dict.fromkeys(by_kind.embedding + "/" + by_kind.quantizer))
        parts += ["## Search per query subset (known item, kind)", subsets_markdown(by_kind, schemes)]
    parts += ["## Timings", timings_markdown(folder)]
    return "\n\n".join(p for p in parts if p) + "\n"


def render_readme(text: str, rendered: dict[str, str]) -> str:
    """``text`` with every ``<!-- results:NAME -->`` ... ``<!-- /results:NAME -->`` block replaced by its
    rendering; a block name the renderer does not know fails."""
    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in rendered:
            raise StudyInputError(f"README block 'results:{name}' is unknown; use one of: {', '.join(rendered)}.")
        return f"<!-- results:{name} -->\n{rendered[name]}\n<!-- /results:{name} -->"

    return re.sub(r"<!-- results:([\w-]+) -->.*?<!-- /results:\1 -->", replace, text, flags=re.S)


def expected_documents(folder: Path = SNAPSHOT) -> dict[Path, str]:
    """What README.md and docs/RESULTS.md must read, rendered from the snapshot."""
    return {README: render_readme(README.read_text(), blocks(folder)),
            RESULTS_DOC: results_markdown(folder, "Results of the reference `default` run")}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args[:1] == ["--check"]:
            stale = [str(p.relative_to(REPO_ROOT)) for p, text in expected_documents().items()
                     if not p.exists() or p.read_text() != text]
            if stale:
                print(f"error: {', '.join(stale)} differ from the snapshot in docs/results/; run "
                      "python -m jointsid_utils.evaluation.markdown --render.", file=sys.stderr)
                return 1
            return 0
        if args[:1] in (["--snapshot"], ["--render"]):
            if args[0] == "--snapshot":
                from jointsid_utils.notebook import publish_figures

                profile = args[1] if len(args) > 1 else "default"
                publish_figures(profile)  # refuses a run made with overrides
                collect(profile, SNAPSHOT)
            for path, text in expected_documents().items():
                with atomic_path(path) as tmp:
                    tmp.write_text(text)
            print(f"rendered {README.name} and docs/{RESULTS_DOC.name} from {SNAPSHOT}")
            return 0
        profile = args[0] if args else "default"
        folder = collect(profile, run_dir(profile, "results"))
        text = results_markdown(folder, f"Results of profile `{profile}`")
    except StudyInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    with atomic_path(folder / "tables.md") as tmp:
        tmp.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
