"""Annotation-driven value checks: the one type check of profile overrides and quantizer configs.

A value is accepted for a field when it fits the field's annotation after the harmless conversions a
YAML or JSON source needs (ints for floats, lists for tuples, numpy scalars for numbers); anything
else is one sentence that names the field, the expected type and the value, so a typo in an override
fails before an hour of work instead of silently running another experiment.
"""

from __future__ import annotations

import numbers
import types
import typing
from typing import Any

from jointsid_utils.errors import StudyInputError


_MISMATCH = object()


def check_value(hint: Any, value: Any, what: str, *, advice: str = "") -> Any:
    """``value`` converted to the type ``hint`` (a config field's annotation) if it fits: ints pass for
    floats, lists for tuples, numpy scalars for numbers, never a bool for a number. Otherwise one sentence:
    ``{what} expects {type}, got {value}; {advice}.`` The one type check of profile overrides and of
    quantizer configs."""
    converted = _convert(hint, value)
    if converted is _MISMATCH:
        raise StudyInputError(f"{what} expects {_type_name(hint)}, got {type(value).__name__} {value!r}"
                              + (f"; {advice}." if advice else "."))
    return converted


def _alternatives(hint: Any) -> tuple[Any, ...]:
    union = isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
    return typing.get_args(hint) if union else (hint,)


def _convert(hint: Any, value: Any) -> Any:
    for t in _alternatives(hint):
        if t is type(None):
            if value is None:
                return None
            continue
        origin = typing.get_origin(t) or t
        is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if origin is tuple:
            if isinstance(value, (list, tuple)):
                elem = (typing.get_args(t) or (object,))[0]
                items = [_convert(elem, v) for v in value]
                if not any(v is _MISMATCH for v in items):
                    return tuple(items)
        elif t is float:
            if is_number:
                return float(value)
        elif t is int:
            if is_number and isinstance(value, numbers.Integral):
                return int(value)
        elif t is object or isinstance(value, origin):
            return value
    return _MISMATCH


def _type_name(hint: Any) -> str:
    """``int``, ``int or None``, ``tuple``: the annotation as the error sentences name it."""
    return " or ".join("None" if t is type(None) else getattr(t, "__name__", str(t)) for t in _alternatives(hint))
