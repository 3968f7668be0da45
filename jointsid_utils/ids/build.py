"""Build, save and reuse one ID scheme (a stage): ``ids/<embedding>__<quantizer>.npy`` + ``.json`` (STUDY.md §4);
another training seed's refit of it is ``ids/<embedding>__<quantizer>__seed<s>`` (``ids.schemes.ids_stem``)."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

from jointsid_utils.cache import manifest_path, save_numpy, write_json
from jointsid_utils.errors import StudyInputError
from jointsid_utils.study import TWO_ID_SCHEMES
from jointsid_utils.quantizers import QUANTIZERS, make_quantizer
from jointsid_utils.quantizers.base import check_matrix
from jointsid_utils.quantizers.collisions import deduplicate
from jointsid_utils.quantizers.diagnostics import scheme_diagnostics
from jointsid_utils.quantizers.prefix_share import prefix_share_fit, separate_quantizers
from jointsid_utils.stages import MANIFEST, Stage, Workspace, produce
from jointsid_utils.store import array_sha256, link  # noqa: F401  (array_sha256 re-exported)

CODES, DIAGNOSTICS = "codes.npy", "diagnostics.json"



def build_ids(embedding_name: str, quantizer_name: str, X: Any, out_dir: Path | str, *, file_stem: str | None = None,
              **cfg: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """Fit ``quantizer_name`` on X, add the dedup level, save ``<out_dir>/<embedding>__<quantizer>.npy``
    (int64) and ``.json`` atomically; a rerun with the same config and input loads them instead.
    ``file_stem`` replaces ``<embedding>__<quantizer>`` (another seed's refit keeps its own files).

    For ``separate`` and ``prefix_share``, X is the pair ``(search_vecs, rec_vecs)`` and the array
    holds the two blocks side by side, ``[search levels + dedup | rec levels + dedup]`` (JSON
    ``layout``). ``prefix_share`` is built with residual k-means only (``quantizer_name="rq_kmeans"``).
    """
    if quantizer_name not in QUANTIZERS:
        make_quantizer(quantizer_name)  # raises the one-sentence error listing valid names
    if embedding_name in TWO_ID_SCHEMES:
        if not (isinstance(X, (tuple, list)) and len(X) == 2):
            raise StudyInputError(f"build_ids: embedding {embedding_name!r} needs X=(search_vecs, rec_vecs), "
                                  f"got {type(X).__name__}; pass the two matrices as a tuple.")
        arrays = (check_matrix(X[0], "search_vecs"), check_matrix(X[1], "rec_vecs"))
        if embedding_name == "prefix_share" and quantizer_name != "rq_kmeans":
            raise StudyInputError(f"build_ids: prefix_share is implemented with residual k-means only; "
                                  f"use quantizer_name='rq_kmeans', not {quantizer_name!r}.")
    else:
        arrays = (check_matrix(X, "X"),)
    resolved = QUANTIZERS[quantizer_name](**cfg).config  # validates cfg and fills defaults
    out_dir = Path(out_dir)
    stem = file_stem or f"{embedding_name}__{quantizer_name}"
    npy, js = out_dir / f"{stem}.npy", out_dir / f"{stem}.json"
    key = {"embedding": embedding_name, "quantizer": quantizer_name, "config": resolved,
           "input_sha256": array_sha256(*arrays)}
    return cached_codes(npy, js, key, lambda: _fit_scheme(embedding_name, quantizer_name, arrays, cfg, resolved),
                        seed=resolved["seed"], code=(QUANTIZERS[quantizer_name],))


def cached_codes(npy: Path, js: Path, key: dict[str, Any], fit: Callable[[], tuple[np.ndarray, dict[str, Any]]], *,
                 seed: int, code: tuple[Any, ...] = ()) -> tuple[np.ndarray, dict[str, Any]]:
    """Codes in ``npy`` and their diagnostics in ``js``: the two outputs of one ``ids`` stage keyed on ``key``
    (and the code ``fit`` reaches), published together. The JSON names the stage key (``cache_key``), and the
    stage manifest is linked as ``<npy>.manifest.json``, so a reader can tell the pair belongs together.
    ``fit()`` returns (codes, JSON-ready diagnostics); ``code`` names what ``fit`` reaches by name (the quantizer's
    class, from the lazy registry), so its code counts."""
    stage = Stage("ids", functools.partial(_write_codes, fit), outputs=(CODES, DIAGNOSTICS), config=key, seed=seed,
                  code=code)
    out = produce(stage, {CODES: npy, DIAGNOSTICS: js})
    link(out / MANIFEST, manifest_path(npy))
    return np.load(npy, allow_pickle=False), json.loads(js.read_text())


def _write_codes(fit: Callable[[], tuple[np.ndarray, dict[str, Any]]], ws: Workspace) -> None:
    codes, diag = fit()
    save_numpy(ws.out / CODES, codes)
    write_json(ws.out / DIAGNOSTICS, {**diag, "cache_key": ws.key})


def _fit_scheme(embedding: str, quantizer_name: str, arrays: tuple[np.ndarray, ...], cfg: dict[str, Any],
                resolved: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:

    K = resolved["codebook_size"]
    if len(arrays) == 1:
        q = make_quantizer(quantizer_name, **cfg).fit(arrays[0])
        codes = q.encode(arrays[0])
        qd = q.diagnostics()
        diag = scheme_diagnostics(codes, K, quantizer=quantizer_name, config=resolved,
                                  reconstruction_mse=qd["reconstruction_mse"], fit_seconds=q.fit_seconds,
                                  encode_seconds=q.encode_seconds)
        diag.update(embedding=embedding, dedup_level_size=diag["max_items_per_prefix"],
                    layout=f"columns 0..{codes.shape[1] - 1}: quantizer levels; column {codes.shape[1]}: dedup counter",
                    training={k: v for k, v in qd.items() if k not in ("quantizer", "config", "fit_seconds")})
        return deduplicate(codes, seed=resolved["seed"]), diag
    s, r = arrays
    if embedding == "prefix_share":
        sc, rc, info = prefix_share_fit(s, r, **cfg)
        fit_s = [info["seconds"] / 2] * 2  # one joint fit: split evenly between the blocks
        enc_s = [None, None]
        mse = [info["search_reconstruction_mse"], info["rec_reconstruction_mse"]]
    else:
        qs, qr, sc, rc = separate_quantizers(s, r, lambda: make_quantizer(quantizer_name, **cfg))
        fit_s, enc_s = [qs.fit_seconds, qr.fit_seconds], [qs.encode_seconds, qr.encode_seconds]
        mse = [qs.diagnostics()["reconstruction_mse"], qr.diagnostics()["reconstruction_mse"]]
    blocks = {task: scheme_diagnostics(c, K, quantizer=quantizer_name, reconstruction_mse=m, fit_seconds=f,
                                       encode_seconds=e)
              for task, c, m, f, e in zip(("search", "rec"), (sc, rc), mse, fit_s, enc_s)}
    L = sc.shape[1]
    diag = {
        "quantizer": quantizer_name, "config": resolved, "embedding": embedding, "n_items": int(len(sc)),
        # an item's search ID and rec ID are decoded separately: report the worse block
        "collision_rate": max(b["collision_rate"] for b in blocks.values()),
        "max_items_per_prefix": max(b["max_items_per_prefix"] for b in blocks.values()),
        "levels": [{**lv, "block": task} for task, b in blocks.items() for lv in b["levels"]],
        "reconstruction_mse": None if None in mse else float(np.mean(mse)),
        "fit_seconds": sum(fit_s), "encode_seconds": None if None in enc_s else sum(enc_s),
        "blocks": blocks,
        "layout": {"search": [0, L + 1], "rec": [L + 1, 2 * L + 2],
                   "description": f"columns [0, {L + 1}) are the search ID (levels 0..{L - 1} + dedup counter), "
                                  f"columns [{L + 1}, {2 * L + 2}) the rec ID (same layout)"
                                  + ("; column 0 and column L+1 are the same shared code" if embedding == "prefix_share" else "")},
        "dedup_level_size": {t: b["max_items_per_prefix"] for t, b in blocks.items()},
    }
    if embedding == "prefix_share":
        diag["layout"]["shared_columns"] = [0, L + 1]
    seed = resolved["seed"]
    return np.concatenate([deduplicate(sc, seed=seed), deduplicate(rc, seed=seed)], axis=1), diag
