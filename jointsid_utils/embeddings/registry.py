"""The embedding methods by name, and the stage that writes ``runs/<folder>/embeddings/<method>.npy``.

A method is ``build(data, cfg) -> float32 matrix`` (row i = item i). Modules are imported when a
method is built, so reading this registry does not load sentence-transformers. A method that trains a
model (``MODEL_METHODS``) saves it as the stage's second output, linked at ``runs/<folder>/models/<method>/``.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import time
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from jointsid_utils.cache import manifest_path, run_dir, save_numpy
from jointsid_utils.config import StudyConfig, as_dict
from jointsid_utils.embeddings.inputs import MODEL, EmbeddingData
from jointsid_utils.errors import StudyInputError
from jointsid_utils.stages import MANIFEST, Stage, Workspace, produce
from jointsid_utils.store import array_sha256, file_sha256, link

Builder = Callable[[EmbeddingData, StudyConfig], np.ndarray]


def _lazy(module: str, attr: str = "build") -> Builder:
    def build(data: EmbeddingData, cfg: StudyConfig) -> np.ndarray:
        return builder_function(build)(data, cfg)

    build.__qualname__ = f"{module}.{attr}"
    build.target = (module, attr)  # type: ignore[attr-defined]
    return build


def builder_function(build: Builder) -> Builder:
    """The function a lazy entry stands for (imported now): the stage's code fingerprint starts there, since
    an import by name is invisible to the fingerprint's walk over import statements."""
    target = getattr(build, "target", None)
    if target is None:
        return build
    module, attr = target
    return getattr(importlib.import_module(f"jointsid_utils.embeddings.{module}"), attr)


EMBEDDING_METHODS: dict[str, Builder] = {
    "content": _lazy("content"),
    "search": _lazy("search"),
    "rec": _lazy("enmf"),
    "fused_concat": _lazy("fusion", "build_concat"),
    "fused_svd": _lazy("fusion", "build_svd"),
    "multitask": _lazy("multitask"),
}
# Methods whose search queries can be encoded (the text encoder that made the item vectors).
QUERY_ENCODERS: dict[str, str] = {"content": "content", "search": "search", "multitask": "multitask"}
# What each method reads, so its cache key names only that.
READS: dict[str, tuple[str, ...]] = {
    "content": ("items",), "search": ("items", "queries"), "rec": ("interactions",),
    "fused_concat": ("items", "queries", "interactions"), "fused_svd": ("items", "queries", "interactions"),
    "multitask": ("items", "queries", "interactions"),
}
# The matrices each fusion combines (``data.resolve``): their content hashes are its stage's inputs, so a
# rebuilt input rebuilds the fusion.
FUSES: dict[str, tuple[str, ...]] = {"fused_concat": ("search", "rec"), "fused_svd": ("search", "rec")}
# Methods that train a model and save it (``inputs.model_output``) beside their matrix.
MODEL_METHODS = ("search", "rec", "multitask")
FINETUNED = ("search", "multitask")  # their key also names the precision "auto" resolved to on this machine
# Methods whose checkpoint or epoch is chosen on validation Recall@k: their key names ``evaluation.k``.
CHOSEN_ON_RECALL = ("search", "rec", "multitask")


def embeddings_dir(cfg: StudyConfig) -> Path:
    return run_dir(cfg.folder, "embeddings")


def embedding_path(cfg: StudyConfig, method: str) -> Path:
    return embeddings_dir(cfg) / f"{method}.npy"


def query_encoder_path(cfg: StudyConfig, method: str) -> str | None:
    """The encoder that maps a search query into ``method``'s item space, or None (rec, fusions)."""
    if method not in QUERY_ENCODERS:
        return None
    module = importlib.import_module(f"jointsid_utils.embeddings.{QUERY_ENCODERS[method]}")
    return module.query_encoder(cfg)


def check_matrix(method: str, matrix: np.ndarray, n_items: int) -> np.ndarray:
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != n_items:
        raise StudyInputError(f"Embedding method {method!r} returned shape {matrix.shape}, expected ({n_items}, d); "
                              "its builder must give one row per item.")
    if not np.isfinite(matrix).all():
        raise StudyInputError(f"Embedding method {method!r} produced non-finite values; lower its learning rate "
                              "or check its inputs.")
    return np.ascontiguousarray(matrix, dtype=np.float32)


def extra_embeddings(cfg: StudyConfig) -> dict[str, Path]:
    """The item vectors a user brings (``embeddings.extra``): name -> file, their names checked against the
    study's own (``extra.parse_extra``)."""
    from jointsid_utils.embeddings.extra import parse_extra
    from jointsid_utils.study import JOINT_CONSTRUCTIONS, TABLE_A, TABLE_B_QUANTIZERS

    return parse_extra(cfg.embeddings.extra, reserved={*EMBEDDING_METHODS, *TABLE_A, *JOINT_CONSTRUCTIONS,
                                                       *TABLE_B_QUANTIZERS})


def extra_names(cfg: StudyConfig) -> tuple[str, ...]:
    """The supplied embeddings' names only, their files not read (a finished run, explored later)."""
    return tuple(str(e).partition("=")[0].strip() for e in cfg.embeddings.extra)


