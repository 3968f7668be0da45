"""A catalogue too small for the study is refused before any notebook, with one sentence naming the floors."""

from __future__ import annotations

from pathlib import Path

import pytest

from jointsid_utils.config import load_config
from jointsid_utils.data.size import MIN_TEST_USERS, check_study_size, study_minimums
from jointsid_utils.errors import StudyInputError

from catalogue_exports import movielens_export


def config(path: Path, **overrides):
    return load_config("default", {"data.source": "movielens-csv", "data.path": str(path), "data.enrich": False,
                                   **overrides})


def test_three_movies_five_users_are_refused_in_one_sentence(tmp_path):
    cfg = config(movielens_export(tmp_path / "ml", movies=3, users=5))
    with pytest.raises(StudyInputError) as err:
        check_study_size(cfg)
    msg = str(err.value)
    assert "\n" not in msg and msg.endswith(".")
    need = study_minimums(cfg)
    for text in ("3 items, 5 users, 15 interactions", "too few items and users", f"at least {need['items']} items",
                 "ids.codebook_size=64", f"{MIN_TEST_USERS} users with 3+ interactions", "p < 0.05"):
        assert text in msg, msg


def test_just_large_enough_is_accepted_and_one_item_less_is_not(tmp_path):
    cfg = config(tmp_path / "ok")
    need = study_minimums(cfg)
    assert need == {"items": 64, "users": MIN_TEST_USERS, "interactions": 3 * MIN_TEST_USERS}
    check_study_size(config(movielens_export(tmp_path / "ok", movies=need["items"], users=need["users"])))
    with pytest.raises(StudyInputError, match=r"too few items\)"):
        check_study_size(config(movielens_export(tmp_path / "short", movies=need["items"] - 1, users=need["users"])))
    with pytest.raises(StudyInputError, match=r"too few users\)"):
        check_study_size(config(movielens_export(tmp_path / "few", movies=need["items"], users=need["users"] - 1,
                                                 per_user=20)))


def test_the_floor_follows_the_codebook(tmp_path):
    export = movielens_export(tmp_path / "ml", movies=8, users=MIN_TEST_USERS)
    check_study_size(config(export, **{"ids.codebook_size": 8}))
    with pytest.raises(StudyInputError, match="ids.codebook_size=9"):
        check_study_size(config(export, **{"ids.codebook_size": 9}))


