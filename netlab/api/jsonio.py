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
        keys, omit_none = shape
        if omit_none:
            return {key: to_json(value) for key, name in keys if (value := getattr(obj, name)) is not None}
        return {key: to_json(getattr(obj, name)) for key, name in keys}  # with the class's __json_properties__
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
# fields give them, not as values. A class's __json_aliases__ ({"old key": "field"}: a
# key a field had before docs/json.md's vocabulary) writes the old key right after the
# field's, with the same value, for one release; from_json takes either.
_PLAIN = frozenset({str, int, float, bool, type(None)})
_SHAPES: dict[type, tuple[tuple[tuple[str, str], ...], bool] | None] = {}


def _shape(cls: type) -> tuple[tuple[tuple[str, str], ...], bool] | None:
    """(JSON key, attribute) pairs in the JSON's order, and whether None values are left out."""
    if not dataclasses.is_dataclass(cls):
        return None
    aliases: dict[str, str] = getattr(cls, "__json_aliases__", {})
    keys: list[tuple[str, str]] = []
    for name in [f.name for f in dataclasses.fields(cls)] + list(getattr(cls, "__json_properties__", ())):
        keys.append((name, name))
        keys += [(old, name) for old, new in aliases.items() if new == name]
    return tuple(keys), bool(getattr(cls, "__json_omit_none__", False))


def from_json(cls: type[T], data: Mapping[str, Any]) -> T:
    """Build ``cls`` (a result class, a dataclass) from JSON data (a dict) with exactly its fields: what the CLI's
    ``-o json`` printed, or :func:`to_json` gave, read back (a file a test saved, another process's answer).

    Data that is not ``cls``'s JSON (a key missing or unknown, in it or in an object inside it: another result's
    JSON, or one another netlab version wrote) is a :class:`~netlab.errors.UsageError`, as a ``data`` that is no
    dict is: one line naming ``cls``, where in the data, the type expected there and the key
    (``netlab.api.from_json: not a ProbeReport's JSON: results[0] (a ProbeResult): no key 'src'``)."""
    with method("netlab.api.from_json"):
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            raise UsageError(f"cls must be a result class (netlab.api.results), not {given(cls)}")
        check_mapping("data", data)
    try:
        return _converter(cls)(data)  # type: ignore[no-any-return]
    except _Mismatch as exc:
        where = "".join(exc.path).removeprefix(".")
        inside = f"{where} ({_a(exc.cls)}): " if where else ""
        raise UsageError(f"netlab.api.from_json: not {_a(cls.__name__)}'s JSON: {inside}{exc.problem}") from None


def _a(name: str) -> str:
    return f"{'an' if name[:1] in tuple('AEIOU') else 'a'} {name}"


class _Mismatch(Exception):
    """Data that is not a result class's JSON: ``problem`` with it, in an object of class ``cls`` at ``path``
    (each step a ``.field`` or ``[index]``, the outermost first) inside the data :func:`from_json` was given."""

    def __init__(self, cls: str, problem: str):
        super().__init__(problem)
        self.cls, self.problem = cls, problem
        self.path: list[str] = []


def _keys(keys: Any) -> str:
    names = sorted(map(str, keys))
    return f"key {names[0]!r}" if len(names) == 1 else f"keys {', '.join(map(repr, names))}"


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

        def items(v: Any) -> Any:
            try:
                return None if v is None else tuple(item(x) for x in v)
            except _Mismatch as exc:  # which item: looked for only on the way out
                exc.path.insert(0, next(f"[{i}]" for i, x in enumerate(v) if _fails(item, x)))
                raise
        return items
    if origin is Mapping or hint is Mapping:
        args = typing.get_args(hint)
        inner = _converter(args[1] if args else Any)
        if inner is _same:  # free-form values (Any, str, int): read-only all the way down, lists as tuples
            inner = freeze

        def values(v: Any) -> Any:
            try:
                return None if v is None else FrozenDict({k: inner(x) for k, x in v.items()})
            except _Mismatch as exc:
                exc.path.insert(0, next(f"[{k!r}]" for k, x in v.items() if _fails(inner, x)))
                raise
        return values
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _dataclass_converter(hint)
    if hint is float:
        return lambda v: float(v) if isinstance(v, int) and not isinstance(v, bool) else v
    return _same


