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
import functools
import json
import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

from jointsid_utils import stages, store
from jointsid_utils.errors import StudyInputError
from jointsid_utils.stages import Stage, Workspace
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


def cached(artifact: Path | str, key: Any, build: Callable[[Path], None], *,
           seed: int | None = None, inputs: tuple[Path | str, ...] = ()) -> Path:
    """Return ``artifact``, built by ``build(tmp_path)`` as a one-output stage (``jointsid_utils.stages``).

    ``key`` is anything JSON-serialisable that determines the result besides the code (usually the config
    sections it reads); ``inputs`` are upstream files whose content hashes join the key. The stage is named
    by the run folder's stage directory (``embeddings``, ``results``...; ``files`` outside a run folder), and
    its manifest is linked beside the artifact as ``<name>.manifest.json``.
    """
    artifact = Path(artifact)
    stage = Stage(_stage_name(artifact), functools.partial(_write_artifact, build, artifact.name),
                  outputs=(artifact.name,), config=key, inputs={Path(p).name: file_sha256(p) for p in inputs},
                  seed=seed)
    out = stages.produce(stage, {artifact.name: artifact})
    store.link(out / stages.MANIFEST, manifest_path(artifact))
    return artifact


def _write_artifact(build: Callable[[Path], None], name: str, ws: Workspace) -> None:
    with atomic_path(ws.out / name) as tmp:
        build(tmp)


def _stage_name(artifact: Path) -> str:
    """The run folder's stage directory an artifact lies in (``runs/<folder>/<stage>/...``), else ``files``."""
    folder = store.run_folder_of(artifact)
    if folder is None:
        return "files"
    where = artifact.resolve().relative_to((runs_root() / folder).resolve())
    return where.parts[0] if len(where.parts) > 1 else "files"


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
