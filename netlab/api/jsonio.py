"""The API results' JSON, both ways: :func:`to_json` gives the JSON the CLI prints for a result,
:func:`from_json` builds a result class from it (netlab.api.results holds the classes).

Both work out what to do once per class or type hint, not once per value: a
500-pod probe's result holds 250,000 objects of a few classes.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, Callable, TypeVar

from netlab.api.args import check_mapping, given, method
from netlab.api.frozen import FrozenDict, freeze
from netlab.errors import UsageError

T = TypeVar("T")


def to_json(obj: Any) -> Any:
    """The JSON the CLI prints for a result (dataclasses to dicts, tuples to lists)."""
    cls = type(obj)
    if cls in _PLAIN:
        return obj
    try:
        shape = _SHAPES[cls]
    except KeyError:
        shape = _SHAPES[cls] = _shape(cls)
    if shape is not None:
        names, omit_none = shape
        if omit_none:
            return {name: to_json(value) for name in names if (value := getattr(obj, name)) is not None}
        return {name: to_json(getattr(obj, name)) for name in names}  # with the class's __json_properties__
    if isinstance(obj, Mapping):
        return {k: to_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json(v) for v in obj]
    return obj


# What to_json does with each class, worked out once per class (a 500-pod probe's
# result holds 250,000 objects): a dataclass's field names, then the properties it
# names in __json_properties__ (what the CLI's table shows, worked out from the
# fields: a pod's READY and STATUS), and whether it leaves out fields that are
# None; None for any other class. from_json takes those properties back as the
# fields give them, not as values.
_PLAIN = frozenset({str, int, float, bool, type(None)})
_SHAPES: dict[type, tuple[tuple[str, ...], bool] | None] = {}


def _shape(cls: type) -> tuple[tuple[str, ...], bool] | None:
    if not dataclasses.is_dataclass(cls):
        return None
    names = tuple(f.name for f in dataclasses.fields(cls)) + tuple(getattr(cls, "__json_properties__", ()))
    return names, bool(getattr(cls, "__json_omit_none__", False))


def from_json(cls: type[T], data: Mapping[str, Any]) -> T:
    """Build ``cls`` (a result class, a dataclass) from JSON data (a dict) with exactly its fields (a missing or
    unknown key is a bug: TypeError)."""
    with method("netlab.api.from_json"):
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            raise UsageError(f"cls must be a result class (netlab.api.results), not {given(cls)}")
        check_mapping("data", data)
    return _converter(cls)(data)  # type: ignore[no-any-return]


# A converter per type hint, worked out once: a 500-pod probe's result holds
# 250,000 objects of a few classes, so the hint is read once per class and
# field, not once per value (resolving string annotations compiles each one).
_CONVERTERS: dict[Any, Callable[[Any], Any]] = {}


def _converter(hint: Any) -> Callable[[Any], Any]:
    """The function that turns JSON data into a value of type ``hint`` (None stays None)."""
    try:
        return _CONVERTERS[hint]
    except KeyError:
        pass
    except TypeError:  # an unhashable hint: not cached
        return _make_converter(hint)
    _CONVERTERS[hint] = _make_converter(hint)
    return _CONVERTERS[hint]


def _make_converter(hint: Any) -> Callable[[Any], Any]:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(options) != 1:
            return _same
        inner = _converter(options[0])
        if inner is _same:
            return _same
        return lambda v: None if v is None else inner(v)
    if origin is tuple:
        item = _converter(typing.get_args(hint)[0])
        return lambda v: None if v is None else tuple(item(x) for x in v)
    if origin is Mapping or hint is Mapping:
        args = typing.get_args(hint)
        inner = _converter(args[1] if args else Any)
        if inner is _same:  # free-form values (Any, str, int): read-only all the way down, lists as tuples
            inner = freeze
        return lambda v: None if v is None else FrozenDict({k: inner(x) for k, x in v.items()})
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _dataclass_converter(hint)
    if hint is float:
        return lambda v: float(v) if isinstance(v, int) and not isinstance(v, bool) else v
    return _same


def _same(value: Any) -> Any:
    return value


def _dataclass_converter(cls: type) -> Callable[[Any], Any]:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    required = {name for name, f in fields.items()
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    names = frozenset(fields)
    derived = frozenset(getattr(cls, "__json_properties__", ()))
    # The converters of the fields whose values change (plain values are taken as they are),
    # worked out on first use: a class may name itself among its fields.
    worked_out: list[dict[str, Callable[[Any], Any]]] = []

    def build(data: Any) -> Any:
        if data is None:
            return None
        if not worked_out:
            every = {name: _converter(hints[name]) for name in fields}
            worked_out.append({name: fn for name, fn in every.items() if fn is not _same})
        convert = worked_out[0]
        keys = data.keys()
        if derived & keys:
            keys = keys - derived
            data = {k: v for k, v in data.items() if k not in derived}
        if not keys <= names:
            raise TypeError(f"{cls.__name__}: unexpected fields {sorted(keys - names)}")
        if not required <= keys:
            raise TypeError(f"{cls.__name__}: missing field {sorted(required - keys)[0]!r}")
        kwargs = dict(data)
        for name, fn in convert.items():
            if name in kwargs:
                kwargs[name] = fn(kwargs[name])
        return cls(**kwargs)

    return build
