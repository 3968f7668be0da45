"""Reading a user's tables: CSV or Parquet files in a folder or a zip, checked before pandas sees them.

A table is found by its name (``ratings.csv``, or ``items`` for ``items.csv`` / ``items.parquet``),
at the top of the folder or zip or under one top folder. ``TableSource.header`` reads only the first
line (the cheap check run before any notebook); ``TableSource.read`` reads the wanted columns and
converts them. What a new user's export gets wrong fails in one sentence naming the file (empty,
binary or not UTF-8, a line with too many fields, a non-numeric id, a missing column); what can be
repaired is repaired and counted in ``TableSource.repairs``: a UTF-8 byte-order mark, a ``;``, tab or
``|`` separator, and rows missing a required field (a truncated line), which are dropped.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
import warnings
import zipfile
from collections import Counter
from pathlib import Path
from typing import IO, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from jointsid_utils.errors import StudyInputError

SEPARATORS = (",", ";", "\t", "|")
BOM = b"\xef\xbb\xbf"
SNIFF_BYTES = 1 << 16  # bytes read to check the encoding and find the header line
# Column kinds ``read`` converts to: whole numbers (ids), numbers, Unix seconds or ISO date-times, text,
# and lists of text (``|``-separated in CSV, a list column in Parquet).
KINDS = ("int", "float", "time", "str", "list")


class TableSource:
    """The tables of one folder or zip, found by name; ``repairs`` counts what reading them repaired."""

    def __init__(self, path: str | Path, what: str):
        self.path = Path(path).expanduser()
        self.what = what  # "the MovieLens folder or zip", for the fixes the messages suggest
        self.repairs: Counter[str] = Counter()
        if not self.path.exists():
            raise StudyInputError(f"data.path {self.path} does not exist; point it at {what}.")
        if self.path.is_file():
            try:
                with zipfile.ZipFile(self.path) as zf:
                    names = [n for n in zf.namelist() if not n.endswith("/") and "__MACOSX" not in n]
            except (zipfile.BadZipFile, OSError) as err:
                raise StudyInputError(f"data.path {self.path} is not a readable zip ({err}); give {what}.") from err
            # the shallowest copy of a name wins
            self.members = {Path(n).name: n for n in sorted(names, key=lambda n: (n.count("/"), n), reverse=True)}
        else:
            found = [p for p in sorted(self.path.glob("*")) + sorted(self.path.glob("*/*")) if p.is_file()]
            self.members = {p.name: p for p in reversed(found)}

    def find(self, name: str) -> str | None:
        """The file name for ``name``: itself if it has a suffix, else ``name.csv`` or ``name.parquet``."""
        candidates = [name] if Path(name).suffix else [f"{name}.csv", f"{name}.parquet"]
        present = [c for c in candidates if c in self.members]
        if len(present) > 1:
            raise StudyInputError(f"data.path {self.path} holds both {' and '.join(present)}; keep one of them.")
        return present[0] if present else None

    def require(self, name: str, hint: str) -> str:
        found = self.find(name)
        if found is None:
            wanted = name if Path(name).suffix else f"{name}.csv or {name}.parquet"
            raise StudyInputError(f"data.path {self.path} has no {wanted}; {hint}.")
        return found

    def where(self, file: str) -> str:
        return f"{file} in {self.path}"

    # ------------------------------------------------------------------------------------ reading

    @contextlib.contextmanager
    def _binary(self, file: str) -> Iterator[IO[bytes]]:
        try:
            if self.path.is_file():
                with zipfile.ZipFile(self.path) as zf, zf.open(self.members[file]) as raw:
                    yield raw
            else:
                with open(self.members[file], "rb") as raw:
                    yield raw
        except (OSError, zipfile.BadZipFile) as err:
            raise StudyInputError(f"{self.where(file)} is unreadable ({err}); copy or extract it again.") from err

    def header(self, file: str, required: tuple[str, ...], optional: tuple[str, ...] = (),
               hint: str = "") -> tuple[list[str], str]:
        """The header's columns and the separator (``""`` for Parquet), failing on a missing required column."""
        if file.endswith(".parquet"):
            with self._binary(file) as raw:
                try:  # a file's footer only; a zip member is read whole (it cannot seek cheaply)
                    columns = list(pq.read_schema(self.members[file] if self.path.is_dir()
                                                  else io.BytesIO(raw.read())).names)
                except (pa.ArrowException, OSError) as err:
                    raise StudyInputError(f"{self.where(file)} is not a readable Parquet file ({err}); "
                                          "write it again with pandas.DataFrame.to_parquet.") from err
            sep = ""
        else:
            with self._binary(file) as raw:
                head = raw.read(SNIFF_BYTES)
            first_line = _first_line(head, self.where(file))
            sep = _separator(first_line, required + optional)
            columns = [c.strip() for c in next(csv.reader([first_line], delimiter=sep))]
        missing = [c for c in required if c not in columns]
        if missing:
            shown = f"separator {_name(sep)}" if sep else "Parquet"
            raise StudyInputError(f"{self.where(file)} lacks the column(s) {', '.join(missing)} (header read with "
                                  f"{shown}: {', '.join(columns)[:200]}); it needs {', '.join(required)}"
                                  f"{hint}.")
        return columns, sep

    def read(self, file: str, kinds: dict[str, str], required: tuple[str, ...], *, hint: str = "",
             max_dropped_share: float = 0.0, drop_blank: tuple[str, ...] | None = None) -> pd.DataFrame:
        """The columns of ``kinds`` present in ``file``, converted; a value of the wrong kind fails naming it.

        Rows missing a value of ``drop_blank`` (default: ``required``; those present) are a truncated line
        or a hole in the export: dropped and counted, unless more than ``max_dropped_share`` of the rows
        miss one.
        """
        optional = tuple(c for c in kinds if c not in required)
        columns, sep = self.header(file, required, optional, hint)
        wanted = [c for c in kinds if c in columns]
        with self._binary(file) as raw:
            head = raw.read(len(BOM))
        if head == BOM:
            self.repairs["UTF-8 byte-order marks removed"] += 1
        if sep not in ("", ","):
            self.repairs[f"files read with separator {_name(sep)}"] += 1
        frame = self._parquet(file, wanted) if not sep else self._csv(file, sep, columns, wanted, kinds)
        blank = pd.Series(False, index=frame.index)
        for col in (required if drop_blank is None else drop_blank):
            if col in frame:
                blank |= _is_blank(frame[col])
        if blank.any():
            first = int(np.flatnonzero(blank.to_numpy())[0]) + 1
            if blank.mean() > max_dropped_share:
                raise StudyInputError(f"{int(blank.sum())} of the {len(frame)} rows of {self.where(file)} miss a "
                                      f"value of {', '.join(required)} (first: data row {first}), more than "
                                      f"data.max_dropped_share={max_dropped_share:g} allows; complete or remove "
                                      "them, or raise data.max_dropped_share to drop them.")
            self.repairs[f"incomplete rows of {file} (a truncated line or a missing value), dropped"] += int(blank.sum())
            frame = frame[~blank]
        out = {col: _as_kind(frame[col], kinds[col], col, self.where(file)) for col in wanted}
        return pd.DataFrame(out, index=frame.index).reset_index(drop=True)

    def _parquet(self, file: str, wanted: list[str]) -> pd.DataFrame:
        with self._binary(file) as raw:
            try:
                return pd.read_parquet(io.BytesIO(raw.read()), columns=wanted)
            except (pa.ArrowException, OSError, ValueError) as err:
                raise StudyInputError(f"{self.where(file)} is not a readable Parquet file ({err}); "
                                      "write it again with pandas.DataFrame.to_parquet.") from err

    def _csv(self, file: str, sep: str, columns: list[str], wanted: list[str], kinds: dict[str, str]) -> pd.DataFrame:
        """Typed in one pass when every value parses (the fast path of a clean ML-25M); else as text.

        Every column is read (``usecols`` would let a line with too many fields pass unnoticed), under the
        header as ``header`` read it (stripped, so " title" is title) and never with a row index (pandas
        would take one if every line had a field more than the header, shifting the columns).
        """
        numeric = {"int": "int64", "time": "int64", "float": "float64"}
        typed = {c: numeric.get(kinds.get(c, "str"), str) if c in wanted else str for c in columns}
        passes = ([typed] if any(kinds[c] in numeric for c in wanted) else []) + [str]
        for dtype in passes:
            try:
                with self._binary(file) as raw, warnings.catch_warnings():
                    warnings.simplefilter("error", pd.errors.ParserWarning)
                    text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
                    frame = pd.read_csv(text, sep=sep, header=0, names=columns, index_col=False, dtype=dtype,
                                        keep_default_na=False, engine="c")
                return frame[wanted]
            except pd.errors.ParserWarning as err:
                raise StudyInputError(f"{self.where(file)} has more fields on its lines than in its header; remove "
                                      f"the extra separator {_name(sep)} at the end of the lines or name the extra "
                                      "column in the header.") from err
            except (ValueError, TypeError, OverflowError) as err:
                if isinstance(err, UnicodeDecodeError):
                    raise StudyInputError(f"{self.where(file)} is not UTF-8 text ({err.reason} at byte "
                                          f"{err.start}); save it as UTF-8 CSV or as Parquet.") from err
                if isinstance(err, pd.errors.ParserError):
                    raise StudyInputError(f"{self.where(file)} cannot be split into its columns ({_parser_detail(err)}); "
                                          f"quote fields that contain the separator {_name(sep)} or export the "
                                          "file again.") from err
                if dtype is str:
                    raise StudyInputError(f"{self.where(file)} could not be parsed ({err}); export it again as "
                                          "UTF-8 CSV or Parquet.") from err
        raise AssertionError("unreachable")  # the text pass returns or raises


