"""Queries from any OpenAI-compatible chat endpoint (a local vLLM or Ollama server, Gemini's endpoint...).

The paper generated its 20 queries per movie with gemini-2.0-flash. Every answer is cached on disk,
one JSON file per item keyed by the model and the prompt, written atomically, so an interrupted run
resumes with the items it had not finished and a finished run makes no requests at all.
Transient failures (connection errors, timeouts, HTTP 429 and 5xx) and malformed answers are
retried with exponential backoff plus seeded jitter; what still fails raises ``StudyInputError``.
"""

from __future__ import annotations

import json
import os
import re
import time
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import requests
from tqdm import tqdm

from jointsid_utils.cache import run_dir, write_json
from jointsid_utils.config import StudyConfig, stable_hash
from jointsid_utils.errors import StudyInputError
from jointsid_utils.queries.common import (as_list, check_items, check_split_sizes, exact_title_share,
                                           finish_queries, is_known)
from jointsid_utils.queries.distinct import distinct_pool
from jointsid_utils.queries.splits import split_pool
from jointsid_utils.runtime.reproducibility import rng

BASE_DELAY_S = 1.0  # first backoff; doubles per retry (tests set it near zero)
MAX_DELAY_S = 60.0
TEMPERATURE = 0.9  # varied queries; reproducibility comes from the answer cache, not the sampler
PLOT_CHARS = 1500  # enough plot for keywords, bounded prompt size
SYSTEM_PROMPT = "You write realistic search queries that people type into a movie search box."


class _Retryable(Exception):
    """A failure worth another try; ``kind`` picks the final message."""

    def __init__(self, kind: str, detail: str):
        super().__init__(detail)
        self.kind, self.detail = kind, detail


def llm_queries(items: pd.DataFrame, cfg: StudyConfig, *, cache_dir: Path | str | None = None,
                base_delay_s: float | None = None, session: requests.Session | None = None) -> pd.DataFrame:
    """``per_item`` queries per item from ``cfg.queries.llm_model`` at ``cfg.queries.llm_base_url``."""
    check_items(items)
    check_split_sizes(cfg)
    q = cfg.queries
    url = chat_url(cfg)
    cache_dir = Path(cache_dir) if cache_dir is not None else run_dir(cfg.folder, "data", "llm_cache")
    client = ChatClient(url=url, model=q.llm_model, api_key=os.environ.get(q.llm_api_key_env) or None,
                        timeout_s=q.llm_timeout_s, max_retries=q.llm_max_retries,
                        base_delay_s=BASE_DELAY_S if base_delay_s is None else base_delay_s,
                        seed=cfg.seed, session=session)
    records = items.to_dict("records")
    answers: dict[int, list[str]] = {}
    todo = []
    for item in records:
        messages = build_messages(item, q.per_item)
        path = cache_path(cache_dir, int(item["item_id"]), q.llm_model, messages)
        cached = _load_cached(path, q.per_item)
        if cached is not None:
            answers[int(item["item_id"])] = cached
        else:
            todo.append((item, messages, path))
    for item, messages, path in tqdm(todo, desc=f"queries from {q.llm_model}", unit="item", disable=None):
        item_id = int(item["item_id"])
        queries = client.complete(messages, n=q.per_item, label=f"item {item_id}", jitter_salt=item_id)
        write_json(path, {"item_id": item_id, "model": q.llm_model, "messages": messages, "queries": queries})
        answers[item_id] = queries

    rows = [{"item_id": int(item["item_id"]), "query": text, "kind": "llm", "split": "",
             "source": f"llm:{q.llm_model}"} for item in records for text in answers[int(item["item_id"])]]
    # n_matching_min/max stay NA: a free-text query says no constraint that could be counted over the
    # catalogue, so the split's stratum is the kind alone. A text another query also has cannot be rewritten
    # without asking again: all but its seeded owner are dropped, before the split.
    pool, stats = distinct_pool(finish_queries(rows), cfg.seed)
    frame = split_pool(pool, cfg)
    frame.attrs["query_stats"] = {**stats, "skipped_kinds": {}}
    share = exact_title_share(frame, items)
    if share > 0.10:
        warnings.warn(f"{share:.0%} of the queries from {q.llm_model} contain the item's full title "
                      "(target under 10%); search on them is partly title copying.", stacklevel=2)
    return frame


