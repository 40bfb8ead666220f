"""pydantic's validation errors as located, one-line problems a YAML author understands.

pydantic says ``pods.3.ip: Input should be a valid IPv4 address [type=...]``;
a user wants ``topo.yaml:17: pods[3].ip: "10.244.0.300" is not an IPv4
address like 10.244.0.2``. Each error is mapped to its line through the
:class:`~netlab.model.yamlsource.Source` the reader kept, worded after the
YAML the user wrote (a boolean is ``no``, not ``False``), and given a hint
of what to do next: the close field name, the allowed range.
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from netlab.errors import Problem, TopologyError
from netlab.model.location import ROOT_FIELD, Loc, clip, format_path, show, yaml_kind
from netlab.model.topology import RANGES, Topology
from netlab.model.yamlsource import Source

MAX_PROBLEMS = 100  # reported at once; the rest are summed up in one line
_YAML_NULL_WORDS = {"~", "null"}


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The pydantic model that the mapping at ``loc`` is validated as (None if not a model)."""
    def unwrap(tp: Any) -> type[BaseModel] | None:
        while True:
            origin = typing.get_origin(tp)
            if origin is typing.Annotated:
                tp = typing.get_args(tp)[0]
            elif origin in (typing.Union, types.UnionType):
                args = [a for a in typing.get_args(tp) if a is not type(None)]
                tp = args[0] if len(args) == 1 else None
            elif origin is list:
                return ("list", typing.get_args(tp)[0])  # type: ignore[return-value]
            else:
                return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None

    current: Any = Topology
    for part in loc:
        if isinstance(current, tuple):  # ("list", item type)
            if not isinstance(part, int):
                return None
            current = unwrap(current[1])
            continue
        if current is None or not isinstance(part, str):
            return None
        field = next((f for name, f in current.model_fields.items() if (f.alias or name) == part), None)
        if field is None:
            return None
        current = unwrap(field.annotation)
    return current if isinstance(current, type) else None


def _unknown_field(loc: Loc) -> str:
    key = str(loc[-1])
    model = _model_at(loc[:-1])
    if model is None:
        return f"unknown field {show(key)}; remove it"
    allowed = [f.alias or name for name, f in model.model_fields.items()]
    def norm(text: str) -> str:
        return text.lower().replace("_", "").replace("-", "")

    close = [a for a in allowed if norm(a) == norm(key)] or difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    where = format_path(loc[:-1]) or "a topology"
    msg = f"unknown field {show(key)}"
    if close:
        msg += f"; did you mean {close[0]!r}?"
    return msg + f" ({where} takes: {', '.join(allowed)})"


def _range_hint(loc: Loc) -> str:
    name = next((p for p in reversed(loc) if isinstance(p, str)), "")
    if name in RANGES:
        low, high, what = RANGES[name]
        return f"; {what} must be {low}-{high}"
    return ""


def _describe(err: dict, src: Source) -> str:
    """A pydantic error in words a YAML author understands, on one line."""
    loc = tuple(p for p in err["loc"] if p != "[key]")
    kind = err["type"]
    value = err.get("input")
    raw = src.raw.get(loc)
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        return _unknown_field(loc)
    if kind == "missing":
        return f"required field is missing; add {loc[-1]}:" if loc else "required field is missing"
    if value is None and kind != "value_error":
        if raw is not None and raw.lower() in _YAML_NULL_WORDS:
            return f"{raw!r} is YAML's null here; quote it if you meant the text, or give a value"
        return "has no value (null); give one or remove the key"
    if isinstance(value, bool) and kind not in ("bool_type", "bool_parsing", "value_error"):
        word = raw if raw is not None else str(value).lower()
        if kind.startswith("int") or kind in ("less_than_equal", "greater_than_equal"):
            return f"{word!r} is a YAML boolean here, not a number; write a number"
        return f"{word!r} is a YAML boolean here; quote it if you meant the text"
    if kind == "string_type" and isinstance(value, (int, float)):
        text = raw if raw is not None else str(value)
        return f"{text} is a number here; quote it (\"{clip(text)}\") if you meant text"
    if kind in ("int_type", "int_parsing") and isinstance(value, str):
        return f"{show(value)} is text here; write a plain number without quotes"
    if kind in ("int_type", "int_from_float") and isinstance(value, float):
        return f"{raw or value} is not a whole number"
    if kind in ("less_than_equal", "greater_than_equal", "less_than", "greater_than"):
        limit = next(iter(ctx.values()), "?")
        word = "large" if kind.startswith("less") else "small"
        return f"{value} is too {word} (limit {limit}){_range_hint(loc)}"
    if kind in ("dict_type", "model_type", "model_attributes_type", "list_type", "string_type", "int_type",
                "bool_type", "bool_parsing"):
        want = {"dict_type": "a mapping (key: value)", "model_type": "a mapping (key: value)",
                "model_attributes_type": "a mapping (key: value)", "list_type": "a list",
                "string_type": "a string", "int_type": "a number", "bool_type": "true or false",
                "bool_parsing": "true or false"}[kind]
        return f"must be {want}, not {yaml_kind(value)}"
    if kind == "literal_error":
        return f"{show(value)} is not allowed; use {ctx.get('expected', 'one of the listed values')}"
    if kind == "too_short":
        return f"needs at least {ctx.get('min_length', 1)} entry; add one"
    if kind == "too_long" or kind == "string_too_long":
        return f"is too long (at most {ctx.get('max_length')})"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    return " ".join(msg.split())


def problems_from_validation(exc: ValidationError, src: Source) -> list[Problem]:
    """Turn every pydantic error into a located Problem, minus those about values the reader already flagged."""
    out = []
    for err in exc.errors(include_url=False):
        raw_loc = tuple(err["loc"])
        if src.flagged and any(raw_loc[:n] in src.flagged for n in range(len(raw_loc) + 1)):
            continue
        loc = tuple(p for p in raw_loc if p != "[key]")
        out.append(Problem(src.file, src.line_of(loc), format_path(loc) or ROOT_FIELD, _describe(err, src)))
    return out


def topology_error(problems: list[Problem]) -> TopologyError:
    """A TopologyError with at most MAX_PROBLEMS problems: thousands of lines help nobody."""
    if len(problems) <= MAX_PROBLEMS:
        return TopologyError(problems)
    shown = sorted(problems, key=lambda p: (p.line or 0, p.field))[:MAX_PROBLEMS]
    last = shown[-1]
    more = Problem(last.file, last.line, ROOT_FIELD,
                   f"... and {len(problems) - MAX_PROBLEMS} more problems; fix these first")
    return TopologyError(shown + [more])