def check_extra_embeddings(cfg: StudyConfig) -> None:
    """Every supplied file read and checked on its own, before any notebook starts (its alignment with the
    catalogue is checked when notebook 02 builds it)."""
    from jointsid_utils.embeddings.extra import read_vectors

    for name, path in extra_embeddings(cfg).items():
        read_vectors(name, path)


def all_methods(cfg: StudyConfig) -> list[str]:
    """The built-in methods, then the supplied ones."""
    return [*EMBEDDING_METHODS, *extra_embeddings(cfg)]


def _shared_settings(cfg: StudyConfig) -> dict:
    """The embeddings section as a built-in method's key reads it: without ``extra``, so supplying a matrix
    rebuilds nothing of the study's own."""
    return {k: v for k, v in as_dict(cfg.embeddings).items() if k != "extra"}


def cache_key(method: str, cfg: StudyConfig, data: EmbeddingData) -> dict:
    if method not in EMBEDDING_METHODS:
        return {"method": "extra", "name": method, "data": {"items": data.fingerprint("items")}}
    key = {"method": method, "embeddings": _shared_settings(cfg),
           "data": {part: data.fingerprint(part) for part in READS[method]}}
    if method in CHOSEN_ON_RECALL:
        key["k"] = cfg.evaluation.k
    if method in FINETUNED:
        from jointsid_utils.embeddings.finetune import finetune_bf16

        key["finetune_bf16"] = finetune_bf16(cfg.embeddings)
    return key


def prepare_embeddings(cfg: StudyConfig, items: pd.DataFrame, interactions: pd.DataFrame, queries: pd.DataFrame,
                       methods: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Build (or reload) each method's item matrix; returns name -> float32 (n_items, d).

    Each method is a stage (``jointsid_utils.stages``) keyed by the method, the embeddings config, the seed,
    hashes of the data it reads and the code its builder reaches; its matrix is linked at
    ``runs/<folder>/embeddings/<method>.npy`` and a trained model at ``runs/<folder>/models/<method>/``.
    """
    known = all_methods(cfg)
    methods = list(methods) if methods is not None else known
    unknown = [m for m in methods if m not in known]
    if unknown:
        raise StudyInputError(f"Unknown embedding method(s) {unknown}; choose from {', '.join(known)} (or supply "
                              "one with -p embeddings.extra NAME=PATH).")
    out: dict[str, np.ndarray] = {}

    def resolve(method: str) -> np.ndarray:
        if method not in out:
            out[method] = load_or_build(method, cfg, data)
        return out[method]

    data = EmbeddingData(items, interactions, queries, resolve=resolve)
    for method in methods:
        resolve(method)
    return {m: out[m] for m in methods}


def load_or_build(method: str, cfg: StudyConfig, data: EmbeddingData) -> np.ndarray:
    matrix_name = f"{method}.npy"
    if method in EMBEDDING_METHODS:
        build, code = EMBEDDING_METHODS[method], builder_function(EMBEDDING_METHODS[method])
        inputs = {m: array_sha256(data.resolve(m)) for m in FUSES.get(method, ()) if data.resolve}
    else:  # a supplied matrix: keyed by the file's content, not its path
        from jointsid_utils.embeddings.extra import aligned_vectors

        path = extra_embeddings(cfg)[method]
        build, code = functools.partial(_supplied, method, path), aligned_vectors
        inputs = {"file": file_sha256(path)}
    stage = Stage("embeddings", functools.partial(_build_method, method, build, cfg, data, matrix_name),
                  outputs=(matrix_name, MODEL) if method in MODEL_METHODS else (matrix_name,),
                  config=cache_key(method, cfg, data), seed=cfg.seed, inputs=inputs, code=(code,))
    links = {matrix_name: embedding_path(cfg, method)}
    if method in MODEL_METHODS:
        links[MODEL] = run_dir(cfg.folder, "models") / method
    out = produce(stage, links)
    link(out / MANIFEST, manifest_path(embedding_path(cfg, method)))  # its build time, for the report
    return np.load(embedding_path(cfg, method))


def _supplied(name: str, path: Path, data: EmbeddingData, cfg: StudyConfig) -> np.ndarray:
    from jointsid_utils.embeddings.extra import aligned_vectors

    return aligned_vectors(name, path, data.items)


def _build_method(method: str, build: Builder, cfg: StudyConfig, data: EmbeddingData, matrix_name: str,
                  ws: Workspace) -> None:
    started = time.time()
    building = dataclasses.replace(data, workspace=ws)
    matrix = check_matrix(method, build(building, cfg), data.n_items)
    save_numpy(ws.out / matrix_name, matrix)
    print(f"embeddings: {method} {matrix.shape} built in {time.time() - started:.1f} s", flush=True)


def load_embedding(cfg: StudyConfig, method: str) -> np.ndarray:
    """A built matrix by name, for later stages (raises if the embeddings stage has not run)."""
    path = embedding_path(cfg, method)
    if not path.exists():
        raise StudyInputError(f"{path} is missing; run notebook 02 (./run_all.sh --profile {cfg.name} --only 02) first.")
    return np.load(path)
