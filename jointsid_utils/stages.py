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

A builder that trains with every process of a ``torchrun`` (the generator and its pretraining) is built
``together``: the main process takes the lock and opens the workspace, every process runs the builder into
it (the trainer shards each batch across them and writes only from the main one), and the main process
publishes once all have returned.
"""

from __future__ import annotations

import contextlib
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
from jointsid_utils.runtime import distributed

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


def materialize(stage: Stage, *, rebuild: bool = False, together: bool = False) -> Path:
    """The stage's published ``out/`` folder: loaded when it exists, else built under the entry's lock.
    ``rebuild=True`` builds it again even so (a user's explicit retrain), replacing what was published.
    ``together=True``: under ``torchrun`` every process runs the builder (``_materialize_together``)."""
    if together and distributed.world_size() > 1:
        return _materialize_together(stage, rebuild)
    if not rebuild and (out := published(stage)) is not None:
        return out
    with store.locked(stage.name, stage.key):
        if not rebuild and (out := published(stage)) is not None:  # another process built it meanwhile
            return out
        return _build(stage)


def produce(stage: Stage, links: Mapping[str, Path | str] | None = None, *, rebuild: bool = False,
            together: bool = False) -> Path:
    """Materialize the stage and link outputs into a run folder (output name -> path there); returns ``out/``.

    The run folder lists the entry before the build starts, so ``store prune`` leaves a build in progress be.
    Built ``together`` under ``torchrun``, only the main process lists and links.
    """
    links = {name: Path(dest) for name, dest in (links or {}).items()}
    if unknown := sorted(set(links) - set(stage.outputs)):
        raise StudyInputError(f"Stage {stage.name!r} has no outputs {unknown}; link one of {list(stage.outputs)}.")
    writes = distributed.is_main() or not together
    for dest in links.values() if writes else ():
        if (folder := store.run_folder_of(dest)) is not None:
            where = dest.resolve().relative_to((store.runs_root() / folder).resolve())
            store.record(folder, stage.name, stage.key, str(where))
    out = materialize(stage, rebuild=rebuild, together=together)
    for name, dest in links.items() if writes else ():
        store.link(out / name, dest)
    return out


def _build(stage: Stage) -> Path:
    """Run the builder into a temporary folder inside the (locked) entry, then rename it to ``out/``."""
    tmp, started = _open_workspace(stage)
    try:
        stage.build(Workspace(out=tmp, scratch=stage.entry / SCRATCH, key=stage.key))
        _publish(stage, tmp, started)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return stage.entry / PUBLISHED


def _materialize_together(stage: Stage, rebuild: bool) -> Path:
    """A ``torchrun`` build: the main process holds the lock and publishes; every process builds into its
    workspace, since a trainer's collectives wait for all of them. The others learn from the main process
    whether the entry is published already and, if not, where to build; they meet at barriers."""
    import torch.distributed as dist

    distributed.init()
    main = distributed.is_main()
    with contextlib.ExitStack() as held:
        message: list[Any] = [None]
        if main:
            found = None if rebuild else published(stage)
            if found is None:
                held.enter_context(store.locked(stage.name, stage.key))
                found = None if rebuild else published(stage)
            message = [("published", str(found)) if found is not None else ("build", str(_open_workspace(stage)[0]))]
        dist.broadcast_object_list(message, src=0)
        what, where = message[0]
        if what == "published":
            return Path(where)
        tmp, started = Path(where), time.time()
        try:
            stage.build(Workspace(out=tmp, scratch=stage.entry / SCRATCH, key=stage.key))
            distributed.barrier()
            if main:
                _publish(stage, tmp, started)
        except BaseException:
            if main:
                shutil.rmtree(tmp, ignore_errors=True)
            raise
        distributed.barrier()
    return stage.entry / PUBLISHED


def _open_workspace(stage: Stage) -> tuple[Path, float]:
    """A fresh ``.out-*`` folder in the (locked) entry, with its scratch; the start time of the build."""
    entry = stage.entry
    entry.mkdir(parents=True, exist_ok=True)
    for stale in entry.glob(".out-*"):  # left by a killed build; this process holds the lock now
        shutil.rmtree(stale, ignore_errors=True)
    (entry / SCRATCH).mkdir(exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=".out-", dir=entry)), time.time()


def _publish(stage: Stage, tmp: Path, started: float) -> None:
    """Check the declared outputs, write ``stage.json`` and rename ``tmp`` to ``out/``; drop the scratch."""
    entry = stage.entry
    if missing := [name for name in stage.outputs if not (tmp / name).exists()]:
        raise RuntimeError(f"Stage {stage.name!r} finished without writing its declared outputs {missing}.")
    _write_manifest(stage, tmp, time.time() - started)
    if (entry / PUBLISHED).exists():  # an entry of the same key whose outputs were lost or truncated
        shutil.rmtree(entry / PUBLISHED)
    os.replace(tmp, entry / PUBLISHED)
    shutil.rmtree(entry / SCRATCH, ignore_errors=True)


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
