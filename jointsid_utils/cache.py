"""Deterministic artifact paths, atomic writes and config-keyed caching of expensive stages.

Every artifact is seen at ``runs/<folder>/<stage>/<name>`` (no timestamps, so a later notebook finds
an earlier one's output by name; ``folder`` is the run's, ``StudyConfig.folder``). Beside it,
``<name>.manifest.json`` records the config hash, input hashes, seed, package versions and the artifact's
own sha256. A stage reruns exactly when its key changed or the artifact fails its hash; otherwise it
loads. What ``cached`` builds is saved once in the shared store (``jointsid_utils.store``) under its key
and linked into the run folder, so another run folder with the same key links it instead of building.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import re
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

from jointsid_utils import store
from jointsid_utils.config import stable_hash
from jointsid_utils.errors import StudyInputError
from jointsid_utils.store import REPO_ROOT, file_sha256, package_versions, runs_root  # noqa: F401  (re-exported)


def run_dir(folder: str, *parts: str) -> Path:
    """``runs/<folder>/<parts...>`` (a run folder: ``StudyConfig.folder``), created on demand."""
    return ensure_dir(runs_root().joinpath(folder, *parts), "output", "JOINTSID_RUNS_DIR")


def ensure_dir(path: Path, what: str, env_var: str) -> Path:
    """Create ``path`` or fail with one sentence naming the variable that relocates it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise StudyInputError(f"Cannot create the {what} directory {path} ({err.strerror}); "
                              f"set {env_var} to a writable location.") from err
    return path


@contextlib.contextmanager
def atomic_path(target: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it into place only if the block succeeds.

    A reader never sees a half-written file, and a killed writer leaves only a ``.tmp`` file
    that the next run ignores and overwrites.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as err:
        raise StudyInputError(f"Cannot write to {target.parent} ({err.strerror}); "
                              "free disk space or point JOINTSID_RUNS_DIR elsewhere.") from err
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except OSError as err:
        tmp_path.unlink(missing_ok=True)
        raise StudyInputError(f"Writing {target} failed ({err.strerror}); "
                              "free disk space or make the directory writable.") from err
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_bytes(target: Path | str, data: bytes) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def write_json(target: Path | str, payload: Any) -> Path:
    text = json.dumps(payload, indent=1, sort_keys=True, default=str)
    return write_bytes(target, text.encode())


def save_numpy(target: Path | str, array: Any) -> Path:
    import numpy as np

    with atomic_path(target) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)
    return Path(target)


def save_parquet(target: Path | str, frame: Any) -> Path:
    with atomic_path(target) as tmp:
        frame.to_parquet(tmp, index=False)
    return Path(target)


def manifest_path(artifact: Path | str) -> Path:
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + ".manifest.json")


# (store entry, [(run-folder path, store path)]) of the build ``cached`` is running, for ``side_output``
_BUILDING: contextvars.ContextVar[tuple[Path, list[tuple[Path, Path]]] | None] = contextvars.ContextVar(
    "jointsid_building", default=None)


def key_hash(key: Any, *, seed: int | None = None, input_hashes: dict[str, str] | None = None) -> str:
    """The hash ``cached`` files an artifact under (its manifest's ``key_hash``)."""
    return stable_hash({"key": key, "inputs": input_hashes or {}, "seed": seed})


def cached(artifact: Path | str, key: Any, build: Callable[[Path], None], *,
           seed: int | None = None, inputs: tuple[Path | str, ...] = ()) -> Path:
    """Return ``artifact``, building it with ``build(tmp_path)`` unless a valid copy exists.

    ``key`` is anything JSON-serialisable that determines the result (usually the relevant config
    sections); ``inputs`` are upstream files whose content hashes join the key, so a changed
    upstream artifact invalidates this one and nothing else. Inside a run folder the artifact is built
    into the store entry of its key, under that entry's lock (a concurrent run waits and then links it),
    and linked into place, with the side outputs its build declared (``side_output``).
    """
    artifact = Path(artifact)
    input_hashes = {str(Path(p).name): file_sha256(p) for p in inputs}
    full_key = key_hash(key, seed=seed, input_hashes=input_hashes)
    place = _place(artifact)
    if place is None:  # outside runs/ (a bench's or a test's own file): a plain cached file
        if not is_fresh(artifact, full_key):
            _build(artifact, key, build, full_key, seed, input_hashes)
        return artifact
    folder, where, kind = place
    if not is_fresh(artifact, full_key):
        entry = store.entry_dir(kind, full_key) / artifact.name
        with store.locked(kind, full_key):
            if not is_fresh(entry, full_key):
                _build(entry, key, build, full_key, seed, input_hashes, links_for=runs_root() / folder)
        store.link(entry, artifact)
        store.link(manifest_path(entry), manifest_path(artifact))
    _apply_links(artifact, runs_root() / folder)
    store.record(folder, kind, full_key, str(where))
    return artifact


