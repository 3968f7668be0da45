"""MovieLens as adapters onto the generic catalogue (``catalogue.Catalogue``): the embedded
MovieLens-100K and a MovieLens CSV export (folder or zip).

Both return items with the title parsed (year removed, leading article restored), ``year``,
``genres`` and ``tags``, and no text (the study writes it from the attributes after enrichment);
interactions are the ratings. ``catalogue.clean`` then applies the ingestion policy, as to any catalogue.
"""

from __future__ import annotations

import pandas as pd

from jointsid_utils import assets
from jointsid_utils.config import DataConfig
from jointsid_utils.data.catalogue import Catalogue, empty_attributes
from jointsid_utils.data.ingest import TableSource
from jointsid_utils.data.titles import split_title_year

MOVIE_COLUMNS = ("movieId", "title", "genres")
RATING_COLUMNS = ("userId", "movieId", "rating", "timestamp")
MAX_TAGS = 10  # most frequent tags per movie kept from tags.csv
WHAT = "the MovieLens folder or zip (with movies.csv and ratings.csv)"
HINT = " (the MovieLens CSV header)"
NAMES = {"item_noun": "movie", "interaction_noun": "rating", "item_id_column": "movieId"}


def ml100k_catalogue() -> Catalogue:
    """MovieLens-100K from the package assets (RecBole atomic files), in source ids."""
    inter, item = assets.movielens_100k()
    ratings = pd.DataFrame({
        "user_id": inter["user_id:token"].astype("int64"),
        "item_id": inter["item_id:token"].astype("int64"),
        "timestamp": inter["timestamp:float"].astype(float).astype("int64"),
        "rating": inter["rating:float"].astype("float32"),
    })
    titles, years = [], []
    for raw, year in zip(item["movie_title:token_seq"], item["release_year:token"]):
        raw = "unknown" if raw == "unkonwn" else raw  # the placeholder item is misspelled in the file
        title, title_year = split_title_year(raw)  # one title still carries "(1995)"
        titles.append(title)
        years.append(int(year) if year.isdigit() else title_year)
    items = _items(item["item_id:token"].astype("int64"), titles, years,
                   [[g for g in s.split() if g != "unknown"] for s in item["class:token_seq"]],
                   [[] for _ in range(len(item))])
    where = "the embedded MovieLens-100K"
    return Catalogue(items, ratings, f"{where} items", f"{where} ratings", text_given=False, **NAMES)


def check_csv_files(path: str | None) -> tuple[TableSource, str | None]:
    """The export's source, with movies.csv and ratings.csv (and tags.csv, if any) headers checked."""
    source = TableSource(path, WHAT)
    hint = "give the MovieLens folder or zip that holds movies.csv and ratings.csv"
    source.header(source.require("movies.csv", hint), MOVIE_COLUMNS, hint=HINT)
    source.header(source.require("ratings.csv", hint), RATING_COLUMNS, hint=HINT)
    tags = source.find("tags.csv")
    if tags is not None:
        source.header(tags, ("movieId", "tag"), hint=HINT)
    return source, tags


def movielens_csv_catalogue(data: DataConfig) -> Catalogue:
    """movies.csv, ratings.csv and (optional) tags.csv of a MovieLens export, in source ids."""
    source, tags_file = check_csv_files(data.path)
    movies = source.read("movies.csv", {"movieId": "int", "title": "str", "genres": "str"}, MOVIE_COLUMNS,
                         hint=HINT, drop_blank=("movieId",), max_dropped_share=data.max_dropped_share)
    parsed = [split_title_year(t or "") for t in movies["title"]]
    items = _items(movies["movieId"], [t or None for t, _ in parsed], [y for _, y in parsed],
                   [[] if g in (None, "(no genres listed)") else g.split("|") for g in movies["genres"]],
                   [[] for _ in range(len(movies))])
    ratings = source.read("ratings.csv", dict(zip(RATING_COLUMNS, ("int", "int", "float", "time"))),
                          RATING_COLUMNS, hint=HINT, max_dropped_share=data.max_dropped_share)
    interactions = pd.DataFrame({"user_id": ratings["userId"], "item_id": ratings["movieId"],
                                 "timestamp": ratings["timestamp"].astype("int64"),
                                 "rating": ratings["rating"].astype("float32")})
    if tags_file is not None:
        tags = source.read(tags_file, {"movieId": "int", "tag": "str"}, ("movieId", "tag"), hint=HINT,
                           drop_blank=("movieId",), max_dropped_share=data.max_dropped_share)
        items["tags"] = _top_tags(items["item_id"], tags)
    return Catalogue(items, interactions, source.where("movies.csv"), source.where("ratings.csv"),
                     text_given=False, repairs=source.repairs, **NAMES)


def _items(ids, titles, years, genres, tags) -> pd.DataFrame:
    items = pd.DataFrame({"item_id": pd.Series(ids).astype("int64").to_numpy(), "title": titles, "text": None,
                          "year": pd.array(years, dtype="Int64"), "genres": genres, "tags": tags})
    for col, values in empty_attributes(len(items)).items():
        items[col] = values.set_axis(items.index)
    return items


def _top_tags(movies: pd.Series, tags: pd.DataFrame | None) -> list[list[str]]:
    """Per movie, its ``MAX_TAGS`` most used tags (lowercased; ties alphabetical)."""
    if tags is None or tags.empty:
        return [[] for _ in range(len(movies))]
    clean = tags.dropna(subset=["tag"])
    clean = clean.assign(tag=clean["tag"].astype(str).str.strip().str.lower())
    clean = clean[clean["tag"].ne("")]
    counts = clean.groupby(["movieId", "tag"]).size().rename("n").reset_index()
    counts = counts.sort_values(["movieId", "n", "tag"], ascending=[True, False, True])
    top = counts.groupby("movieId").head(MAX_TAGS).groupby("movieId")["tag"].agg(list)
    return [list(top.get(m, [])) for m in movies]
