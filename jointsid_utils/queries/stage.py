"""The query stage of notebook 01: pick the backend, cache the frame, report on it.

``prepare_queries`` is the entry point the notebooks and the generator use: it writes
``queries.parquet`` once per (queries config, seed, items) and reloads it after. The backends are
``templates`` (offline, seeded, the default) and ``llm`` (any OpenAI-compatible chat endpoint).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from scipy.stats import chi2_contingency

from jointsid_utils.cache import cached
from jointsid_utils.config import StudyConfig, as_dict, stable_hash
from jointsid_utils.errors import StudyInputError
from jointsid_utils.queries.common import (check_items, check_split_sizes, conform_queries, exact_title_share,
                                           plain_value)
from jointsid_utils.queries.llm import llm_queries
from jointsid_utils.queries.matching import normalise_query
from jointsid_utils.queries.splits import SPLITS, breadth
from jointsid_utils.queries.templates import catalogue_kinds, template_queries


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
    key = {"queries": as_dict(cfg.queries), "items": items_fingerprint(items)}

    def build(tmp: Path) -> None:
        frame = generate_queries(items, cfg, cache_dir=out_dir / "llm_cache")
        frame.to_parquet(tmp, index=False)

    path = cached(out_dir / "queries.parquet", key, build, seed=cfg.seed)
    return conform_queries(pd.read_parquet(path))  # the parquet keeps frame.attrs (query_stats)


def query_report(queries: pd.DataFrame, items: pd.DataFrame) -> dict[str, Any]:
    """Numbers a notebook shows: kind shares, exact-title share, distinctness, split sizes, ambiguity.

    ``skipped_kinds`` names the template kinds this catalogue cannot give (and why); ``shared_redrawn`` and
    ``shared_dropped`` count the pool queries whose text another query also had (known when the frame was just
    built or read back from ``prepare_queries``'s parquet).
    """
    per_item = queries.groupby("item_id")["query"]
    held_out = queries[queries["split"] != "train"]
    stats = queries.attrs.get("query_stats", {})
    return {
        "n_queries": int(len(queries)),
        "n_items": int(queries["item_id"].nunique()),
        "kind_share": {k: round(float(v), 4) for k, v in queries["kind"].value_counts(normalize=True).items()},
        "exact_title_share": round(exact_title_share(queries, items), 4),
        "min_distinct_per_item": int(per_item.nunique().min()) if len(queries) else 0,
        "split_share": {s: round(float((queries["split"] == s).mean()), 4) if len(queries) else 0.0
                        for s in SPLITS},
        "items_sharing_a_query": int(queries.groupby(queries["query"].map(normalise_query))["item_id"].nunique()
                                     .gt(1).sum()),
        "held_out_texts_shared": int(held_out["query"].map(normalise_query).isin(
            _repeated(queries["query"].map(normalise_query))).sum()),
        "broad_share": {s: _broad_share(queries.loc[queries["split"] == s, "n_matching_max"]) for s in SPLITS},
        "skipped_kinds": catalogue_kinds(items)[1] if queries["source"].eq("template").any() else {},
        "shared_redrawn": stats.get("shared_redrawn"),
        "shared_dropped": stats.get("shared_dropped"),
    }


def kind_table(queries: pd.DataFrame) -> pd.DataFrame:
    """Per kind and split: the number of queries, the share that may fit more than one item
    (``n_matching_max > 1``), and the median of ``n_matching_min`` and ``n_matching_max`` (NA where unknown,
    as for LLM queries)."""
    groups = queries.groupby(["kind", "split"])
    table = pd.DataFrame({
        "queries": groups.size(),
        "share broad": groups["n_matching_max"].apply(_broad_share),
        "median n_matching_min": groups["n_matching_min"].apply(_median),
        "median n_matching_max": groups["n_matching_max"].apply(_median),
    })
    table = table.unstack("split").swaplevel(axis=1)
    present = [s for s in SPLITS if s in table.columns.get_level_values(0)]
    return table.reindex(columns=present, level=0)


def split_balance(queries: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Per stratum (kind x breadth), the queries and their share of each split; and the chi-square p-value of
    equal shares across the splits, per kind (its strata against all other queries) and over all strata.

    High p-values say the splits have the same mix; the split rule (``splits``) makes them equal by design.
    """
    splits = [s for s in SPLITS if (queries["split"] == s).any()]
    counts = (queries.assign(breadth=breadth(queries["n_matching_max"]).to_numpy())
              .groupby(["kind", "breadth", "split"]).size().unstack("split")
              .reindex(columns=splits).fillna(0).astype("int64"))
    shares = counts / counts.sum(axis=0)
    table = pd.concat({"queries": counts, "share": shares.round(4)}, axis=1).swaplevel(axis=1)
    table = table.reindex(columns=pd.MultiIndex.from_product([splits, ["queries", "share"]]))
    p_values = {kind: _chi2_p(pd.concat([sub, (counts.sum() - sub.sum()).to_frame("other").T]))
                for kind, sub in counts.groupby(level="kind")}
    p_values["all strata"] = _chi2_p(counts)
    return table, pd.Series(p_values, name="chi2 p, equal shares across splits")


def _chi2_p(counts: pd.DataFrame) -> float:
    """The chi-square test's p-value of a strata x splits table (NaN when it has under two rows or columns)."""
    table = counts.loc[counts.sum(axis=1) > 0, counts.sum(axis=0) > 0].to_numpy()
    if min(table.shape) < 2:
        return float("nan")
    return float(chi2_contingency(table)[1])


def _repeated(keys: pd.Series) -> set[str]:
    """The texts that occur more than once."""
    counts = keys.value_counts()
    return set(counts.index[counts > 1])


def _median(values: pd.Series) -> Any:
    return values.dropna().median() if values.notna().any() else pd.NA


def _broad_share(n_matching_max: pd.Series) -> float:
    """Share of queries that may fit more than one item, over those where that is known (else NaN)."""
    known = n_matching_max.dropna()
    return round(float((known > 1).mean()), 4) if len(known) else float("nan")


def items_fingerprint(items: pd.DataFrame) -> str:
    """A hash of everything the generators read, so a changed catalogue rebuilds the queries."""
    cols = [c for c in ("item_id", "title", "year", "genres", "runtime_min", "imdb_rating", "mpaa", "plot",
                        "tags", "text") if c in items.columns]
    records = [[plain_value(v) for v in row] for row in items[cols].itertuples(index=False, name=None)]
    return stable_hash({"columns": cols, "rows": records}, length=16)