def _place(artifact: Path) -> tuple[str, Path, str] | None:
    """(run folder, path inside it, stage: the store's kind) of an artifact in a run folder, else None."""
    folder = store.run_folder_of(artifact)
    if folder is None:
        return None
    where = artifact.resolve().relative_to((runs_root() / folder).resolve())
    return folder, where, where.parts[0] if len(where.parts) > 1 else "files"


def _build(artifact: Path, key: Any, build: Callable[[Path], None], full_key: str, seed: int | None,
           input_hashes: dict[str, str], links_for: Path | None = None) -> None:
    started = time.time()
    links: list[tuple[Path, Path]] = []
    token = _BUILDING.set((artifact.parent, links) if links_for is not None else None)
    try:
        with atomic_path(artifact) as tmp:
            build(tmp)
    finally:
        _BUILDING.reset(token)
    write_json(manifest_path(artifact), {
        "artifact": artifact.name, "key_hash": full_key, "config": key, "inputs": input_hashes,
        "seed": seed, "sha256": file_sha256(artifact), "versions": package_versions(),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "build_seconds": round(time.time() - started, 3),
        "links": [[os.path.relpath(dest, links_for), os.path.relpath(target, store.store_root())]
                  for dest, target in links] if links_for is not None else [],
    })


def forget(artifact: Path | str) -> None:
    """Drop the artifact's manifest, and its store entry's when it came from the store, so the next ``cached``
    call rebuilds it (for an artifact whose companion file turned out stale)."""
    artifact = Path(artifact)
    try:
        meta = json.loads(manifest_path(artifact).read_text())
    except (OSError, json.JSONDecodeError):
        meta = {}
    place = _place(artifact)
    if place is not None and meta.get("key_hash"):
        manifest_path(store.store_root() / place[2] / meta["key_hash"] / artifact.name).unlink(missing_ok=True)
    manifest_path(artifact).unlink(missing_ok=True)


def side_output(dest: Path | str) -> Path:
    """Where a build that ``cached`` runs writes an extra output belonging to its artifact (a fine-tuned
    encoder's directory, the codes' diagnostics, ENMF's user vectors): inside the artifact's store entry,
    linked to ``dest`` in the run folder when the build succeeds and whenever a run reuses the artifact.
    Outside such a build: ``dest`` itself."""
    building = _BUILDING.get()
    if building is None:
        return Path(dest)
    entry, links = building
    target = entry / "side" / Path(dest).name
    target.parent.mkdir(parents=True, exist_ok=True)
    links.append((Path(dest), target))
    return target


def _apply_links(artifact: Path, run_root: Path) -> None:
    """Link the artifact's side outputs (its manifest's ``links``) into the run folder, where missing."""
    try:
        links = json.loads(manifest_path(artifact).read_text()).get("links", [])
    except (OSError, json.JSONDecodeError):
        return
    for dest, target in links:
        source = store.store_root() / target
        if source.exists():
            store.link(source, run_root / dest)


def is_fresh(artifact: Path | str, key_hash: str) -> bool:
    """True when the artifact exists, its manifest has ``key_hash`` and its content hash matches."""
    artifact, manifest = Path(artifact), manifest_path(artifact)
    if not (artifact.exists() and manifest.exists()):
        return False
    try:
        meta = json.loads(manifest.read_text())
    except (OSError, json.JSONDecodeError):
        warnings.warn(f"Manifest {manifest} is unreadable; rebuilding {artifact.name}.", stacklevel=3)
        return False
    if meta.get("key_hash") != key_hash:
        return False
    if meta.get("sha256") != file_sha256(artifact):
        warnings.warn(f"{artifact} does not match its recorded sha256 (truncated or edited); rebuilding it.",
                      stacklevel=3)
        return False
    return True


def last_complete_checkpoint(folder: Path | str) -> str | None:
    """The newest ``checkpoint-<step>`` under ``folder`` that a Trainer finished writing, or None.

    HF Trainer writes a checkpoint in place and ``trainer_state.json`` last, and resuming with
    ``resume_from_checkpoint=True`` takes the highest step even when a kill left it half written.
    So newer checkpoints without a readable ``trainer_state.json`` are deleted (with a warning) and
    the newest complete one is returned, for ``trainer.train(resume_from_checkpoint=...)``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in folder.iterdir()
             if p.is_dir() and (m := re.fullmatch(r"checkpoint-(\d+)", p.name))]
    for _, path in sorted(found, reverse=True):
        try:
            json.loads((path / "trainer_state.json").read_text())
            return str(path)
        except (OSError, ValueError):
            warnings.warn(f"{path} is incomplete (a run was killed while writing it); deleting it and resuming "
                          "from the previous checkpoint.", stacklevel=2)
            shutil.rmtree(path, ignore_errors=True)
    return None
