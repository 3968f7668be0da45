"""Every choice is made on validation only (STUDY.md §2, "Choices are made on validation only").

Each selector runs twice on the same data: once as is and once with the **test split poisoned** (test
interactions' items and test queries' targets redrawn at random, test query texts shuffled; train and
validation rows untouched). What it chooses (ENMF's c0 and epoch, a fine-tune's best checkpoint, the
recommended codebook size, the generator's best checkpoint and its validation decoding, every bench's
scores) must not move. A selector that read a test row would see different data and, as the canary shows,
choose differently. Every stage chooses on the same validation split (``data.split.validation_queries``
and each user's validation item); the benches are also checked statically for any read of the test split.

Sizes are tiny (the 40 most-rated items of the smoke slice of ML-100K, a few ENMF epochs and MNRL steps,
the toy generator) so the file runs in about a minute on one thread.
"""

from __future__ import annotations

import ast
import importlib.util
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jointsid_utils.config import load_config
from jointsid_utils.data.dataset import load_dataset
from jointsid_utils.data.split import selection_view
from jointsid_utils.embeddings import multitask, search
from jointsid_utils.embeddings.enmf import fit_rec, train_one
from jointsid_utils.embeddings.finetune import encode_items_with
from jointsid_utils.embeddings.inputs import EmbeddingData, histories, targets
from jointsid_utils.errors import StudyInputError
from jointsid_utils.queries.stage import generate_queries
from generator_fixtures import TINY, toy_data

# The smoke slice cut to 40 items (a fine-tune spends its time encoding); ENMF 10 epochs (validation at 5
# and 10) x 2 c0; fine-tunes of 2 (search) and 4 (multitask) MNRL steps with two validation passes each,
# so there is a checkpoint to choose.
OVERRIDES = {"data.max_items": 40, "embeddings.enmf_epochs": 10, "embeddings.enmf_c0_grid": (0.01, 0.5),
             "embeddings.finetune_max_pairs": 16, "embeddings.multitask_max_item_pairs": 16,
             "embeddings.finetune_batch_size": 8, "embeddings.finetune_lr": 1e-4,
             "embeddings.finetune_val_queries": 10, "embeddings.finetune_evals_per_epoch": 2,
             "embeddings.finetune_min_eval_steps": 1}


