"""The query stage of notebook 01: pick the backend, cache the frame, report on it.

``prepare_queries`` is the entry point the notebooks and the generator use: it writes
``queries.parquet`` once per (queries config, seed, items) and reloads it after. The backends are
``templates`` (offline, seeded, the default) and ``llm`` (any OpenAI-compatible chat endpoint).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from jointsid_utils.cache import cached
from jointsid_utils.config import StudyConfig, as_dict, stable_hash
from jointsid_utils.errors import StudyInputError
from jointsid_utils.queries.common import (check_items, check_split_sizes, conform_queries, exact_title_share,
                                           plain_value)
from jointsid_utils.queries.llm import llm_queries
from jointsid_utils.queries.matching import normalise_query
from jointsid_utils.queries.templates import TEMPLATE_VERSION, catalogue_kinds, template_queries


def generate_queries(items: pd.DataFrame, cfg: StudyConfig, *, cache_dir: Path | str | None = None) -> pd.DataFrame:
    """The query frame for ``items`` from the configured backend (``cfg.queries.backend``).

    ``cache_dir`` only matters for the LLM backend (its per-item answer cache).
    """
    check_items(items)
    check_split_sizes(cfg)
    backend = cfg.queries.backend
    if backend == "template":
        return template_queries(items, cfg)
    if backend == "openai":
        return llm_queries(items, cfg, cache_dir=cache_dir)
    raise StudyInputError(f"Unknown query backend {backend!r}; pass -p queries.backend template or openai.")


def prepare_queries(items: pd.DataFrame, cfg: StudyConfig, out_dir: Path | str) -> pd.DataFrame:
    """``out_dir/queries.parquet``, built once per (queries config, seed, items) and reloaded after."""
    out_dir = Path(out_dir)
    check_items(items)
    key = {"queries": as_dict(cfg.queries), "items": items_fingerprint(items), "template_version": TEMPLATE_VERSION}

    def build(tmp: Path) -> None:
        frame = generate_queries(items, cfg, cache_dir=out_dir / "llm_cache")
        frame.to_parquet(tmp, index=False)

    path = cached(out_dir / "queries.parquet", key, build, seed=cfg.seed)
    return conform_queries(pd.read_parquet(path))  # the parquet keeps frame.attrs (query_stats)


def query_report(queries: pd.DataFrame, items: pd.DataFrame) -> dict[str, Any]:
    """Numbers a notebook shows: kind shares, exact-title share, distinctness, split balance, ambiguity.

    ``skipped_kinds`` names the template kinds this catalogue cannot give (and why); ``test_redrawn`` and
    ``test_dropped`` count the test queries whose text another item also had (known when the frame was just
    built or read back from ``prepare_queries``'s parquet).
    """
    per_item = queries.groupby("item_id")["query"]
    test = queries[queries["split"] == "test"]
    stats = queries.attrs.get("query_stats", {})
    return {
        "n_queries": int(len(queries)),
        "n_items": int(queries["item_id"].nunique()),
        "kind_share": {k: round(float(v), 4) for k, v in queries["kind"].value_counts(normalize=True).items()},
        "exact_title_share": round(exact_title_share(queries, items), 4),
        "min_distinct_per_item": int(per_item.nunique().min()) if len(queries) else 0,
        "train_share": round(float((queries["split"] == "train").mean()), 4) if len(queries) else 0.0,
        "items_sharing_a_query": int(queries.groupby("query")["item_id"].nunique().gt(1).sum()),
        "test_items_sharing_a_text": int(test.groupby(test["query"].map(normalise_query))["item_id"].nunique()
                                         .gt(1).sum()),
        "test_broad_share": _broad_share(test),
        "skipped_kinds": catalogue_kinds(items)[1] if queries["source"].eq("template").any() else {},
        "test_redrawn": stats.get("test_redrawn"),
        "test_dropped": stats.get("test_dropped"),
    }


def kind_table(queries: pd.DataFrame) -> pd.DataFrame:
    """Per kind and split: the number of queries, the share that fits more than one item (``n_matching > 1``),
    and the median and 90th percentile of ``n_matching`` (NA where it is unknown, as for LLM queries)."""
    groups = queries.groupby(["kind", "split"])["n_matching"]
    table = pd.DataFrame({
        "queries": groups.size(),
        "share n_matching > 1": groups.apply(_broad_share),
        "median n_matching": groups.apply(lambda s: s.dropna().median() if s.notna().any() else pd.NA),
        "p90 n_matching": groups.apply(lambda s: s.dropna().quantile(0.9) if s.notna().any() else pd.NA),
    })
    return table.unstack("split").swaplevel(axis=1).sort_index(axis=1, level=0, sort_remaining=False)


def _broad_share(n_matching: pd.Series | pd.DataFrame) -> float:
    """Share of queries whose constraint fits more than one item, over those where that is known (else NaN)."""
    s = n_matching["n_matching"] if isinstance(n_matching, pd.DataFrame) else n_matching
    known = s.dropna()
    return round(float((known > 1).mean()), 4) if len(known) else float("nan")


def items_fingerprint(items: pd.DataFrame) -> str:
    """A hash of everything the generators read, so a changed catalogue rebuilds the queries."""
    cols = [c for c in ("item_id", "title", "year", "genres", "runtime_min", "imdb_rating", "mpaa", "plot",
                        "tags", "text") if c in items.columns]
    records = [[plain_value(v) for v in row] for row in items[cols].itertuples(index=False, name=None)]
    return stable_hash({"columns": cols, "rows": records}, length=16)
