"""The OpenAI-compatible query backend against real HTTP servers on loopback."""

from __future__ import annotations

import json
import socket

import pandas as pd
import pytest
from llm_server import LLM_MODEL as MODEL
from llm_server import LLM_QUERIES_PER_ITEM as N
from llm_server import FakeLLM, good_answer
from llm_server import llm_config as config
from queries_fixture import make_items

from jointsid_utils.config import load_config
from jointsid_utils.errors import StudyInputError
from jointsid_utils.queries import llm
from jointsid_utils.queries.common import QUERY_COLUMNS
from jointsid_utils.queries.stage import generate_queries, prepare_queries


@pytest.fixture
def serve():
    servers = []

    def start(reply):
        servers.append(FakeLLM(reply))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


@pytest.fixture
def items() -> pd.DataFrame:
    return make_items().iloc[:5].reset_index(drop=True)


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    monkeypatch.setattr(llm, "BASE_DELAY_S", 0.001)
    monkeypatch.setenv("JOINTSID_TEST_KEY", "sk-test-123")


def test_good_server(serve, items, tmp_path):
    server = serve(lambda i, body: (200, good_answer(body)))
    frame = generate_queries(items, config(server.base_url), cache_dir=tmp_path)
    assert list(frame.columns) == QUERY_COLUMNS
    assert len(frame) == N * len(items) and set(frame["source"]) == {f"llm:{MODEL}"}
    sizes = frame.groupby(["item_id", "split"]).size().unstack()[["train", "validation", "test"]]
    assert (sizes.to_numpy() == [N // 2, 1, N - N // 2 - 1]).all()
    assert (frame.groupby("item_id")["query"].nunique() == N).all()
    assert len(server.requests) == len(items)
    first = server.requests[0]
    assert first["path"] == "/v1/chat/completions"
    assert first["headers"]["Authorization"] == "Bearer sk-test-123"
    assert first["body"]["model"] == MODEL and isinstance(first["body"]["temperature"], float)
    prompt = first["body"]["messages"][-1]["content"]
    assert "Toy Story" in prompt and f"exactly {N}" in prompt and "JSON array" in prompt


def test_no_key_sends_no_auth_header(serve, items, tmp_path, monkeypatch):
    monkeypatch.delenv("JOINTSID_TEST_KEY")
    server = serve(lambda i, body: (200, good_answer(body, fenced=False)))
    generate_queries(items.iloc[:1], config(server.base_url), cache_dir=tmp_path)
    assert "Authorization" not in server.requests[0]["headers"]


def test_retries_after_two_server_errors(serve, items, tmp_path):
    server = serve(lambda i, body: (500, "{}") if i < 2 else (200, good_answer(body)))
    frame = generate_queries(items.iloc[:1], config(server.base_url), cache_dir=tmp_path)
    assert len(frame) == N and len(server.requests) == 3


def test_garbage_answers_fail_with_one_sentence(serve, items, tmp_path):
    garbage = json.dumps({"choices": [{"message": {"content": "Sure! Here are some queries: ..."}}]})
    server = serve(lambda i, body: (200, garbage))
    with pytest.raises(StudyInputError) as err:
        generate_queries(items, config(server.base_url), cache_dir=tmp_path)
    message = str(err.value)
    assert server.base_url in message and "not a JSON array" in message and "3 attempts" in message
    assert message.count(". ") == 0 and message.endswith(".")
    assert len(server.requests) == 3


@pytest.mark.parametrize("content, reason", [
    (json.dumps(["a", "b"]), "expected 6 queries, got 2"),
    (json.dumps(["same"] * N), "duplicate"),
    (json.dumps(["x"] * (N - 1) + [""]), "empty"),
    (json.dumps({"a": 1}), "not an array"),
])
def test_parse_rejects_malformed_answers(content, reason):
    with pytest.raises(ValueError, match=reason):
        llm.parse_queries(content, N)


def test_parse_accepts_fences_and_wrapped_lists():
    queries = [f"q{i}" for i in range(N)]
    assert llm.parse_queries("```json\n" + json.dumps(queries) + "\n```", N) == queries
    assert llm.parse_queries(json.dumps({"queries": queries}), N) == queries
    assert llm.parse_queries("Queries:\n" + json.dumps(queries) + "\nEnjoy!", N) == queries


def test_down_endpoint_names_the_url(items, tmp_path):
    with socket.socket() as sock:  # a loopback port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    with pytest.raises(StudyInputError) as err:
        generate_queries(items, config(url), cache_dir=tmp_path)
    message = str(err.value)
    assert f"{url}/chat/completions" in message and "-p queries.backend template" in message


def test_client_errors_fail_at_once(serve, items, tmp_path):
    server = serve(lambda i, body: (401, '{"error": "invalid api key"}'))
    with pytest.raises(StudyInputError, match="HTTP 401"):
        generate_queries(items, config(server.base_url), cache_dir=tmp_path)
    assert len(server.requests) == 1


def test_resume_requests_only_missing_items(serve, items, tmp_path):
    flaky = serve(lambda i, body: (200, good_answer(body)) if i < 3 else (503, "{}"))
    with pytest.raises(StudyInputError, match="HTTP 503"):
        generate_queries(items, config(flaky.base_url), cache_dir=tmp_path)
    assert len(list(tmp_path.glob("item*.json"))) == 3
    good = serve(lambda i, body: (200, good_answer(body)))
    frame = generate_queries(items, config(good.base_url), cache_dir=tmp_path)
    assert len(good.requests) == len(items) - 3
    assert frame["item_id"].nunique() == len(items)


def test_cache_hit_makes_no_requests(serve, items, tmp_path):
    server = serve(lambda i, body: (200, good_answer(body)))
    first = prepare_queries(items, config(server.base_url), tmp_path)
    assert len(server.requests) == len(items)
    (tmp_path / "queries.parquet").unlink()  # force the frame to be rebuilt from the answer cache
    second = prepare_queries(items, config(server.base_url), tmp_path)
    assert len(server.requests) == len(items)
    pd.testing.assert_frame_equal(first, second)
    assert len(list((tmp_path / "llm_cache").glob("item*.json"))) == len(items)


def test_missing_endpoint_config_is_one_sentence(items, tmp_path):
    cfg = load_config("default", {"queries.backend": "openai"})
    with pytest.raises(StudyInputError, match="llm_base_url"):
        generate_queries(items, cfg, cache_dir=tmp_path)


def test_texts_shared_with_another_item_are_dropped_before_the_split(serve, items, tmp_path):
    def shared_answer(i, body):
        own = json.loads(good_answer(body, fenced=False))["choices"][0]["message"]["content"]
        texts = ["a 90s movie", "Something FUN!"] + json.loads(own)[2:]  # two texts every item writes
        return 200, json.dumps({"choices": [{"index": 0, "message": {"role": "assistant",
                                                                      "content": json.dumps(texts)}}]})

    server = serve(shared_answer)
    frame = generate_queries(items, config(server.base_url), cache_dir=tmp_path)
    stats = frame.attrs["query_stats"]
    key = frame["query"].str.lower().str.replace(r"[^a-z0-9]+", " ", regex=True).str.strip()
    assert key.is_unique  # each shared text kept by one seeded owner, in whichever split
    assert stats["shared_dropped"] == 2 * (len(items) - 1) and stats["shared_redrawn"] == 0
    sizes = frame.groupby(["item_id", "split"]).size().unstack().reindex(columns=["train", "validation", "test"])
    assert (sizes["test"] == N - N // 2 - 1).all() and (sizes["validation"] == 1).all()  # drops cost train first
    assert int(sizes["train"].sum()) == len(items) * (N // 2) - stats["shared_dropped"]
    assert frame["query_id"].tolist() == list(range(len(frame)))
    assert frame[["n_matching_min", "n_matching_max"]].isna().all().all() and (frame["constraint"] == "").all()
    assert set(frame["kind"]) == {"llm"}
