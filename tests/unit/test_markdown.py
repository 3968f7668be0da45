"""The README's tables are rendered from a run's result files: values, intervals, bold best, missing files."""

import pandas as pd
import pytest

from jointsid_utils.errors import StudyInputError
from jointsid_utils.evaluation import markdown


def _table(schemes, values):
    rows = []
    for (emb, quant), (search, rec) in zip(schemes, values):
        row = {"embedding": emb, "quantizer": quant, "seeds": 3, "paper_search": 0.046, "paper_rec": float("nan")}
        for col, v in (("search", search), ("rec", rec), ("rec_excl", rec + 0.05)):
            row.update({col: v, f"{col}_lo": v - 0.02, f"{col}_hi": v + 0.02})
        rows.append(row)
    return pd.DataFrame(rows)


def test_tables_render_from_the_result_files(runs_dir):
    results = runs_dir / "smoke" / "results"
    results.mkdir(parents=True)
    _table([("content", "rq_kmeans"), ("multitask", "rq_kmeans")], [(0.4, 0.2), (0.6, 0.1)]).to_csv(
        results / "table_a.csv", index=False)
    _table([("multitask", "rq_kmeans"), ("multitask", "rq_vae")], [(0.6, 0.1), (0.5, 0.15)]).to_csv(
        results / "table_b.csv", index=False)
    pd.DataFrame([{"a": "search/rq_kmeans", "b": "content/rq_kmeans", "task": "search", "diff": 0.2,
                   "ci_low": 0.15, "ci_high": 0.25, "p_value": 0.001, "p_holm": 0.002, "detectable": 0.03,
                   "recall_a": 0.6, "recall_b": 0.4, "significant": True, "weight": 1.0}]).to_csv(
        results / "pairs_F1.csv", index=False)
    pd.DataFrame([{"finding": "F1", "family": "F1", "task": "search", "verdict": "reproduces", "diff": 0.2,
                   "detectable": 0.03, "comparison": "search/rq_kmeans vs content/rq_kmeans (search)",
                   "p_holm": 0.002, "m": 4, "candidate": "", "rule": "task-specific IDs win"}]).to_csv(
        results / "verdicts.csv", index=False)
    pd.DataFrame({"notebook": ["01_data", "05_generator"], "seconds": [20.0, 3600.0],
                  "peak_rss_mb": [600.0, 2800.0]}).to_csv(results / "timings.csv", index=False)

    text = markdown.results_markdown(results, "Results of profile `smoke`")
    assert "| multi-task bi-encoder | 3 | **0.600** [0.580, 0.620] | 0.046 | 0.100 [0.080, 0.120] | – |" in text
    assert "| content | 3 | 0.400 [0.380, 0.420] | 0.046 | **0.200** [0.180, 0.220] |" in text
    assert "| RQ-VAE (paper-like) | 3 |" in text
    assert "| search/rq_kmeans vs content/rq_kmeans | search | 0.600 / 0.400 | +0.200 [+0.150, +0.250] | 0.0020 | yes | 0.030 |" in text
    assert ("- **F1** (search): **reproduces**; search/rq_kmeans vs content/rq_kmeans (search): a - b +0.200, "
            "Holm p 0.0020, detectable 0.030 (family of 4). Rule: task-specific IDs win.") in text
    assert "| **total** | **3,620** (60 min) |  |" in text
    assert "Beyond the paper" not in text  # no table_beyond.csv: no section

    # a run without the joint constructions writes the incumbent alone and an empty pairs file
    _table([("multitask", "rq_kmeans")], [(0.6, 0.1)]).to_csv(results / "table_beyond.csv", index=False)
    (results / "pairs_beyond.csv").write_text("\n")
    assert markdown.results_markdown(results, "Results of profile `smoke`") == text
    assert markdown.blocks(results)["beyond"] == "*The joint constructions were not trained in this run.*"


def test_the_beyond_block_puts_constructions_beside_the_single_task_ids(runs_dir):
    results = runs_dir / "smoke" / "results"
    results.mkdir(parents=True)
    _table([("content", "rq_kmeans"), ("search", "rq_kmeans"), ("rec", "rq_kmeans"), ("search", "rq_vae")],
           [(0.4, 0.15), (0.6775, 0.12), (0.3, 0.25), (0.5, 0.1)]).to_csv(results / "table_a.csv", index=False)
    _table([("multitask", "rq_kmeans"), ("shared_then_task", "rq_kmeans")], [(0.65, 0.2), (0.62, 0.23)]).to_csv(
        results / "table_beyond.csv", index=False)
    rows = [line for line in markdown.beyond_markdown(results).splitlines() if line.startswith("| ") and "/" in line]
    assert [r.split(" | ")[0] for r in rows] == ["| search / rq_kmeans", "| rec / rq_kmeans",
                                                 "| multitask / rq_kmeans", "| shared_then_task / rq_kmeans"]
    # bold as printed, however numpy and Python round 0.6775
    assert "**0.677**" in rows[0] and "**0.250**" in rows[1] and "**" not in rows[3]


def test_a_missing_result_file_is_named(runs_dir):
    with pytest.raises(StudyInputError, match="table_a.csv is missing; run notebook 06"):
        markdown.results_markdown(runs_dir / "smoke" / "results")
    assert markdown.main(["smoke"]) == 2


def test_readme_blocks_are_replaced_and_unknown_ones_fail():
    text = "intro\n<!-- results:table-a -->\nold 0.123\n<!-- /results:table-a -->\nend\n"
    assert markdown.render_readme(text, {"table-a": "| new |"}) == \
        "intro\n<!-- results:table-a -->\n| new |\n<!-- /results:table-a -->\nend\n"
    with pytest.raises(StudyInputError, match="results:table-a' is unknown"):
        markdown.render_readme(text, {"verdicts": ""})


def test_readme_and_results_doc_match_the_committed_snapshot():
    """Edit one number in the README's result blocks or in docs/RESULTS.md by hand and this fails: both are
    rendered from docs/results/ (python -m jointsid_utils.evaluation.markdown --render)."""
    assert (markdown.SNAPSHOT / "meta.json").exists(), "docs/results/ holds no snapshot; take it with --snapshot"
    expected = markdown.expected_documents()
    for path, text in expected.items():
        assert path.read_text() == text, f"{path.name} differs from its rendering of docs/results/"
    assert "<!-- results:table-a -->" in expected[markdown.README]
    assert markdown.main(["--check"]) == 0


