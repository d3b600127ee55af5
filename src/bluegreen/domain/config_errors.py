"""pydantic's validation errors -> "key.path: what is expected", in the config's own words.

pydantic's wording never reaches the user: each problem names its key path, what the field
expects (with its bounds) and, for an unknown key, the keys allowed there.
"""

from __future__ import annotations

import difflib
import json
import re
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

import pydantic
from pydantic import BaseModel

from bluegreen.domain.config_fields import value_kind
from bluegreen.domain.config_models import Config

_TYPE_WORDS = {
    "string_type": "expected a string",
    "int_type": "expected a whole number",
    "float_type": "expected a number",
    "bool_type": "expected true or false",
    "tuple_type": "expected a list",
    "list_type": "expected a list",
    "dict_type": "expected a table",
    "model_type": "expected a table",
    "path_type": "expected a path string",
}


def describe_errors(exc: pydantic.ValidationError) -> list[str]:
    lines: list[str] = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        if loc and loc[-1] == "[key]":
            loc = loc[:-1]
        where = key_path(loc) or "(top level)"
        line = f"{where}: {_describe(error, loc)}"
        if line not in lines:
            lines.append(line)
    return lines


def key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            word = part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else json.dumps(part)
            out += f".{word}" if out else word
    return out


def _describe(error: Any, loc: tuple[int | str, ...]) -> str:
    kind: str = error["type"]
    ctx: dict[str, Any] = error.get("ctx") or {}
    value = error.get("input")
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return _unknown_key(loc)
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind in _TYPE_WORDS:
        return f"{_TYPE_WORDS[kind]}, got {value_kind(value)}"
    if kind == "finite_number":
        return f"must be a finite number{_got(value)}{_allowed(loc)}"
    if kind == "greater_than":
        return f"must be greater than {_num(ctx['gt'])}{_got(value)}{_allowed(loc)}"
    if kind == "greater_than_equal":
        return f"must be at least {_num(ctx['ge'])}{_got(value)}{_allowed(loc)}"
    if kind == "less_than_equal":
        return f"must be at most {_num(ctx['le'])}{_got(value)}{_allowed(loc)}"
    if kind == "too_short":
        if ctx.get("min_length") == 1:
            return "must not be empty"
        return f"needs at least {ctx.get('min_length')} entries"
    if kind == "literal_error":
        return f"expected one of {ctx.get('expected')}{_got(value)}"
    return f"{error['msg']}{_got(value)}"


def _unknown_key(loc: tuple[int | str, ...]) -> str:
    model = _model_at(loc[:-1])
    if model is None:
        return "unknown key"
    known = list(model.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    guess = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key{guess}; expected one of: {', '.join(known)}"


def _allowed(loc: tuple[int | str, ...]) -> str:
    """`; allowed: 0 to 600`, from the bounds the field declares (empty when it has none)."""
    model = _model_at(loc[:-1])
    field = model.model_fields.get(str(loc[-1])) if model and loc else None
    if field is None:
        return ""
    bounds = {k: getattr(m, k) for m in field.metadata for k in ("gt", "ge", "le") if hasattr(m, k)}
    if "le" not in bounds:
        return ""
    low = f"{_num(bounds['ge'])}" if "ge" in bounds else f"above {_num(bounds.get('gt', 0))} up"
    return f"; allowed: {low} to {_num(bounds['le'])}"


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """Walk the model tree along a key path, to list the keys allowed where a typo was found."""
    current: Any = Config
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        elif get_origin(current) is tuple and isinstance(part, int):  # a list of tables
            current = get_args(current)[0]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _unwrap(get_args(annotation)[0])
    if origin in (Union, UnionType):
        for arg in get_args(annotation):
            if arg is not type(None):
                return _unwrap(arg)
    return annotation


def _got(value: object) -> str:
    plain = isinstance(value, int | float) and not isinstance(value, bool)
    return f" (got {value if plain else value_kind(value)})"


def _num(value: object) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
