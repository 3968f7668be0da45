"""Exploring a trained run: the explore views decode exactly as the study's test lists, refuse what was
not trained in one sentence, and describe codes and collisions from the items."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from generator_fixtures import N_USERS, TINY, toy_data
from jointsid_utils import explore
from jointsid_utils.config import as_dict, load_config
from jointsid_utils.data.dataset import save_dataset
from jointsid_utils.errors import StudyInputError
from jointsid_utils.explore.__main__ import main as cli
from jointsid_utils.generator.job import train_and_predict

SCHEME = ("multitask", "rq_kmeans")
GENRES = ("Drama", "Comedy", "Horror", "Sci-Fi")


def catalogue_items(items: pd.DataFrame) -> pd.DataFrame:
    """The toy items with the catalogue's columns: a year and genres that follow the first code (item % 5)."""
    out = items.copy()
    out["year"] = pd.array(1950 + 10 * (out["item_id"] % 5), dtype="Int64")
    out["genres"] = [[GENRES[i % 5 % 4]] + (["Animation"] if i % 5 == 4 else []) for i in out["item_id"]]
    out["tags"] = [[] for _ in range(len(out))]
    return out


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A run folder with the toy data, one scheme's IDs and its tiny generator trained for seed 0."""
    runs = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JOINTSID_RUNS_DIR", str(runs))
        smoke = load_config("smoke")  # scored at the tiny generator's list length, as a saved run must be
        cfg = dataclasses.replace(smoke, generator=TINY,
                                  evaluation=dataclasses.replace(smoke.evaluation, k=TINY.top_k))
        items, inter, queries, codes = toy_data()
        items = catalogue_items(items)
        data = runs / cfg.folder / "data"
        save_dataset(items, inter, data)
        queries.to_parquet(data / "queries.parquet")
        ids = runs / cfg.folder / "ids"
        ids.mkdir(parents=True)
        np.save(ids / "multitask__rq_kmeans.npy", codes)
        (ids / "multitask__rq_kmeans.json").write_text(json.dumps({"collision_rate": 0.0}))
        preds = train_and_predict("multitask__rq_kmeans", codes, items, inter, queries, cfg, 0)
        yield cfg, preds, runs


def test_search_and_recommend_decode_as_the_study_does(trained_run, monkeypatch):
    cfg, preds, runs = trained_run
    monkeypatch.setenv("JOINTSID_RUNS_DIR", str(runs))
    cat = explore.load_catalogue(cfg)
    gen = explore.load_generator(cfg, "multitask", seed=0)
    case = preds[preds["task"] == "search"].iloc[0]
    table = explore.search(gen, cat, case["query"], k=TINY.top_k)
    assert table["item_id"].tolist() == list(case["ranked"])  # the saved test list, decoded again
    assert table["semantic_id"].iloc[0] == "".join(f"<L{lvl}_{c}>" for lvl, c in
                                                     enumerate(gen.ids.codes["search"][case["ranked"][0]]))
    rank = table.attrs["target_ranks"][int(case["target"])]
    assert rank == (list(case["ranked"]).index(case["target"]) + 1 if case["target"] in case["ranked"] else None)
    rec = preds[(preds["task"] == "rec") & (preds["protocol"] == "all")].iloc[3]
    recommended = explore.recommend(gen, cat, int(rec["user_id"]), k=TINY.top_k)
    assert recommended["item_id"].tolist() == list(rec["ranked"])
    marked = recommended.loc[recommended["target"] != "", "item_id"].tolist()
    assert marked == ([rec["target"]] if rec["target"] in rec["ranked"] else [])
    history = explore.user_history(cat, int(rec["user_id"]), last=3)
    assert history["held_out"].iloc[-1] == "<- held out" and history["item_id"].iloc[-1] == rec["target"]
    assert len(history) == 4 and history["title"].str.contains(r"\(19\d\d\)").all()


