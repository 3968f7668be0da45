"""Item vectors a user brings (``-p embeddings.extra NAME=PATH``): one more ID construction of Table A.

A file is either a ``.npy`` matrix whose row i is the study's item i (the order of
``runs/<folder>/data/items.parquet``), or a parquet table with an ``item_id`` column holding the
catalogue's own ids (``items.source_id``: MovieLens' movieId) and the vector in one list column or in
every other (numeric) column. It is checked twice, each time before anything is written: its format
(readable, 2-D, numeric, finite, unique ids) when the run starts, and its alignment with the catalogue
(every item has a vector) when notebook 02 builds it.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from jointsid_utils.errors import StudyInputError

NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
SUFFIXES = (".npy", ".parquet")


def parse_extra(entries, reserved=()) -> dict[str, Path]:
    """``("NAME=PATH", ...)`` -> name -> path, with one sentence for a malformed entry, a name that is taken
    (``reserved``: the built-in embeddings and constructions) or twice, a missing file or another format."""
    out: dict[str, Path] = {}
    for entry in entries:
        name, sep, path = str(entry).partition("=")
        name, path = name.strip(), path.strip()
        if not sep or not name or not path:
            raise StudyInputError(f"embeddings.extra entry {entry!r} is not NAME=PATH; pass e.g. "
                                  "-p embeddings.extra my_vectors=/data/vectors.npy.")
        if not NAME.fullmatch(name):
            raise StudyInputError(f"embeddings.extra name {name!r} must be lower-case letters, digits and _ "
                                  "(starting with a letter, at most 32), e.g. my_vectors.")
        if name in reserved or name in out:
            raise StudyInputError(f"embeddings.extra name {name!r} is already taken by "
                                  f"{'the study' if name in reserved else 'another entry'}; choose another name.")
        file = Path(path).expanduser()
        if file.suffix not in SUFFIXES:
            raise StudyInputError(f"embeddings.extra file {file} is neither .npy nor .parquet; save the matrix "
                                  "with numpy.save or as parquet with an item_id column.")
        if not file.is_file():
            raise StudyInputError(f"embeddings.extra file {file} (for {name!r}) does not exist; check the path.")
        out[name] = file.resolve()
    return out


def read_vectors(name: str, path: Path) -> tuple[np.ndarray | None, np.ndarray]:
    """(item ids or None for ``.npy``, float32 matrix): the file's own checks, without the catalogue."""
    what = f"embeddings.extra {name!r} ({Path(path).name})"
    try:
        if Path(path).suffix == ".npy":
            ids, matrix = None, np.load(path, allow_pickle=False)
        else:
            ids, matrix = _parquet_vectors(what, pd.read_parquet(path))
    except StudyInputError:
        raise
    except Exception as err:  # a truncated or foreign file: name it, with the reader's reason
        raise StudyInputError(f"{what} cannot be read ({type(err).__name__}: {err}); write it again with "
                              "numpy.save or pandas.DataFrame.to_parquet.") from None
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or 0 in matrix.shape:
        raise StudyInputError(f"{what} has shape {matrix.shape}; it must be a non-empty 2-D matrix, one row per item.")
    if not (np.issubdtype(matrix.dtype, np.number) and not np.issubdtype(matrix.dtype, np.complexfloating)):
        raise StudyInputError(f"{what} holds {matrix.dtype} values; it must hold real numbers.")
    bad = ~np.isfinite(matrix.astype(np.float64, copy=False)).all(axis=1)
    if bad.any():
        raise StudyInputError(f"{what} has NaN or infinite values in {int(bad.sum())} row(s) (first: row "
                              f"{int(np.flatnonzero(bad)[0])}); fill or drop them before the run.")
    if not np.any(matrix):
        raise StudyInputError(f"{what} is all zeros; the quantizers need vectors that differ.")
    return ids, np.ascontiguousarray(matrix, dtype=np.float32)


def _parquet_vectors(what: str, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    if "item_id" not in frame.columns:
        raise StudyInputError(f"{what} has no item_id column (it has {', '.join(map(str, frame.columns[:8]))}); "
                              "name the catalogue's item ids item_id.")
    ids = frame["item_id"]
    if not pd.api.types.is_integer_dtype(ids):
        raise StudyInputError(f"{what}: item_id must hold integers (the catalogue's item ids), got {ids.dtype}.")
    if ids.duplicated().any():
        raise StudyInputError(f"{what}: item_id {int(ids[ids.duplicated()].iloc[0])} appears more than once; "
                              "keep one vector per item.")
    rest = frame.drop(columns="item_id")
    if len(rest.columns) == 1 and rest.iloc[:, 0].dtype == object:  # one column of lists or arrays
        try:
            matrix = np.stack([np.asarray(v, dtype=np.float64) for v in rest.iloc[:, 0]])
        except (ValueError, TypeError):
            raise StudyInputError(f"{what}: column {rest.columns[0]!r} must hold one equal-length list of numbers "
                                  "per item.") from None
    else:
        non_numeric = [c for c in rest.columns if not pd.api.types.is_numeric_dtype(rest[c])]
        if non_numeric:
            raise StudyInputError(f"{what}: column(s) {non_numeric[:5]} are not numbers; keep item_id and the "
                                  "vector's columns only (or one column of lists).")
        matrix = rest.to_numpy()
    return ids.to_numpy(dtype=np.int64), matrix


def aligned_vectors(name: str, path: Path, items: pd.DataFrame) -> np.ndarray:
    """The matrix in the study's item order: a ``.npy`` must have one row per item; a parquet's ``item_id``
    must cover every catalogue item (``items.source_id``), its other rows are left out."""
    ids, matrix = read_vectors(name, path)
    what = f"embeddings.extra {name!r} ({Path(path).name})"
    n = len(items)
    if ids is None:
        if len(matrix) != n:
            raise StudyInputError(f"{what} has {len(matrix)} rows but the catalogue has {n} items; a .npy matrix "
                                  "needs one row per item in the order of runs/<folder>/data/items.parquet "
                                  "(or use parquet with an item_id column).")
        return matrix
    source = pd.to_numeric(items["source_id"] if "source_id" in items else items["item_id"], errors="coerce")
    row = pd.Series(np.arange(len(ids)), index=ids)
    missing = ~source.isin(row.index)
    if missing.any():
        raise StudyInputError(f"{what} has no vector for {int(missing.sum())} of the {n} catalogue items (first "
                              f"item_id: {source[missing].iloc[0]}); add them, or slice the catalogue to the "
                              "items you have vectors for.")
    kept = row.loc[source.to_numpy()].to_numpy()
    if len(ids) > n:
        print(f"embeddings: {name}: {len(ids) - n} vectors of items outside the catalogue left out", flush=True)
    return np.ascontiguousarray(matrix[kept])
