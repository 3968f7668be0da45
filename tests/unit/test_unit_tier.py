"""The unit tier stays unit-level: no file under tests/unit starts a process, runs a notebook or trains a model.

A static check over the tier's source, cheap enough to run with it. Tests that need any of these belong in
tests/integration, or in tests/smoke when they read a smoke run.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parent
# what starts other processes or executes notebooks
PROCESS_MODULES = ("subprocess", "multiprocessing", "concurrent.futures", "papermill")
# the package's entry points that train a model (generator, encoder fine-tune, ENMF, SASRec)
TRAINING_ENTRY_POINTS = {
    "jointsid_utils.generator.training": ("train_scheme", "train_generator"),
    "jointsid_utils.generator.job": ("train_and_predict",),
    "jointsid_utils.generator.orchestration": ("train_all_schemes",),
    "jointsid_utils.embeddings.finetune": ("finetune",),
    "jointsid_utils.embeddings.enmf": ("train_one", "fit_rec", "choose_rec"),
    "jointsid_utils.evaluation.sasrec": ("train_sasrec",),
}
TRAINERS = {name for names in TRAINING_ENTRY_POINTS.values() for name in names}


def _is_process_module(name: str) -> bool:
    return any(name == m or name.startswith(m + ".") for m in PROCESS_MODULES)


def _refusals(tree: ast.AST) -> set[ast.AST]:
    """Nodes inside ``with pytest.raises(...)``: a trainer called there must refuse its input before training."""
    inside = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.With) and any("raises" in ast.unparse(i.context_expr) for i in node.items):
            inside.update(n for stmt in node.body for n in ast.walk(stmt))
    return inside


def violations(source: str) -> list[str]:
    """What in ``source`` has no place in a unit test: importing a process module, or calling a trainer
    anywhere but where it must refuse its input."""
    tree = ast.parse(source)
    refusals = _refusals(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"imports {a.name}" for a in node.names if _is_process_module(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.module and _is_process_module(node.module):
            found.append(f"imports from {node.module}")
        elif isinstance(node, ast.Call) and node not in refusals:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in TRAINERS:
                found.append(f"calls {name} (line {node.lineno})")
    return found


def test_every_listed_trainer_exists_in_the_package():
    for module, names in TRAINING_ENTRY_POINTS.items():
        missing = [n for n in names if not callable(getattr(importlib.import_module(module), n, None))]
        assert not missing, f"{module} has no {missing}: update TRAINING_ENTRY_POINTS to the package's trainers"


@pytest.mark.parametrize("source", [
    "import subprocess", "import multiprocessing as mp", "from concurrent.futures import ProcessPoolExecutor",
    "import papermill", "orchestration.train_all_schemes(cfg)",
    "model = sasrec.train_sasrec(seqs, 40, setting, bcfg)",
    "with pytest.raises(ValueError):\n    pass\ntrain_and_predict('content', codes, items, inter, queries, TINY, 0)"])
def test_the_check_catches_each_kind(source):
    assert violations(source)


def test_the_check_passes_plain_unit_code_and_a_refused_input():
    assert violations("import numpy as np\nfrom jointsid_utils.embeddings import finetune\nx = finetune.INFO") == []
    assert violations("with pytest.raises(StudyInputError, match='decoding'):\n"
                      "    train_and_predict('content', codes, items, inter, queries, bad, 0)") == []


def test_no_unit_test_starts_a_process_runs_a_notebook_or_trains():
    found = {str(p.relative_to(UNIT)): v for p in sorted(UNIT.rglob("*.py")) if p != Path(__file__)
             if (v := violations(p.read_text()))}
    assert not found, f"these belong in tests/integration (or tests/smoke): {found}"
