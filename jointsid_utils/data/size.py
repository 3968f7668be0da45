"""The smallest catalogue the whole study can run on, checked before any notebook starts.

Each floor comes from a stage that cannot work below it:

* items: notebook 01 previews ``PREVIEW_ITEMS`` items, and notebook 03's first ID level places
  ``ids.codebook_size`` k-means centroids (``prefix_share_codebook_size`` for the shared level), each of
  which needs an item of its own;
* users: every user's last items become the validation and test cases, so ``data.min_interactions`` per user;
  the rec comparisons are paired tests over test users, and a two-sided paired test on fewer than
  ``MIN_TEST_USERS`` users cannot reach p < 0.05 (the sign test's smallest p on 5 pairs is 2/32);
* interactions: those users' ``data.min_interactions`` each.

The counts are those the data stage will see (after the ingestion policy and the slicing of the data section).
A source's files are read for this only when small (``READ_LIMIT_BYTES``); a larger export holds far more
rows than any floor, and notebook 01's own checks still apply to it.
"""

from __future__ import annotations

from pathlib import Path

from jointsid_utils.config import StudyConfig
from jointsid_utils.errors import StudyInputError

PREVIEW_ITEMS = 5
MIN_TEST_USERS = 6
READ_LIMIT_BYTES = 32 * 2**20


def study_minimums(cfg: StudyConfig) -> dict[str, int]:
    """The least items, users and interactions the study needs under ``cfg`` (see the module docstring)."""
    ids = cfg.ids
    items = max(PREVIEW_ITEMS, ids.codebook_size, ids.prefix_share_codebook_size or 0)
    return {"items": items, "users": MIN_TEST_USERS, "interactions": MIN_TEST_USERS * cfg.data.min_interactions}


def check_counts(counts: dict[str, int], cfg: StudyConfig) -> None:
    """One sentence when a count is below its floor, naming every floor and why."""
    need = study_minimums(cfg)
    short = [name for name in need if counts[name] < need[name]]
    if not short:
        return
    have = ", ".join(f"{counts[n]} {n}" for n in need)
    raise StudyInputError(
        f"The {cfg.data.source} catalogue is too small for the study ({have} after ingestion and slicing; too few "
        f"{' and '.join(short)}): it needs at least {need['items']} items (notebook 01 previews {PREVIEW_ITEMS} "
        f"and the first ID level fits ids.codebook_size={cfg.ids.codebook_size} centroids, one item each), "
        f"{need['users']} users with {cfg.data.min_interactions}+ interactions (each gives train, validation "
        f"and test items, and a paired test over fewer than {MIN_TEST_USERS} test users cannot reach p < 0.05) "
        f"and so {need['interactions']} interactions; use a larger export, raise data.max_items or "
        "data.max_users, or lower ids.codebook_size.")


def source_bytes(cfg: StudyConfig) -> int:
    """The size of a user-given source's files (0 for the embedded ml-100k)."""
    if cfg.data.source == "ml-100k" or not cfg.data.path:
        return 0
    root = Path(cfg.data.path).expanduser()
    files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files)


def sliced_counts(cfg: StudyConfig) -> dict[str, int]:
    """Items, users and interactions the data stage will keep: the source through the ingestion policy,
    the slicing and the reindexing of ``data.dataset.load_dataset``."""
    from jointsid_utils.data.catalogue import clean
    from jointsid_utils.data.dataset import read_source
    from jointsid_utils.data.split import reindex, slice_interactions

    cat = clean(read_source(cfg.data), cfg.data)
    ratings = slice_interactions(cat.interactions.rename(columns={"user_id": "user", "item_id": "movie"}), cfg)
    items, interactions = reindex(cat.items.rename(columns={"item_id": "movie"}), ratings)
    return {"items": len(items), "users": int(interactions["user_id"].nunique()), "interactions": len(interactions)}


def check_study_size(cfg: StudyConfig) -> None:
    """Refuse, before any notebook, a catalogue smaller than ``study_minimums`` (files over
    ``READ_LIMIT_BYTES`` are left to notebook 01)."""
    if source_bytes(cfg) > READ_LIMIT_BYTES:
        return
    check_counts(sliced_counts(cfg), cfg)
