"""A MovieLens-shaped export of a chosen size, for the study-size tests."""

from __future__ import annotations

from pathlib import Path


def movielens_export(folder: Path, movies: int, users: int, per_user: int = 3) -> Path:
    """A MovieLens-format export where users take turns rating every movie, ``per_user`` ratings at least each."""
    folder.mkdir(parents=True)
    (folder / "movies.csv").write_text("movieId,title,genres\n" + "".join(
        f"{m},Movie number {m} ({1950 + m}),Drama|Comedy\n" for m in range(1, movies + 1)))
    ratings = max(movies, users * per_user)
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n" + "".join(
        f"{r % users + 1},{r % movies + 1},4.0,{1_000_000 + r}\n" for r in range(ratings)))
    return folder
