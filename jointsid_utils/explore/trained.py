"""A run folder's data and trained generators, loaded read-only for exploring.

The generator of scheme ``<embedding>__<quantizer>`` and training seed ``k`` is the directory notebook 05
links at ``runs/<folder>/models/generator/<scheme>__seed<k>`` (``generator.training.model_dir``); its IDs are
``runs/<folder>/ids/`` (``ids.schemes.load_ids``, the seed's refit for seeds other than the study seed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from jointsid_utils.cache import runs_root
from jointsid_utils.config import GeneratorConfig, StudyConfig, load_config
from jointsid_utils.errors import StudyInputError

Scheme = tuple[str, str]
MODEL_FILES = ("config.json", "train_info.json")  # what a complete saved generator directory holds


@dataclass(frozen=True)
class Catalogue:
    """The run's items, interactions and queries (``runs/<folder>/data/``), as notebook 01 saved them."""

    items: pd.DataFrame
    interactions: pd.DataFrame
    queries: pd.DataFrame

    def titles(self, item_ids) -> list[str]:
        """``Title (year)`` of each item id, so every table names items the way a reader knows them."""
        rows = self.items.set_index("item_id").loc[list(item_ids)]
        return [f"{t} ({int(y)})" if pd.notna(y) else str(t) for t, y in zip(rows["title"], rows["year"])]


@dataclass(frozen=True)
class TrainedGenerator:
    """One scheme's saved generator for one training seed, with the IDs it was trained on."""

    scheme: Scheme
    seed: int
    ids: Any  # generator.tokenization.IdScheme
    tokenizer: Any
    model: Any
    settings: GeneratorConfig

    @property
    def name(self) -> str:
        return f"{self.scheme[0]}__{self.scheme[1]}"

    def semantic_id(self, task: str, item: int) -> str:
        """The item's ID tokens for ``task``, as the generator writes them (``<L0_3><L1_7><L2_0>``)."""
        return "".join(self.ids.item_tokens(task, int(item)))


def config_of_run(folder: Path | str) -> StudyConfig:
    """The study config a run folder was made with (the ``config.json`` its notebooks wrote), with the runs
    root set to the folder's parent for this process, so every path below resolves inside that folder."""
    import os

    from jointsid_utils.config import as_dict, valid_keys

    folder = Path(folder).expanduser().resolve()
    record = folder / "config.json"
    if not record.exists():
        raise StudyInputError(f"{folder} is not a run folder (it has no config.json); pass a folder that "
                              "./run_all.sh made, e.g. runs/smoke.")
    saved = json.loads(record.read_text())
    base = as_dict(load_config(saved["name"]))
    overrides = {}
    for key in valid_keys():
        section, _, leaf = key.partition(".")
        if leaf not in saved.get(section, {}) if leaf else key not in saved:
            continue  # a setting added after the run was made: the run had its default
        value, default = (saved.get(section, {}).get(leaf), base[section][leaf]) if leaf else (saved.get(key), base[key])
        if value != default and key != "run_name":
            overrides[key] = value
    os.environ["JOINTSID_RUNS_DIR"] = str(folder.parent)
    return load_config(saved["name"], {**overrides, "run_name": folder.name})


def study_scheme_names(cfg: StudyConfig) -> list[str]:
    """Every scheme the study can train (Table A with the supplied embeddings, Table B and the joint
    constructions), by name."""
    from jointsid_utils.embeddings.registry import extra_names
    from jointsid_utils.generator.orchestration import scheme_name
    from jointsid_utils.study import study_schemes

    return [scheme_name(s) for s in study_schemes(True, True, extra=extra_names(cfg))]


def parse_scheme(name: str, cfg: StudyConfig) -> Scheme:
    """``multitask`` or ``multitask__rq_kmeans`` as (embedding, quantizer); a bare embedding means RQ-KMeans
    (Table A's quantizer)."""
    full = name if "__" in name else f"{name}__rq_kmeans"
    known = study_scheme_names(cfg)
    if full not in known:
        raise StudyInputError(f"Unknown scheme {name!r}; choose one of: {', '.join(known)}.")
    embedding, quantizer = full.split("__", 1)
    return embedding, quantizer


def model_path(cfg: StudyConfig, scheme: Scheme, seed: int) -> Path:
    """Where notebook 05 links the scheme's generator for ``seed`` (not created here)."""
    return runs_root() / cfg.folder / "models" / "generator" / f"{scheme[0]}__{scheme[1]}__seed{int(seed)}"


def trained_seeds(cfg: StudyConfig, scheme: Scheme) -> list[int]:
    """The training seeds with a complete saved generator for ``scheme`` in the run folder."""
    root = runs_root() / cfg.folder / "models" / "generator"
    prefix = f"{scheme[0]}__{scheme[1]}__seed"
    seeds = [int(p.name[len(prefix):]) for p in root.glob(f"{prefix}*") if p.name[len(prefix):].isdigit()
             and all((p / f).exists() for f in MODEL_FILES)] if root.is_dir() else []
    return sorted(seeds)


def trained_schemes(cfg: StudyConfig) -> list[str]:
    """The schemes with at least one saved generator in the run folder, in the study's order."""
    return [n for n in study_scheme_names(cfg) if trained_seeds(cfg, tuple(n.split("__", 1)))]


def load_generator(cfg: StudyConfig, scheme: Scheme | str, seed: int | None = None) -> TrainedGenerator:
    """The saved generator of ``scheme`` for training ``seed`` (default: its first trained seed) and its IDs."""
    from jointsid_utils.generator.model import load_saved
    from jointsid_utils.generator.tokenization import make_id_scheme
    from jointsid_utils.ids.schemes import load_ids

    scheme = parse_scheme(scheme, cfg) if isinstance(scheme, str) else scheme
    seeds = trained_seeds(cfg, scheme)
    name = f"{scheme[0]}__{scheme[1]}"
    if not seeds:
        raise StudyInputError(f"Scheme {name} has no trained generator in {runs_root() / cfg.folder}; run notebook "
                              f"05 for it first (trained there: {', '.join(trained_schemes(cfg)) or 'none'}).")
    seed = seeds[0] if seed is None else int(seed)
    if seed not in seeds:
        raise StudyInputError(f"Scheme {name} has no generator trained with seed {seed}; choose one of the trained "
                              f"seeds {', '.join(map(str, seeds))}, or add the seed to generator.seeds and rerun "
                              "notebook 05.")
    ids = load_ids(cfg, *scheme, seed=seed)
    tokenizer, model = load_saved(model_path(cfg, scheme, seed))
    model.eval()
    return TrainedGenerator(scheme, seed, make_id_scheme(name, ids.codes), tokenizer, model, cfg.generator)


def load_catalogue(cfg: StudyConfig) -> Catalogue:
    """Items, interactions and queries of the run folder (notebook 01's output)."""
    from jointsid_utils.data.dataset import load_saved as load_dataset

    data = runs_root() / cfg.folder / "data"
    if not (data / "queries.parquet").exists():
        raise StudyInputError(f"{data} holds no items, interactions and queries; run notebook 01 "
                              f"(./run_all.sh --profile {cfg.name} --only 01) first.")
    items, interactions = load_dataset(data)
    return Catalogue(items, interactions, pd.read_parquet(data / "queries.parquet"))
