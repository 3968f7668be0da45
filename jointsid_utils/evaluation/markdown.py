"""A run's result tables as Markdown, from the files notebooks 05 and 06 wrote, so that the numbers in the
README and docs are pasted from one run and never typed by hand.

    python -m jointsid_utils.evaluation.markdown default      # prints; writes runs/default/results/tables.md

Tables A, B and "beyond the paper" (mean over seeds [95% interval over seeds and cases], the paper's number
beside ours), the computed verdicts on findings F1-F8 (``verdicts.csv``, a list the README embeds), the
paired tests of each family (difference, interval, Holm p, the detectable difference at the Holm level),
the joint constructions' validation numbers and the per-notebook timings.
"""

from __future__ import annotations

import sys
from typing import Sequence

import pandas as pd

from jointsid_utils.cache import atomic_path, run_dir
from jointsid_utils.errors import StudyInputError

NAMES = {"content": "content", "search": "search-tuned", "rec": "rec-tuned (ENMF)", "separate": "separate",
         "prefix_share": "prefix-share", "fused_concat": "fused concat", "fused_svd": "fused SVD",
         "multitask": "multi-task bi-encoder", "rq_kmeans": "RQ-KMeans", "rq_vae": "RQ-VAE (paper-like)",
         "rq_vae_fixed": "RQ-VAE fixed (k-means init + dead-code replacement)", "residual_lfq": "ResidualLFQ",
         "dict_learning": "dictionary learning"}


def _read(profile: str, name: str) -> pd.DataFrame:
    path = run_dir(profile, "results") / name
    if not path.exists():
        raise StudyInputError(f"{path} is missing; run notebook 06 on profile {profile!r} first.")
    return pd.read_csv(path)


def _optional(profile: str, name: str) -> pd.DataFrame | None:
    """A results table that a run may leave out or write empty (no joint constructions trained)."""
    path = run_dir(profile, "results") / name
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
    value = f"**{value}**" if best is not None and round(r[col], 3) == round(best, 3) else value
    return f"{value} [{r[col + '_lo']:.3f}, {r[col + '_hi']:.3f}]"


def _paper(v: float) -> str:
    return "–" if pd.isna(v) else f"{v:.3f}"


def scheme_markdown(table: pd.DataFrame, by: str) -> str:
    """Table A (``by="embedding"``) or B (``by="quantizer"``) or the joint constructions: one row per scheme,
    the best value of each task in bold."""
    best = {c: table[c].max() for c in ("search", "rec", "rec_excl")}
    rows = [[NAMES.get(r[by], r[by]) if by != "scheme" else f"{r.embedding} / {r.quantizer}", int(r.seeds),
             _cell(r, "search", best["search"]), _paper(r.paper_search), _cell(r, "rec", best["rec"]),
             _paper(r.paper_rec), _cell(r, "rec_excl", best["rec_excl"])] for _, r in table.iterrows()]
    first = {"embedding": "IDs", "quantizer": "quantizer", "scheme": "scheme"}[by]
    return _markdown([first, "seeds", "search Recall@30", "paper", "rec Recall@30, all", "paper",
                      "rec, excl. history"], rows)


def pairs_markdown(pairs: pd.DataFrame) -> str:
    """Paired tests: a - b over (case, seed) with its interval, Holm p within the family and the MDE."""
    if pairs.empty:
        return "*No pairs.*"
    def name(r: pd.Series) -> str:
        weight = f"{r.weight:g} x " if "weight" in r and r.weight != 1 else ""
        return f"{r.a} vs {weight}{r.b}"

    rows = [[name(r), r.task, f"{r.recall_a:.3f} / {r.recall_b:.3f}",
             f"{r['diff']:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}]", _p(r.p_holm),
             "yes" if r.significant else "no", f"{r.detectable:.3f}"] for _, r in pairs.iterrows()]
    return _markdown(["comparison", "task", "recall a / b", "a - b [95% CI]", "Holm p", "significant",
                      "detectable (80%, Holm level)"], rows)


