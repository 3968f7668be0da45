"""What a refused or failed run may leave behind: nothing but the store's bookkeeping."""

from pathlib import Path


def nothing_published(runs: Path) -> bool:
    """No artifact under ``runs``: at most the store's lock files and a run folder's note of the entries it
    tried (``store_keys.json``, written before a build so that ``prune`` spares it)."""
    return not runs.exists() or not any(
        p.is_file() and ".locks" not in p.parts and not p.name.startswith("store_keys.json") for p in runs.rglob("*"))
