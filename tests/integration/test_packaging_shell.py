"""run_all.sh parses and runs in bash's strict mode."""

import subprocess
from pathlib import Path


ROOT = Path(__file__).resolve().parents[2]


def test_run_all_shell_is_valid_and_strict():
    text = (ROOT / "run_all.sh").read_text()
    assert "set -euo pipefail" in text
    subprocess.run(["bash", "-n", str(ROOT / "run_all.sh")], check=True)
