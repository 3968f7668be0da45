"""One way to decide reuse or rebuild: a stage, its key, and its locked store entry.

    stage = Stage("embeddings", build, outputs=("search.npy",), config=cfg_section,
                  inputs={"items": file_input(items_path)}, seed=cfg.seed)
    out = produce(stage, {"search.npy": run_folder / "embeddings" / "search.npy"})

A stage declares what its result depends on: its name, the config it reads, its inputs (other stages'
keys or files' content hashes), its seed, and its code, which is never declared by hand but derived from
the builder (``fingerprint.code_fingerprint``: the docstring-free source of every package module the
builder reaches). Their hash is the stage's key and names its store entry ``runs/.store/<name>/<key>/``:

    scratch/        the build's working space (checkpoints), kept when a build dies, so the next one resumes
    out/            the published outputs and ``stage.json``, renamed into place in one step

A build runs under the entry's file lock, writes into a temporary folder inside the entry and renames it to
``out/`` once every declared output is there; a second process that needs the same entry waits on the lock
and then loads. A builder that raises (or a process that is killed) publishes nothing. ``produce`` links
the outputs into the run folder, at the paths the study's notebooks read, and lists the entry in that
folder's ``store_keys.json`` before building, so ``store prune`` never takes it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Mapping

from jointsid_utils import store
from jointsid_utils.config import stable_hash
from jointsid_utils.errors import StudyInputError
from jointsid_utils.fingerprint import code_fingerprint, reachable_modules

MANIFEST = "stage.json"
PUBLISHED = "out"
SCRATCH = "scratch"


@dataclass(frozen=True)
class Workspace:
    """Where a build writes: ``out`` (the declared outputs, published when the build returns) and
    ``scratch`` (checkpoints; survives a failed build, removed after a successful one)."""

    out: Path
    scratch: Path
    key: str = ""  # the stage's key: a trained model records it as its identity


@dataclass(frozen=True, eq=False)
class Stage:
    """An expensive artifact's recipe; ``key`` is everything its outputs depend on."""

    name: str
    build: Callable[[Workspace], None]
    outputs: tuple[str, ...]
    config: Any = None
    inputs: Mapping[str, str] = field(default_factory=dict)
    seed: int | None = None
    code: tuple[Callable[..., Any], ...] = ()  # more functions whose code counts (besides ``build``)

    def __post_init__(self) -> None:
        if not self.outputs or any(not o or "/" in o or o in (MANIFEST, ".") for o in self.outputs):
            raise StudyInputError(f"Stage {self.name!r} declares outputs {self.outputs!r}; give one or more plain "
                                  f"file or folder names other than {MANIFEST!r}.")

    @cached_property
    def code_hash(self) -> str:
        return code_fingerprint(self.build, *self.code)

    @cached_property
    def key(self) -> str:
        return stable_hash({"stage": self.name, "config": self.config, "inputs": dict(sorted(self.inputs.items())),
                            "seed": self.seed, "code": self.code_hash}, length=16)

    @property
    def entry(self) -> Path:
        return store.store_root() / self.name / self.key


def file_input(path: Path | str) -> str:
    """A file's content hash, as a stage input (for a file no stage of this run built)."""
    return store.file_sha256(path)


def published(stage: Stage) -> Path | None:
    """The stage's published ``out/`` folder when it holds every declared output, else None."""
    out = stage.entry / PUBLISHED
    try:
        meta = json.loads((out / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if meta.get("key") != stage.key or not all(_intact(out / name, meta["sizes"].get(name))
                                                   for name in stage.outputs):
        return None
    return out


def _intact(path: Path, size: int | None) -> bool:
    """A declared output is still there and, for a file, of its recorded size (not cut short)."""
    if not path.exists():
        return False
    if size is None or path.is_dir() or path.stat().st_size == size:
        return True
    warnings.warn(f"{path} does not match its recorded size (truncated or edited); rebuilding it.", stacklevel=4)
    return False


def materialize(stage: Stage, *, rebuild: bool = False) -> Path:
    """The stage's published ``out/`` folder: loaded when it exists, else built under the entry's lock.
    ``rebuild=True`` builds it again even so (a user's explicit retrain), replacing what was published."""
    if not rebuild and (out := published(stage)) is not None:
        return out
    with store.locked(stage.name, stage.key):
        if not rebuild and (out := published(stage)) is not None:  # another process built it meanwhile
            return out
        return _build(stage)


def produce(stage: Stage, links: Mapping[str, Path | str] | None = None, *, rebuild: bool = False) -> Path:
    """Materialize the stage and link outputs into a run folder (output name -> path there); returns ``out/``.

    The run folder lists the entry before the build starts, so ``store prune`` leaves a build in progress be.
    """
    links = {name: Path(dest) for name, dest in (links or {}).items()}
    if unknown := sorted(set(links) - set(stage.outputs)):
        raise StudyInputError(f"Stage {stage.name!r} has no outputs {unknown}; link one of {list(stage.outputs)}.")
    for dest in links.values():
        if (folder := store.run_folder_of(dest)) is not None:
            where = dest.resolve().relative_to((store.runs_root() / folder).resolve())
            store.record(folder, stage.name, stage.key, str(where))
    out = materialize(stage, rebuild=rebuild)
    for name, dest in links.items():
        store.link(out / name, dest)
    return out


def _build(stage: Stage) -> Path:
    """Run the builder into a temporary folder inside the (locked) entry, then rename it to ``out/``."""
    entry = stage.entry
    entry.mkdir(parents=True, exist_ok=True)
    for stale in entry.glob(".out-*"):  # left by a killed build; this process holds the lock now
        shutil.rmtree(stale, ignore_errors=True)
    scratch = entry / SCRATCH
    scratch.mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".out-", dir=entry))
    started = time.time()
    try:
        stage.build(Workspace(out=tmp, scratch=scratch, key=stage.key))
        if missing := [name for name in stage.outputs if not (tmp / name).exists()]:
            raise RuntimeError(f"Stage {stage.name!r} finished without writing its declared outputs {missing}.")
        _write_manifest(stage, tmp, time.time() - started)
        if (entry / PUBLISHED).exists():  # an entry of the same key whose outputs were lost or truncated
            shutil.rmtree(entry / PUBLISHED)
        os.replace(tmp, entry / PUBLISHED)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(scratch, ignore_errors=True)
    return entry / PUBLISHED


def _write_manifest(stage: Stage, out: Path, seconds: float) -> None:
    files = {name: out / name for name in stage.outputs}
    payload = {
        "stage": stage.name, "key": stage.key, "config": stage.config, "inputs": dict(stage.inputs),
        "seed": stage.seed, "code": stage.code_hash,
        "modules": sorted(reachable_modules((stage.build, *stage.code))),
        "sizes": {name: p.stat().st_size for name, p in files.items() if p.is_file()},
        "sha256": {name: store.file_sha256(p) for name, p in files.items() if p.is_file()},
        "versions": store.package_versions(), "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "build_seconds": round(seconds, 3),
    }
    (out / MANIFEST).write_text(json.dumps(payload, indent=1, sort_keys=True, default=str))


def manifest(stage: Stage) -> dict[str, Any] | None:
    """The published entry's ``stage.json``, or None when the stage was never built."""
    try:
        return json.loads((stage.entry / PUBLISHED / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError):
        return None