def chat_url(cfg: StudyConfig) -> str:
    q = cfg.queries
    if not q.llm_base_url or not re.match(r"https?://", q.llm_base_url):
        raise StudyInputError(f"queries.backend 'openai' needs queries.llm_base_url as an http(s) URL, got "
                              f"{q.llm_base_url!r}; pass e.g. -p queries.llm_base_url http://localhost:11434/v1.")
    if not q.llm_model:
        raise StudyInputError("queries.backend 'openai' needs queries.llm_model; pass e.g. "
                              "-p queries.llm_model gemini-2.0-flash.")
    return q.llm_base_url.rstrip("/") + "/chat/completions"


def build_messages(item: dict, n: int) -> list[dict[str, str]]:
    """The chat prompt for one item: its known metadata and the instruction to answer a JSON array."""
    lines = [f"Title: {item['title']}"]
    for label, key, unit in (("Year", "year", ""), ("Runtime", "runtime_min", " minutes"),
                             ("IMDb rating", "imdb_rating", "/10"), ("Certificate", "mpaa", "")):
        value = item.get(key)
        if is_known(value):
            lines.append(f"{label}: {value}{unit}")
    genres = [g for g in as_list(item.get("genres")) if g != "unknown"]
    if genres:
        lines.append(f"Genres: {', '.join(genres)}")
    tags = as_list(item.get("tags"))
    if tags:
        lines.append(f"Tags: {', '.join(map(str, tags))}")
    if is_known(item.get("plot")) and str(item["plot"]).strip():
        lines.append(f"Plot: {str(item['plot']).strip()[:PLOT_CHARS]}")
    max_title = max(1, n // 10)
    user = (f"Write exactly {n} different search queries that a person might type to find this movie.\n\n"
            + "\n".join(lines) + "\n\n"
            "Vary them: some use part of the title or misspell it, some give the genre and era, some describe "
            "the plot, the mood or the occasion, some mention attributes such as length, rating or certificate. "
            f"At most {max_title} of them may contain the full title. Mix casing and phrasing as real users do.\n"
            f"Answer with only a JSON array of {n} strings and nothing else.")
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def cache_path(cache_dir: Path, item_id: int, model: str, messages: list[dict[str, str]]) -> Path:
    """One file per item, keyed by model + prompt: a changed prompt or model never reuses an answer."""
    key = stable_hash({"model": model, "messages": messages, "temperature": TEMPERATURE}, length=16)
    return Path(cache_dir) / f"item{item_id}-{key}.json"


def parse_queries(content: str, n: int) -> list[str]:
    """The ``n`` queries in an answer, or ``ValueError`` saying what is wrong with it."""
    text = content.strip()
    fenced = re.search(r"```(?:json|JSON)?\s*(.*?)```", text, flags=re.S)
    if fenced:
        text = fenced.group(1).strip()
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        start, end = text.find("["), text.rfind("]")
        try:
            value = json.loads(text[start:end + 1]) if 0 <= start < end else None
        except json.JSONDecodeError:
            value = None
        if value is None:
            raise ValueError("the answer is not a JSON array") from None
    if isinstance(value, dict):  # {"queries": [...]}
        lists = [v for v in value.values() if isinstance(v, list)]
        value = lists[0] if len(lists) == 1 else value
    if not isinstance(value, list):
        raise ValueError(f"the answer is a JSON {type(value).__name__}, not an array of strings")
    if not all(isinstance(v, str) for v in value):
        raise ValueError("the array holds non-string entries")
    queries = [re.sub(r"\s+", " ", v).strip() for v in value]
    if len(queries) != n:
        raise ValueError(f"expected {n} queries, got {len(queries)}")
    if any(not v for v in queries):
        raise ValueError("the array holds empty queries")
    if len({v.lower() for v in queries}) != n:
        raise ValueError("the array holds duplicate queries")
    return queries


class ChatClient:
    """POST ``/chat/completions`` with retries; returns the validated list of queries."""

    def __init__(self, *, url: str, model: str, api_key: str | None, timeout_s: float, max_retries: int,
                 base_delay_s: float, seed: int, session: requests.Session | None = None):
        self.url, self.model, self.api_key = url, model, api_key
        self.timeout_s, self.max_retries, self.base_delay_s, self.seed = timeout_s, max_retries, base_delay_s, seed
        self.session = session or requests.Session()

    def complete(self, messages: list[dict[str, str]], *, n: int, label: str, jitter_salt: Any = 0) -> list[str]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        body = {"model": self.model, "messages": messages, "temperature": TEMPERATURE}
        jitter = rng(self.seed, "llm-backoff", jitter_salt)
        attempts = self.max_retries + 1
        last: _Retryable | None = None
        for attempt in range(attempts):
            retry_after = None
            try:
                return self._once(body, headers, n)
            except _Retryable as err:
                last = err
                retry_after = getattr(err, "retry_after", None)
            if attempt + 1 < attempts:
                # exponential backoff with seeded jitter, so parallel clients do not retry in lockstep
                delay = min(MAX_DELAY_S, self.base_delay_s * 2 ** attempt * (1 + 0.5 * jitter.random()))
                time.sleep(max(delay, min(retry_after or 0.0, MAX_DELAY_S)))
        assert last is not None
        raise StudyInputError(self._final_message(last, attempts, label)) from None

    def _once(self, body: dict, headers: dict, n: int) -> list[str]:
        try:
            response = self.session.post(self.url, json=body, headers=headers, timeout=self.timeout_s)
        except requests.Timeout as err:
            raise _Retryable("timeout", type(err).__name__) from None
        except requests.ConnectionError as err:
            raise _Retryable("connection", type(err).__name__) from None
        status = response.status_code
        if status == 429 or status >= 500:
            err = _Retryable("status", f"HTTP {status}")
            err.retry_after = _seconds(response.headers.get("Retry-After"))  # type: ignore[attr-defined]
            raise err
        if status >= 400:
            snippet = re.sub(r"\s+", " ", response.text)[:160].rstrip(".")
            raise StudyInputError(f"The LLM endpoint {self.url} refused the request with HTTP {status} ({snippet}); "
                                  "check queries.llm_model and the API key variable queries.llm_api_key_env, "
                                  "or pass -p queries.backend template.")
        try:
            content = response.json()["choices"][0]["message"]["content"]
            if not isinstance(content, str):
                raise TypeError
        except (ValueError, KeyError, IndexError, TypeError):
            raise _Retryable("malformed", "the response is not OpenAI chat-completions JSON") from None
        try:
            return parse_queries(content, n)
        except ValueError as err:
            raise _Retryable("malformed", str(err)) from None

    def _final_message(self, err: _Retryable, attempts: int, label: str) -> str:
        fallback = "pass -p queries.backend template"
        if err.kind == "connection":
            return (f"The LLM endpoint {self.url} could not be reached after {attempts} attempts ({err.detail}); "
                    f"start the server or {fallback}.")
        if err.kind == "timeout":
            return (f"The LLM endpoint {self.url} timed out ({self.timeout_s:g} s) on all {attempts} attempts for "
                    f"{label}; raise -p queries.llm_timeout_s or {fallback}.")
        if err.kind == "status":
            return (f"The LLM endpoint {self.url} kept answering {err.detail} for {label} after {attempts} "
                    f"attempts; retry later (finished items are cached) or {fallback}.")
        return (f"The LLM endpoint {self.url} gave no usable answer for {label} after {attempts} attempts "
                f"({err.detail}); use a model that follows the JSON-array instruction or {fallback}.")


def _load_cached(path: Path, n: int) -> list[str] | None:
    if not path.exists():
        return None
    try:
        queries = json.loads(path.read_text())["queries"]
        return parse_queries(json.dumps(queries), n)
    except (OSError, ValueError, KeyError, TypeError):
        return None  # unreadable or stale: ask again


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