def test_what_was_not_trained_is_one_sentence(trained_run, monkeypatch, capsys):
    cfg, _, runs = trained_run
    monkeypatch.setenv("JOINTSID_RUNS_DIR", str(runs))
    cases = [(lambda: explore.load_generator(cfg, "multitask", seed=3), "no generator trained with seed 3; "
              "choose one of the trained seeds 0"),
             (lambda: explore.load_generator(cfg, "content"), "content__rq_kmeans has no trained generator"),
             (lambda: explore.parse_scheme("multitsk", cfg), "Unknown scheme 'multitsk'; choose one of: content__"),
             (lambda: explore.user_history(explore.load_catalogue(cfg), N_USERS + 5),
              f"User {N_USERS + 5} is not in this run's data; pick a user id between 0 and {N_USERS - 1}")]
    for call, needle in cases:
        with pytest.raises(StudyInputError) as err:
            call()
        assert needle in str(err.value) and "\n" not in str(err.value) and str(err.value).endswith(".")
    run = runs / cfg.folder
    (run / "config.json").write_text(json.dumps(as_dict(cfg)))
    assert cli(["recommend", "--user", "999", "--scheme", "multitask", "--run", str(run)]) == 2
    assert capsys.readouterr().err.startswith("error: User 999 is not in this run's data")


def test_code_table_names_what_sets_a_code_apart():
    items, _, _, codes = toy_data()
    items = catalogue_items(items)
    full = np.column_stack([codes[:, :2], np.zeros(len(codes), dtype=np.int64)])  # levels + a dedup column
    full[:, 2] = pd.Series(range(len(full))).groupby([full[:, 0], full[:, 1]]).cumcount().to_numpy()
    table = explore.code_table(items, full, level=1)
    assert table["code"].tolist() == ["0", "1", "2", "3", "4"] and table["items"].tolist() == [8] * 5
    assert table.loc[2, "genres"].startswith("Horror x")  # code 2 holds every Horror item
    assert table.loc[4, "genres"].startswith("Animation x5.0")  # and code 4 every Animation item
    assert table.loc[3, "decades"] == "1980s x5.0" and table.loc[3, "median_year"] == 1980
    assert table["colliding_items"].tolist() == [8] * 5  # codes (a, b) repeat: items 0, 20 share (0, 0)
    collided = explore.collisions(items, full, limit=None)
    assert len(collided) == 20 and collided["items"].tolist() == [2] * 20
    assert collided.iloc[0]["id_before_dedup"] == "0-0"
    assert collided.iloc[0]["titles"] == " | ".join(items["title"].iloc[[0, 20]])
    with pytest.raises(StudyInputError, match="Level 3 is outside this scheme's levels 1..2"):
        explore.code_table(items, full, level=3)


def test_the_widgets_answer_a_typed_query_and_a_picked_user(trained_run, monkeypatch):
    from jointsid_utils.explore.widgets import Explorer

    cfg, preds, runs = trained_run
    monkeypatch.setenv("JOINTSID_RUNS_DIR", str(runs))
    cat = explore.load_catalogue(cfg)
    view = Explorer(cfg, cat, ("multitask__rq_kmeans", "multitask__rq_kmeans"), "alien space", 0)
    assert view.out["search"].value.count("'alien space'") == 2 and "&lt;L0_" in view.out["search"].value
    case = preds[preds["task"] == "search"].iloc[0]
    view.query.value = case["query"]  # what typing and Enter do
    assert f"{case['query']!r}; a test query: its target ranks" in view.out["search"].value
    view.user.value = N_USERS - 1
    assert f"user {N_USERS - 1}: recent history" in view.out["recommend"].value
    assert "&lt;- held out" in view.out["recommend"].value
    view.level.value = 3  # the toy codes have 2 levels before the dedup column
    assert view.out["codes"].value.startswith("<p><b>error:</b> Level 3 is outside")