def poison(interactions: pd.DataFrame, queries: pd.DataFrame, n_items: int,
           seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Copies whose test rows are garbage and whose other rows are untouched."""
    gen = np.random.default_rng(seed)
    inter, q = interactions.copy(), queries.copy()
    test_i, test_q = (inter["split"] == "test").to_numpy(), (q["split"] == "test").to_numpy()
    inter.loc[test_i, "item_id"] = gen.integers(0, n_items, int(test_i.sum()))
    q.loc[test_q, "query"] = gen.permutation(q.loc[test_q, "query"].to_numpy())
    q.loc[test_q, "item_id"] = gen.integers(0, n_items, int(test_q.sum()))
    assert (inter["item_id"] != interactions["item_id"]).mean() > 0.5 * test_i.mean()
    assert (q["item_id"] != queries["item_id"]).mean() > 0.5 * test_q.mean()
    pd.testing.assert_frame_equal(inter[~test_i], interactions[~test_i])
    pd.testing.assert_frame_equal(q[~test_q], queries[~test_q])
    return inter, q


@pytest.fixture(scope="module")
def smoke():
    """(items, {"clean": (interactions, queries), "poisoned": (...)}) on a slice of ML-100K."""
    cfg = load_config("smoke", OVERRIDES)
    items, interactions = load_dataset(cfg)
    queries = generate_queries(items, cfg)
    assert (queries["split"] == "validation").any()  # the split every selector chooses on
    return items, {"clean": (interactions, queries), "poisoned": poison(interactions, queries, len(items))}


@pytest.fixture(scope="module")
def module_runs(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JOINTSID_RUNS_DIR", str(tmp_path_factory.mktemp("runs")))
        yield


@pytest.fixture(scope="module")
def enmf_fits(smoke):
    items, frames = smoke
    cfg = load_config("smoke", OVERRIDES)
    return {name: fit_rec(EmbeddingData(items, *pair), cfg) for name, pair in frames.items()}


def checkpoint_choice(path: Path) -> dict:
    """What a fine-tune chose and on what: every validation pass's scores, the best step, the train losses."""
    log = json.loads((path / "training_log.json").read_text())
    evals = [{k: v for k, v in r.items() if k.startswith("eval_") and not k.endswith(("runtime", "per_second"))}
             | {"step": r["step"]} for r in log["log_history"] if "eval_score" in r]
    return {"baseline": log["baseline"], "evals": evals, "best_metric": log["best_metric"],
            "best_checkpoint": Path(log["best_checkpoint"]).name,
            "losses": [r["loss"] for r in log["log_history"] if "loss" in r]}


@pytest.fixture(scope="module")
def finetunes(smoke, module_runs):
    """method -> variant -> (checkpoint choice, item vectors of the chosen model)."""
    items, frames = smoke
    cfg = load_config("smoke", OVERRIDES)
    out: dict[str, dict] = {}
    for module in (search, multitask):
        out[module.METHOD] = {}
        for name, pair in frames.items():  # the poisoned frames hash to another key: trained afresh
            data = EmbeddingData(items, *pair)
            path = module.train(data, cfg)
            out[module.METHOD][name] = (checkpoint_choice(path), encode_items_with(cfg, path, data.texts))
    return out


def test_the_selection_view_holds_no_test_row_and_ignores_the_poison(smoke):
    _, frames = smoke
    clean, poisoned = selection_view(*frames["clean"]), selection_view(*frames["poisoned"])
    interactions, queries = frames["clean"]
    assert set(clean.interactions["split"]) == {"train", "validation"}
    assert set(clean.queries["split"]) == {"train", "validation"}
    assert len(clean.interactions) == int((interactions["split"] != "test").sum())
    assert len(clean.queries) == int((queries["split"] != "test").sum())
    for a, b in zip(clean, poisoned):
        pd.testing.assert_frame_equal(a, b)


def test_the_selection_view_fails_on_a_split_it_does_not_know(smoke):
    _, frames = smoke
    interactions, queries = frames["clean"]
    with pytest.raises(StudyInputError, match=r"split label\(s\) \['Test'\]"):
        selection_view(interactions.replace({"split": {"test": "Test"}}), queries)
    with pytest.raises(StudyInputError, match="no 'split' column"):
        selection_view(interactions, queries.drop(columns="split"))


def test_enmf_chooses_the_same_c0_epoch_and_vectors(enmf_fits):
    (items_a, users_a, log_a), (items_b, users_b, log_b) = enmf_fits["clean"], enmf_fits["poisoned"]
    assert len(log_a["runs"]) == 2 and all(len(r["curve"]) == 10 for r in log_a["runs"])
    assert (log_a["chosen_c0"], log_a["chosen_epoch"]) == (log_b["chosen_c0"], log_b["chosen_epoch"])
    assert [r["curve"] for r in log_a["runs"]] == [r["curve"] for r in log_b["runs"]]
    np.testing.assert_array_equal(items_a, items_b)
    np.testing.assert_array_equal(users_a, users_b)


def test_the_poison_moves_a_choice_that_reads_test_rows(smoke):
    """The canary: ENMF's own choice, but trained on train + test rows, does see the poison."""
    items, frames = smoke
    curves = []
    for interactions, _ in frames.values():
        val = targets(interactions, "validation")
        fit = train_one(histories(interactions, ("train", "test")), int(interactions["user_id"].max()) + 1,
                        len(items), c0=0.05, dim=16, epochs=5, batch_size=512, lr=0.05, optimizer="adagrad",
                        dropout=0.0, seed=0, k=load_config("smoke").evaluation.k, val_users=val.index.to_numpy(),
                        val_items=val.to_numpy(), progress=False)
        curves.append(fit.curve)
    assert curves[0] != curves[1]


@pytest.mark.parametrize("method", ["search", "multitask"])
def test_a_finetune_chooses_the_same_checkpoint(finetunes, method):
    (choice_a, vectors_a), (choice_b, vectors_b) = finetunes[method]["clean"], finetunes[method]["poisoned"]
    assert len(choice_a["evals"]) >= 2  # a real choice among several validation passes
    assert choice_a == choice_b
    np.testing.assert_allclose(vectors_a, vectors_b, rtol=0, atol=1e-6)


def test_the_codebook_size_recommendation_is_the_same(enmf_fits, finetunes):
    """``codebook_sweep`` reads item matrices only; those come from selectors that read no test row."""
    from jointsid_utils.ids.schemes import codebook_sweep, recommend_codebook_size, sweep_summary

    cfg = load_config("smoke")
    sweeps = [codebook_sweep(cfg, {"rec": enmf_fits[name][0], "multitask": finetunes["multitask"][name][1]},
                             sizes=(2, 4, 8)) for name in ("clean", "poisoned")]
    pd.testing.assert_frame_equal(*sweeps)
    assert recommend_codebook_size(sweep_summary(sweeps[0])) == recommend_codebook_size(sweep_summary(sweeps[1]))


def test_the_generator_chooses_the_same_checkpoint_and_decodes_validation_alike(tmp_path):
    from jointsid_utils.generator.examples import scheme_examples, validation_cases
    from jointsid_utils.generator.model import load_saved
    from jointsid_utils.generator.predict import predict_validation
    from jointsid_utils.generator.tokenization import make_id_scheme
    from jointsid_utils.generator.training import train_scheme
    from jointsid_utils.runtime.reproducibility import seed_everything

    items, interactions, queries, codes = toy_data()
    frames = {"clean": (interactions, queries), "poisoned": poison(interactions, queries, len(items))}
    gcfg = replace(TINY, epochs=3.0)
    scheme = make_id_scheme("content", codes)
    seen = {}
    for name, (inter, q) in frames.items():
        examples = scheme_examples(scheme, items, inter, q, gcfg, seed=0, case_seed=0)
        seed_everything(0)
        info = train_scheme(scheme, examples, items, q, gcfg, tmp_path / name, 0, key=name, work=tmp_path / f"{name}_work")
        tokenizer, model = load_saved(tmp_path / name)
        preds = predict_validation(model, tokenizer, scheme, examples, gcfg)
        seen[name] = {"examples": examples, "info": info, "preds": preds}
    a, b = seen["clean"], seen["poisoned"]
    # the poison reached the test cases, so the comparisons below could fail
    assert a["examples"].test_rec["target"].tolist() != b["examples"].test_rec["target"].tolist()
    assert a["examples"].test_search["query"].tolist() != b["examples"].test_search["query"].tolist()
    pd.testing.assert_frame_equal(a["examples"].train, b["examples"].train)
    pd.testing.assert_frame_equal(a["examples"].validation, b["examples"].validation)
    for task in ("search", "rec"):
        pd.testing.assert_frame_equal(validation_cases(a["examples"], task), validation_cases(b["examples"], task))
    evals = [[(r["epoch"], r["eval_loss"]) for r in s["info"]["log_history"] if "eval_loss" in r] for s in (a, b)]
    assert len(evals[0]) == 3 and evals[0] == evals[1]
    assert Path(a["info"]["best_checkpoint"]).name == Path(b["info"]["best_checkpoint"]).name
    assert a["preds"]["ranked"].tolist() == b["preds"]["ranked"].tolist()
    assert np.allclose(np.concatenate(a["preds"]["scores"].tolist()), np.concatenate(b["preds"]["scores"].tolist()))


# ----------------------------------------------------------------------------- benches

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"
# Names that read or decode the test split (test cases, test decoding, the dense check on test queries).
TEST_READERS = {"train_and_predict", "predict", "generator_test_cases", "search_test_queries", "test_search",
                "test_rec", "dense_recall_at_30", "predictions_path"}
# Benches that report test numbers once every choice was made on validation by a chooser with its own
# poison test; each is named with that test, so a new one is a decision, not an accident.
REPORTS_TEST_AFTER_CHOOSING = {
    "bench_baselines.py": "tune_bm25 and sasrec_grid choose on validation (tests/unit/test_sasrec.py)",
    "bench_snapshot_verdicts.py": "re-scores the committed snapshot's pairs rows under the declared rules; chooses nothing"}


def test_split_reads_in(path: Path) -> list[str]:
    """Where a bench names the "test" split or a helper that reads or decodes it."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        name = (node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute)
                else node.name if isinstance(node, ast.alias) else None)
        if isinstance(node, ast.Constant) and node.value == "test":
            found.append(f"line {node.lineno}: the string 'test'")
        elif name in TEST_READERS:
            found.append(f"line {getattr(node, 'lineno', '?')}: {name}")
    return found


test_split_reads_in.__test__ = False  # a helper, not a test


@pytest.mark.parametrize("path", sorted(BENCH_DIR.glob("*.py")), ids=lambda p: p.name)
def test_no_bench_reads_the_test_split(path):
    found = test_split_reads_in(path)
    if path.name in REPORTS_TEST_AFTER_CHOOSING:
        assert found, f"{path.name} no longer reads test: drop it from REPORTS_TEST_AFTER_CHOOSING"
    else:
        assert not found, f"{path.name} reads the test split ({'; '.join(found)}); score validation instead"


def bench_module(name: str):
    """A bench script imported as a module (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, BENCH_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def toy_frames(tmp_path, monkeypatch):
    """(study config with the toy generator, items, ID scheme, {"clean": ..., "poisoned": ...}) in a fresh runs dir."""
    from jointsid_utils.generator.tokenization import make_id_scheme

    monkeypatch.setenv("JOINTSID_RUNS_DIR", str(tmp_path))
    items, interactions, queries, codes = toy_data()
    cfg = replace(load_config("smoke"), generator=replace(TINY, epochs=2.0, seeds=(0,)))
    frames = {"clean": (interactions, queries), "poisoned": poison(interactions, queries, len(items))}
    return cfg, items, make_id_scheme("content", codes), frames


def without_timings(row: dict) -> dict:
    return {k: v for k, v in row.items() if not k.endswith("seconds")}


def test_the_generator_budget_bench_scores_the_same_under_a_poisoned_test_split(toy_frames, monkeypatch):
    bench = bench_module("bench_generator_budget")
    cfg, items, ids, frames = toy_frames
    out = {}
    for name, (inter, q) in frames.items():
        monkeypatch.setattr(bench, "variant_inputs", lambda *_, f=(inter, q): (cfg, items, *f, ids))
        out[name] = bench.run_variant(name, ("content", "toy"), "base", {})  # the profile names the model dir
    (row_a, hits_a), (row_b, hits_b) = out["clean"], out["poisoned"]
    assert (row_a["val_search_cases"], row_a["val_rec_cases"]) == (10, 12)  # generator.val_queries; every user
    assert without_timings(row_a) == without_timings(row_b) and hits_a == hits_b
    bench.paired_against_first([row_a, row_b], [hits_a, hits_b])
    assert row_b["paired_search_vs_base"] == [0.0, 0.0, 0.0]


def test_the_generator_throughput_bench_scores_the_same_under_a_poisoned_test_split(toy_frames, monkeypatch):
    from jointsid_utils.cache import run_dir
    from jointsid_utils.generator.examples import scheme_examples

    bench = bench_module("bench_generator_throughput")
    cfg, items, ids, frames = toy_frames
    rows = {}
    for name, (inter, q) in frames.items():
        ex = scheme_examples(ids, items, inter, q, cfg.generator, seed=0, case_seed=cfg.seed)
        monkeypatch.setattr(bench, "_job_inputs", lambda *_, f=(inter, q, ex): (cfg, cfg.generator, items, *f[:2],
                                                                              ids, f[2]))
        rows[name] = bench.variant_validation_recall(name, ("content", "toy"), "today", 0)
    assert without_timings(rows["clean"]) == without_timings(rows["poisoned"])
    hits = [np.load(run_dir(f"{name}_throughput", "today__content__toy__seed0") / "validation_hits.npz") for name in rows]
    for key in hits[0].files:
        np.testing.assert_array_equal(hits[0][key], hits[1][key])
