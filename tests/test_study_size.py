"""A catalogue too small for the study is refused before any notebook, with one sentence naming the floors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jointsid_utils.config import load_config
from jointsid_utils.data.size import MIN_TEST_USERS, check_study_size, study_minimums
from jointsid_utils.errors import StudyInputError

ROOT = Path(__file__).resolve().parents[1]


def movielens_export(folder: Path, movies: int, users: int, per_user: int = 3) -> Path:
    """A MovieLens-format export where users take turns rating every movie, ``per_user`` ratings at least each."""
    folder.mkdir(parents=True)
    (folder / "movies.csv").write_text("movieId,title,genres\n" + "".join(
        f"{m},Movie number {m} ({1950 + m}),Drama|Comedy\n" for m in range(1, movies + 1)))
    ratings = max(movies, users * per_user)
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n" + "".join(
        f"{r % users + 1},{r % movies + 1},4.0,{1_000_000 + r}\n" for r in range(ratings)))
    return folder


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


def test_the_runner_refuses_before_any_notebook(tmp_path):
    export = movielens_export(tmp_path / "ml", movies=3, users=5)
    runs = tmp_path / "runs"
    result = subprocess.run([sys.executable, "-m", "jointsid_utils.driver.runner", "--profile", "smoke",
                             "-p", "data.source", "movielens-csv", "-p", "data.path", str(export),
                             "-p", "data.enrich", "false", "--notebook-dir", str(tmp_path)],
                            capture_output=True, text=True, cwd=ROOT, env=os.environ | {"JOINTSID_RUNS_DIR": str(runs)})
    assert result.returncode == 1 and "too small for the study" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.strip().count("\n") == 0
    assert not runs.exists() or not any(p.is_file() for p in runs.rglob("*"))