def _same(value: Any) -> Any:
    return value


def _fails(convert: Callable[[Any], Any], value: Any) -> bool:
    try:
        convert(value)
    except _Mismatch:
        return True
    return False


def _dataclass_converter(cls: type) -> Callable[[Any], Any]:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    required = {name for name, f in fields.items()
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    names = frozenset(fields)
    derived = frozenset(getattr(cls, "__json_properties__", ()))
    aliases: dict[str, str] = dict(getattr(cls, "__json_aliases__", {}))  # old key -> the field it names now
    # The converters of the fields whose values change (plain values are taken as they are),
    # worked out on first use: a class may name itself among its fields.
    worked_out: list[dict[str, Callable[[Any], Any]]] = []
    scalars: list[tuple[str, frozenset[type], str]] = []  # (field, the types its JSON value may have, their words)

    def build(data: Any) -> Any:
        if data is None:
            return None
        if not worked_out:
            every = {name: _converter(hints[name]) for name in fields}
            worked_out.append({name: fn for name, fn in every.items() if fn is not _same})
            scalars.extend((name, *kind) for name in fields if (kind := _scalar(hints[name])) is not None)
        convert = worked_out[0]
        if not isinstance(data, Mapping):
            raise _Mismatch(cls.__name__, f"{given(data)}, not an object (a dict)")
        keys: typing.AbstractSet[Any] = data.keys()
        if aliases and aliases.keys() & keys:
            data = _unalias(cls.__name__, data, aliases)
            keys = data.keys()
        if derived & keys:
            keys = keys - derived
            data = {k: v for k, v in data.items() if k not in derived}
        if not keys <= names:
            raise _Mismatch(cls.__name__, f"unknown {_keys(keys - names)}")
        if not required <= keys:
            raise _Mismatch(cls.__name__, f"no {_keys(required - keys)}")
        kwargs = dict(data)
        for name, allowed, word in scalars:  # a str, int, float or bool field (or None): the value's type first
            if name in kwargs and type(value := kwargs[name]) not in allowed and not _sub(value, allowed):
                raise _Mismatch(cls.__name__, f"{name}: {'None' if value is None else given(value)}, not {word}")
        for name, fn in convert.items():
            if name in kwargs:
                try:
                    kwargs[name] = fn(kwargs[name])
                except _Mismatch as exc:
                    exc.path.insert(0, f".{name}")
                    raise
        return cls(**kwargs)

    return build


_SCALARS: dict[Any, tuple[frozenset[type], str]] = {
    str: (frozenset({str}), "a str"), bool: (frozenset({bool}), "a bool"),
    int: (frozenset({int}), "an int"),  # not a bool, though Python's bool is an int
    float: (frozenset({float, int}), "a float"),  # JSON's 1 for 1.0 (the float converter makes it 1.0)
}


def _scalar(hint: Any) -> tuple[frozenset[type], str] | None:
    """The types a field of type ``hint`` may have in JSON, and their words, for a str, int, float or bool field,
    None too where it is Optional (``float | None``); None for any other field (its converter checks it)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        inner = _SCALARS.get(options[0]) if len(options) == 1 else None
        return (inner[0] | {type(None)}, f"{inner[1]} or None") if inner is not None else None
    return _SCALARS.get(hint)


def _sub(value: Any, allowed: frozenset[type]) -> bool:
    """``value``, of a type not among ``allowed``, is of a subclass of one (a str subclass), not a bool for an int."""
    if isinstance(value, bool):
        return bool in allowed
    return any(isinstance(value, t) for t in allowed)


def _unalias(cls: str, data: Mapping[str, Any], aliases: Mapping[str, str]) -> dict[str, Any]:
    """``data`` with each deprecated key (docs/json.md) taken as the field it names now: JSON an older netlab wrote
    has the old key alone, this one's both, with one value (two values are no result's JSON)."""
    out = dict(data)
    for old in aliases.keys() & data.keys():
        new = aliases[old]
        value = out.pop(old)
        if new not in out:
            out[new] = value
        elif out[new] != value:
            raise _Mismatch(cls, f"key {old!r} (the old name of {new!r}) differs from {new!r}")
    return out
