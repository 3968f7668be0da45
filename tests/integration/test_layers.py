"""The package's layers (pyproject.toml ``[tool.importlinter]``): every import points down a stage.

A second run on a copy of the package with one upward import added shows the contract can fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LINT = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"]


def lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([*LINT, "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=120)


def test_layers_contract_is_kept():
    result = lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    shutil.copytree(REPO / "jointsid_utils", tmp_path / "jointsid_utils",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    summary = tmp_path / "jointsid_utils" / "data" / "summary.py"
    summary.write_text(summary.read_text() + "\nfrom jointsid_utils.evaluation import report  # noqa: E402\n")
    result = lint(tmp_path)
    assert result.returncode != 0
    assert "jointsid_utils.data is not allowed to import jointsid_utils.evaluation" in result.stdout
