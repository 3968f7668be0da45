"""The content-addressed store every run folder shares: each stage artifact saved once, under its key.

    entry = entry_dir("embeddings", key_hash)          # runs/.store/embeddings/<key_hash>/
    with locked("embeddings", key_hash): ...           # one builder per entry, across processes
    link(entry / "search.npy", run_file)               # the run folder sees it at its usual path

Runs with other settings or another catalogue get their own folder (``StudyConfig.folder``); what two
configurations have in common (the same key) is built once and linked into both, and going back to an
earlier configuration links, it does not recompute. An entry is written into a temporary name and renamed,
under a per-entry file lock, so a concurrent run waits for it and never reads half a file; an entry is never
replaced by another key's content, since its name is its key. Each run folder lists the entries it used in
``store_keys.json``; ``python -m jointsid_utils.store du`` sizes the store per stage and ``prune`` removes
entries no run folder lists. Layout and rules: docs/RUNNING.md ("Run folders and the store").
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

STORE = ".store"
KEYS_FILE = "store_keys.json"
LOCK_TIMEOUT_S = 6 * 3600  # a concurrent builder of the same entry may be a long fine-tune


REPO_ROOT = Path(__file__).resolve().parents[1]


def runs_root() -> Path:
    """``$JOINTSID_RUNS_DIR`` or ``<repo>/runs``: the run folders and the store."""
    return Path(os.environ.get("JOINTSID_RUNS_DIR", REPO_ROOT / "runs"))


def store_root() -> Path:
    return runs_root() / STORE


def entry_dir(kind: str, key: str) -> Path:
    """``runs/.store/<kind>/<key>/``, created on demand."""
    path = store_root() / kind / key
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def locked(kind: str, key: str, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the entry's lock (``filelock``, so it also works across processes); waits for another holder up
    to ``timeout`` seconds (``filelock.Timeout`` after that)."""
    from filelock import FileLock

    locks = store_root() / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    with FileLock(str(locks / f"{kind}-{key}.lock"), timeout=timeout):
        yield


def file_sha256(path: Path | str, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def array_sha256(*arrays: Any) -> str:
    """A content hash of numpy arrays (shape, dtype and bytes): what a stage's key names an array input by."""
    import numpy as np

    digest = hashlib.sha256()
    for a in arrays:
        digest.update(repr((a.shape, str(a.dtype))).encode())
        digest.update(np.ascontiguousarray(a).tobytes())
    return digest.hexdigest()


def package_versions(names: tuple[str, ...] = ("numpy", "pandas", "torch", "faiss-cpu", "scikit-learn",
                                               "sentence-transformers", "transformers",
                                               "vector-quantize-pytorch")) -> dict[str, str | None]:
    """The versions of the libraries that make the numbers, recorded in every entry's manifest."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def run_folder_of(path: Path | str) -> str | None:
    """The run folder a path lies in (``runs/<folder>/...``), or None for a path outside ``runs/`` or in the store."""
    try:
        rel = Path(path).resolve().relative_to(runs_root().resolve())
    except ValueError:
        return None
    return rel.parts[0] if len(rel.parts) > 1 and rel.parts[0] != STORE else None


def link(target: Path, dest: Path) -> Path:
    """Make ``dest`` show ``target`` (a store file or directory): a hard link for a file (a copy where the
    file system has none), a relative symlink for a directory; replaced atomically, so a reader of ``dest``
    sees the old or the new content. Writers replace files by rename, so the store's copy is never edited."""
    target, dest = Path(target), Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if _same(target, dest):
        return dest
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".link", dir=dest.parent)
    os.close(fd)
    os.unlink(tmp)
    try:
        if target.is_dir():
            os.symlink(os.path.relpath(target, dest.parent), tmp, target_is_directory=True)
            if dest.is_dir() and not dest.is_symlink():
                shutil.rmtree(dest)  # a directory from before the store: its content is in the store now
        else:
            try:
                os.link(target, tmp)
            except OSError:
                shutil.copy2(target, tmp)
        os.replace(tmp, dest)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
    return dest


def _same(target: Path, dest: Path) -> bool:
    if not os.path.lexists(dest):
        return False
    if dest.is_symlink():
        return dest.resolve() == target.resolve()
    try:
        return os.path.samefile(target, dest)
    except OSError:
        return False