def _p(p: float) -> str:
    return f"{p:.4f}" if p >= 1e-4 else f"{p:.1e}"


def verdicts_markdown(verdicts: pd.DataFrame) -> str:
    """The computed verdict list (``results/verdicts.csv``): one line per finding and task, with the deciding
    comparison, its difference and the difference the family could detect."""
    lines = [f"- **{r.finding}** ({r.task}): **{r.verdict}**; {r.comparison}: a - b {r['diff']:+.3f}, "
             f"Holm p {_p(r.p_holm)}, detectable {r.detectable:.3f} (family of {int(r.m)}). Rule: {r.rule}."
             for _, r in verdicts.iterrows()]
    return "\n".join(lines) if lines else "*No finding was run.*"


def validation_markdown(profile: str) -> str:
    """Validation Recall@30 per scheme and task: mean over seeds [lowest, highest seed]."""
    from jointsid_utils.evaluation.report import validation_summary
    from jointsid_utils.generator.orchestration import validation_table

    summary = validation_summary(validation_table(profile))
    if summary.empty:
        return "*No job scored the validation cases.*"
    cols = [c for c in ("search (validation)", "rec (validation)", "seeds") if c in summary]
    return _markdown(["scheme", *cols], [[i, *(summary.loc[i, c] for c in cols)] for i in summary.index])


def timings_markdown(profile: str) -> str:
    """Per-notebook wall time and peak RSS of the last run (``runs/<profile>/timings.csv``), with the total."""
    path = run_dir(profile) / "timings.csv"
    if not path.exists():
        raise StudyInputError(f"{path} is missing; run ./run_all.sh --profile {profile} first.")
    t = pd.read_csv(path)
    rows = [[r.notebook, f"{r.seconds:,.0f}", f"{r.peak_rss_mb:,.0f}"] for r in t.itertuples()]
    rows.append(["**total**", f"**{t.seconds.sum():,.0f}** ({t.seconds.sum() / 60:.0f} min)", ""])
    return _markdown(["notebook", "seconds", "peak RSS (MB)"], rows)


def results_markdown(profile: str) -> str:
    """Every table above, as one Markdown document."""
    parts = [f"# Results of profile `{profile}`", "## Table A: how the IDs are built (RQ-KMeans)",
             scheme_markdown(_read(profile, "table_a.csv"), "embedding"),
             "## Table B: quantizers on the multi-task embedding",
             scheme_markdown(_read(profile, "table_b.csv"), "quantizer")]
    beyond = _optional(profile, "table_beyond.csv")
    if beyond is not None and len(beyond) > 1:  # the incumbent alone: the constructions were not trained
        parts += ["## Beyond the paper: joint constructions", scheme_markdown(beyond, "scheme"),
                  "### Their validation numbers", validation_markdown(profile)]
    verdicts = _optional(profile, "verdicts.csv")
    if verdicts is not None:
        parts += ["## Verdicts on the declared findings (computed)", verdicts_markdown(verdicts)]
    families = [(f"F{i}", f"Finding F{i}: its family of paired tests (Holm within the family)") for i in range(1, 9)]
    for family, title in (*families,
                          ("joint", "All pairs of the paper's joint schemes (Holm within each task)"),
                          ("beyond", "Each construction against multi-task x RQ-KMeans (one Holm family)")):
        pairs = _optional(profile, f"pairs_{family}.csv")
        if pairs is not None and len(pairs):
            parts += [f"## {title}", pairs_markdown(pairs)]
    parts += ["## Timings", timings_markdown(profile)]
    return "\n\n".join(parts) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    profile = args[0] if args else "default"
    try:
        text = results_markdown(profile)
    except StudyInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = run_dir(profile, "results") / "tables.md"
    with atomic_path(out) as tmp:
        tmp.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
