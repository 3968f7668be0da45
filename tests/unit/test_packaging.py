"""Packaging: pyproject.toml is the single source of dependencies (environment.yml and run_all.sh only point at
it), the CI command is the README's, and notebooks are thin and stored without outputs."""

import ast
import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


def test_environment_yml_installs_the_package_and_nothing_else():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert {re.split("[=<>]", d)[0] for d in conda} == {"python", "pip"}
    assert any(line.startswith("-e .") for line in pip)
    extras = re.search(r"\[(.*)\]", next(line for line in pip if line.startswith("-e ."))).group(1).split(",")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert set(extras) <= set(project["optional-dependencies"])
    others = [line for line in pip if not line.startswith("-e .")]
    assert others == ["torch==2.13.0"], "only the CPU torch pin may stand beside the package"


def test_torch_pin_satisfies_pyproject_everywhere_it_is_installed():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    torch = next(Requirement(r) for r in project["dependencies"] if Requirement(r).name == "torch")
    assert torch.specifier.contains("2.13.0")
    assert "pip install --quiet --disable-pip-version-check torch==2.13.0" in (ROOT / "run_all.sh").read_text()
    # every dependency is a named requirement with a lower bound, never an unpinned URL
    for req in map(Requirement, project["dependencies"]):
        assert req.url is None and str(req.specifier), f"{req} needs a version bound"


def test_ci_runs_exactly_the_readme_test_command():
    assert "./run_all.sh --test" in (ROOT / ".ci/run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "./run_all.sh --test" in readme
    assert re.search(r"^\./run_all\.sh(\s+#|$)", readme, re.M), "README shows the plain study command"


NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
MAX_CODE_LINES = 80  # a notebook's code cells together; anything longer belongs in jointsid_utils


def code_cells(notebook: Path) -> list[dict]:
    return [c for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code"]


def test_notebooks_are_numbered_and_stored_without_outputs():
    assert NOTEBOOKS and all(re.match(r"\d\d_[a-z0-9_]+\.ipynb$", p.name) for p in NOTEBOOKS)
    for nb in NOTEBOOKS:
        assert not any(c.get("outputs") or c.get("execution_count") for c in code_cells(nb)), f"{nb.name} has outputs"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_thin(notebook):
    """One typed parameters cell, calls into the package, no definitions, at most MAX_CODE_LINES lines of code."""
    code = code_cells(notebook)
    params = [c for c in code if "parameters" in c["metadata"].get("tags", [])]
    assert len(params) == 1, f"{notebook.name} needs exactly one cell tagged 'parameters'"
    source = "".join(params[0]["source"])
    assert "profile: str =" in source and "overrides: dict =" in source, f"{notebook.name}: typed profile/overrides"
    sources = ["".join(c["source"]) for c in code]
    defined = [f"{type(node).__name__} {node.name}" for s in sources for node in ast.walk(ast.parse(s))
               if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    assert not defined, f"{notebook.name} defines {defined}; move them into jointsid_utils"
    lines = sum(1 for s in sources for line in s.splitlines() if line.strip() and not line.strip().startswith("#"))
    assert lines <= MAX_CODE_LINES, f"{notebook.name} has {lines} lines of code (at most {MAX_CODE_LINES})"


