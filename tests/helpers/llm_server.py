"""A chat-completions server on loopback and the config that points the query backend at it.

Shared by tests/unit/test_llm_queries.py and the kill/resume test in tests/integration/test_faults.py.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from jointsid_utils.config import StudyConfig, load_config


LLM_MODEL = "tiny-test-model"
LLM_QUERIES_PER_ITEM = 6  # queries per item in the LLM-backend tests (keeps answers short)


def llm_config(base_url: str, **extra) -> StudyConfig:
    """The default profile pointed at a local OpenAI-compatible test server."""
    return load_config("default", {"queries.backend": "openai", "queries.llm_base_url": base_url,
                                   "queries.llm_model": LLM_MODEL, "queries.per_item": LLM_QUERIES_PER_ITEM,
                                   "queries.train_per_item": LLM_QUERIES_PER_ITEM // 2,
                                   "queries.llm_api_key_env": "JOINTSID_TEST_KEY", "queries.llm_max_retries": 2,
                                   "queries.llm_timeout_s": 5.0, **extra})


class FakeLLM:
    """A chat-completions server; ``reply(index, body)`` returns (status, text) for the index-th request."""

    def __init__(self, reply: Callable[[int, dict], tuple[int, str]]):
        self.reply, self.requests, self.lock = reply, [], threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake.lock:
                    index = len(fake.requests)
                    fake.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                status, text = fake.reply(index, body)
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def good_answer(body: dict, fenced: bool = True) -> str:
    prompt = body["messages"][-1]["content"]
    tag = hashlib.sha256(prompt.encode()).hexdigest()[:8]
    content = json.dumps([f"query {i} about {tag}" for i in range(LLM_QUERIES_PER_ITEM)])
    if fenced:
        content = f"Here you go:\n```json\n{content}\n```"
    return json.dumps({"id": "x", "object": "chat.completion", "model": body["model"],
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                    "finish_reason": "stop"}]})