def _first_line(head: bytes, where: str) -> str:
    """The header line of a CSV file's first bytes, after checking they are UTF-8 text."""
    if head.startswith(b"PAR1"):
        raise StudyInputError(f"{where} is a Parquet file with a .csv name; rename it to .parquet.")
    body = head[len(BOM):] if head.startswith(BOM) else head
    if not body.strip():
        raise StudyInputError(f"{where} is empty; it needs a header line and one row per record.")
    if b"\x00" in body:
        raise StudyInputError(f"{where} is binary, not a text table (a zero byte at offset {body.index(0)}); "
                              "give the CSV file itself (UTF-8) or a Parquet file.")
    cut = body if len(head) < SNIFF_BYTES else body[: body.rfind(b"\n") + 1] or body
    try:
        text = cut.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.start < len(cut) - 3:  # not a character cut at the end of the sample
            raise StudyInputError(f"{where} is not UTF-8 text ({err.reason} at byte {err.start}); save it as "
                                  "UTF-8 CSV or as Parquet.") from err
        text = cut[: err.start].decode("utf-8")
    return text.splitlines()[0] if text.strip() else ""


def _separator(header: str, known: tuple[str, ...]) -> str:
    """The separator that splits the header into the most known columns (ties: more columns, then ``,``)."""
    def score(sep: str) -> tuple[int, int]:
        names = [c.strip() for c in next(csv.reader([header], delimiter=sep))]
        return sum(c in names for c in known), len(names)

    best = max(SEPARATORS, key=lambda s: (*score(s), -SEPARATORS.index(s)))
    if score(best)[0] == 0:  # no known column under any separator: let csv.Sniffer name the likely one
        try:
            return csv.Sniffer().sniff(header, delimiters="".join(SEPARATORS)).delimiter
        except csv.Error:
            return ","
    return best


