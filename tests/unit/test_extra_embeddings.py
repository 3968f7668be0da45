"""Item vectors a user brings (embeddings.extra): parsed, read, checked and aligned before anything is written."""

import numpy as np
import pandas as pd
import pytest

from jointsid_utils.config import load_config
from jointsid_utils.embeddings.extra import aligned_vectors, parse_extra, read_vectors
from jointsid_utils.embeddings.inputs import EmbeddingData
from jointsid_utils.embeddings.registry import all_methods, cache_key, extra_embeddings, extra_names
from jointsid_utils.errors import StudyInputError
from jointsid_utils.ids.schemes import schemes_in_scope
from jointsid_utils.study import TABLE_A, study_schemes


def _items(source_ids):
    return pd.DataFrame({"item_id": np.arange(len(source_ids)), "source_id": [str(s) for s in source_ids],
                         "text": [f"item {s}" for s in source_ids]})


@pytest.fixture
def npy(tmp_path):
    path = tmp_path / "vectors.npy"
    np.save(path, np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32))
    return path


def test_a_command_line_entry_becomes_one_table_a_row_after_the_papers(npy):
    cfg = load_config("smoke", {"embeddings.extra": f"mine={npy}"})
    assert cfg.embeddings.extra == (f"mine={npy}",)
    assert extra_names(cfg) == ("mine",) and list(extra_embeddings(cfg)) == ["mine"]
    assert all_methods(cfg)[-1] == "mine"
    assert study_schemes(extra=extra_names(cfg))[len(TABLE_A)] == ("mine", "rq_kmeans")
    assert schemes_in_scope(cfg)[-1] == ("mine", "rq_kmeans")
    assert "embeddings.extra=vectors.npy" in cfg.folder


@pytest.mark.parametrize("entry, words", [
    ("mine", "is not NAME=PATH"),
    ("Mine=x.npy", "must be lower-case"),
    ("content=x.npy", "already taken by the study"),
    ("multitask=x.npy", "already taken by the study"),
    ("mine=x.csv", "neither .npy nor .parquet"),
    ("mine=/no/such/file.npy", "does not exist"),
])
def test_a_malformed_entry_is_one_sentence_naming_it(entry, words):
    with pytest.raises(StudyInputError, match=words):
        parse_extra([entry], reserved={"content", "multitask"})


def test_a_name_given_twice_is_refused(npy):
    with pytest.raises(StudyInputError, match="another entry"):
        parse_extra([f"a={npy}", f"a={npy}"])


@pytest.mark.parametrize("matrix, words", [
    (np.zeros((3,)), "non-empty 2-D"),
    (np.zeros((0, 4)), "non-empty 2-D"),
    (np.array([[1.0, np.nan], [0.0, 1.0]]), "NaN or infinite values in 1 row"),
    (np.array([[1.0, np.inf], [0.0, 1.0]]), "NaN or infinite"),
    (np.array([["a", "b"]]), "real numbers"),
    (np.zeros((3, 2)), "all zeros"),
])
def test_a_bad_matrix_is_refused_before_the_run(tmp_path, matrix, words):
    path = tmp_path / "m.npy"
    np.save(path, matrix)
    with pytest.raises(StudyInputError, match=words):
        read_vectors("m", path)


def test_an_unreadable_file_names_itself(tmp_path):
    path = tmp_path / "broken.npy"
    path.write_bytes(b"not a numpy file")
    with pytest.raises(StudyInputError, match="'m' \\(broken.npy\\) cannot be read"):
        read_vectors("m", path)


@pytest.mark.parametrize("frame, words", [
    (pd.DataFrame({"id": [1], "x": [0.5]}), "no item_id column"),
    (pd.DataFrame({"item_id": [1.5], "x": [0.5]}), "must hold integers"),
    (pd.DataFrame({"item_id": [1, 1], "x": [0.5, 0.2]}), "item_id 1 appears more than once"),
    (pd.DataFrame({"item_id": [1, 2], "x": [0.5, 0.2], "note": ["a", "b"]}), "are not numbers"),
    (pd.DataFrame({"item_id": [1, 2], "vector": [[1.0, 2.0], [1.0]]}), "equal-length list"),
])
def test_a_bad_parquet_is_refused_naming_the_column(tmp_path, frame, words):
    path = tmp_path / "v.parquet"
    frame.to_parquet(path)
    with pytest.raises(StudyInputError, match=words):
        read_vectors("v", path)


def test_a_parquet_aligns_by_the_catalogues_own_ids_in_either_layout(tmp_path):
    items = _items([10, 30, 20])
    wide = pd.DataFrame({"item_id": [20, 10, 30, 99], "a": [2.0, 1.0, 3.0, 9.0], "b": [0.2, 0.1, 0.3, 0.9]})
    wide.to_parquet(tmp_path / "wide.parquet")
    lists = pd.DataFrame({"item_id": wide["item_id"], "vector": [list(r) for r in wide[["a", "b"]].to_numpy()]})
    lists.to_parquet(tmp_path / "lists.parquet")
    for name in ("wide", "lists"):
        got = aligned_vectors(name, tmp_path / f"{name}.parquet", items)
        np.testing.assert_allclose(got, [[1.0, 0.1], [3.0, 0.3], [2.0, 0.2]], rtol=1e-6)
        assert got.dtype == np.float32


def test_a_catalogue_item_without_a_vector_is_refused_with_the_count(tmp_path):
    pd.DataFrame({"item_id": [10, 20], "a": [1.0, 2.0]}).to_parquet(tmp_path / "v.parquet")
    with pytest.raises(StudyInputError, match="no vector for 1 of the 3 catalogue items \\(first item_id: 30\\)"):
        aligned_vectors("v", tmp_path / "v.parquet", _items([10, 30, 20]))


def test_a_npy_needs_one_row_per_item(npy):
    assert aligned_vectors("m", npy, _items([1, 2, 3, 4])).shape == (4, 3)
    with pytest.raises(StudyInputError, match="has 4 rows but the catalogue has 5 items"):
        aligned_vectors("m", npy, _items([1, 2, 3, 4, 5]))


def test_supplying_a_matrix_leaves_the_built_in_methods_keys_alone(npy):
    items = _items([1, 2, 3, 4])
    inter = pd.DataFrame({"user_id": [0, 0, 0], "item_id": [0, 1, 2], "timestamp": [1, 2, 3],
                          "split": ["train", "validation", "test"]})
    queries = pd.DataFrame({"query_id": [0], "query": ["q"], "item_id": [1], "split": ["train"]})
    data = EmbeddingData(items, inter, queries)
    plain, supplied = load_config("smoke"), load_config("smoke", {"embeddings.extra": [f"mine={npy}"]})
    for method in ("content", "search", "rec", "multitask"):
        assert cache_key(method, plain, data) == cache_key(method, supplied, data)
    assert cache_key("mine", supplied, data)["method"] == "extra"


def test_the_runner_refuses_a_bad_matrix_before_any_notebook(tmp_path, runs_dir, monkeypatch, capsys):
    from jointsid_utils.driver import runner

    monkeypatch.setattr(runner, "configure_runtime", lambda *a, **k: None)  # leave the session's threads alone
    bad = tmp_path / "bad.npy"
    np.save(bad, np.array([[1.0, np.nan], [0.5, 0.5]]))
    assert runner.main(["--profile", "smoke", "-p", "embeddings.extra", f"mine={bad}"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "embeddings.extra 'mine' (bad.npy) has NaN or infinite values in 1 row" in err
    assert not runs_dir.exists() or not any(runs_dir.iterdir())