def record(folder: str | None, kind: str, key: str, what: str) -> None:
    """Note in ``runs/<folder>/store_keys.json`` that this run used entry ``kind/key`` for ``what``."""
    if not folder:
        return
    from filelock import FileLock

    path = runs_root() / folder / KEYS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=60):
        keys = _read_keys(path)
        if keys.get(what) != f"{kind}/{key}":
            keys[what] = f"{kind}/{key}"
            _write_text(path, json.dumps(keys, indent=1, sort_keys=True))


def _write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _read_keys(path: Path) -> dict[str, str]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def listed() -> set[str]:
    """``kind/key`` of every entry some run folder's ``store_keys.json`` lists (cheap: no walk)."""
    root = runs_root()
    if not root.is_dir():
        return set()
    return {ref for folder in root.iterdir() if folder.name != STORE and folder.is_dir()
            for ref in _read_keys(folder / KEYS_FILE).values()}


def referenced() -> set[str]:
    """``kind/key`` of every entry some run folder lists (or links to)."""
    refs = listed()
    root = runs_root()
    if not root.is_dir():
        return refs
    for folder in root.iterdir():
        if folder.name == STORE or not folder.is_dir():
            continue
        for path in folder.rglob("*"):  # directory links (models) count even when a list was lost
            if path.is_symlink():
                try:
                    rel = path.resolve().relative_to(store_root().resolve())
                except ValueError:
                    continue
                refs.add("/".join(rel.parts[:2]))
    return refs


def entries() -> list[tuple[str, str, Path]]:
    """(kind, key, path) of every store entry."""
    root = store_root()
    if not root.is_dir():
        return []
    return [(kind.name, entry.name, entry) for kind in sorted(root.iterdir())
            if kind.is_dir() and not kind.name.startswith(".") for entry in sorted(kind.iterdir()) if entry.is_dir()]


def size_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def usage() -> list[dict]:
    """Per stage (kind): entries, entries no run lists, and their bytes."""
    refs = referenced()
    table: dict[str, dict] = {}
    for kind, key, path in entries():
        row = table.setdefault(kind, {"stage": kind, "entries": 0, "bytes": 0, "unreferenced": 0,
                                      "unreferenced_bytes": 0})
        size = size_bytes(path)
        row["entries"] += 1
        row["bytes"] += size
        if f"{kind}/{key}" not in refs:
            row["unreferenced"] += 1
            row["unreferenced_bytes"] += size
    return list(table.values())


def prune(dry_run: bool = False) -> list[str]:
    """Remove the entries no run folder lists; returns their ``kind/key``. Delete a run folder first to
    release what only it used. An entry under a lock (a build in progress) is skipped, and an entry a run
    listed while this ran is kept."""
    from filelock import Timeout

    refs = referenced()
    removed = []
    for kind, key, path in entries():
        if f"{kind}/{key}" in refs:
            continue
        try:
            with locked(kind, key, timeout=0):  # never under a builder's feet
                if f"{kind}/{key}" in listed():
                    continue
                if not dry_run:
                    shutil.rmtree(path, ignore_errors=True)
        except Timeout:
            continue
        removed.append(f"{kind}/{key}")
    return removed


def _mb(n: int) -> str:
    return f"{n / 2**20:,.1f} MB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jointsid_utils.store",
                                     description="The shared artifact store under runs/.store/: size and pruning.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("du", help="size per stage, and how much no run folder uses")
    p = sub.add_parser("prune", help="remove entries no run folder uses")
    p.add_argument("--dry-run", action="store_true", help="list what would go, remove nothing")
    args = parser.parse_args(argv)
    if args.command == "du":
        rows = usage()
        if not rows:
            print(f"the store {store_root()} is empty")
            return 0
        print(f"{'stage':<14}{'entries':>8}{'size':>14}{'unused':>8}{'unused size':>14}")
        for r in rows:
            print(f"{r['stage']:<14}{r['entries']:>8}{_mb(r['bytes']):>14}{r['unreferenced']:>8}"
                  f"{_mb(r['unreferenced_bytes']):>14}")
        print(f"{'total':<14}{sum(r['entries'] for r in rows):>8}{_mb(sum(r['bytes'] for r in rows)):>14}"
              f"{sum(r['unreferenced'] for r in rows):>8}{_mb(sum(r['unreferenced_bytes'] for r in rows)):>14}")
        return 0
    removed = prune(args.dry_run)
    print(f"{'would remove' if args.dry_run else 'removed'} {len(removed)} unused entries"
          + "".join(f"\n  {r}" for r in removed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