def _name(sep: str) -> str:
    return {"\t": "tab", ",": "','", ";": "';'", "|": "'|'"}.get(sep, repr(sep))


def _parser_detail(err: Exception) -> str:
    """pandas' "Error tokenizing data. C error: Expected 4 fields in line 7, saw 5" without its preamble."""
    text = str(err).strip().splitlines()[0]
    text = re.sub(r"^Error tokenizing data\. C error: ", "", text)
    return text.rstrip(".").replace(". ", "; ")


def _is_blank(values: pd.Series) -> pd.Series:
    if values.dtype == object or pd.api.types.is_string_dtype(values):
        return values.isna() | (values.astype(str).str.strip() == "")
    return values.isna()


def _as_kind(values: pd.Series, kind: str, col: str, where: str) -> pd.Series:
    """``values`` as int64 / float64 / int64 seconds / str (missing: <NA>, NaN, <NA>, None)."""
    if kind == "str":
        return pd.Series([None if _missing(v) else str(v).strip() for v in values], index=values.index, dtype=object)
    if kind == "list":
        return pd.Series([_as_list(v) for v in values], index=values.index, dtype=object)
    if kind == "int" and pd.api.types.is_integer_dtype(values) and not values.isna().any():
        return values.astype("int64")
    if kind == "float" and pd.api.types.is_float_dtype(values):
        return values.astype("float64")
    text = values.astype(str).str.strip()
    blank = values.isna() | (text == "") | text.isin(["nan", "<NA>", "None"])
    numbers = pd.to_numeric(text.where(~blank), errors="coerce")
    bad = numbers.isna() & ~blank
    problem = "non-numeric"
    if kind == "time" and bad.all() and not blank.all():  # dates, not a mix of dates and numbers
        dates = pd.to_datetime(text.where(~blank), errors="coerce", utc=True, format="ISO8601")
        if dates[~blank].notna().all():
            seconds = (dates - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
            return seconds.astype("Int64" if blank.any() else "int64")
    if not bad.any() and kind in ("int", "time"):
        bad = numbers.notna() & (numbers != np.floor(numbers))
        problem = "non-integer"
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        expected = {"int": "a whole number (ids must be integers; map other ids to numbers first)",
                    "float": "a number", "time": "Unix seconds (all of them) or ISO 8601 date-times (all of them)"}
        raise StudyInputError(f"{where} has a {problem} {col} ({text.iloc[first]!r} on data row "
                              f"{values.index[first] + 1}); each {col} must be {expected[kind]}.")
    if kind == "float":
        return numbers.astype("float64")
    return numbers.astype("Int64" if blank.any() else "int64")


def _as_list(value) -> list[str]:
    """``"Comedy|Drama"`` or a Parquet list -> ``["Comedy", "Drama"]`` (blanks dropped)."""
    if isinstance(value, (list, tuple, np.ndarray)):
        parts = [str(v) for v in value if not _missing(v)]
    else:
        parts = [] if _missing(value) else str(value).split("|")
    return [p.strip() for p in parts if p.strip()]


def _missing(value) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and np.isnan(value):
        return True
    return value is pd.NA or (isinstance(value, str) and not value.strip())
