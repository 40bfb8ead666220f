"""The API's results are values: they pickle (to another process), deep-copy, ``dataclasses.asdict`` and
hash, and stay read-only all the way down. They held their free-form parts in ``types.MappingProxyType``,
which does none of the first four (``TypeError: cannot pickle 'mappingproxy' object``)."""

from __future__ import annotations

import copy
import dataclasses
import json
import multiprocessing
import pickle
import typing
from collections.abc import Mapping

import pytest

from netlab.api import jsonio, results as R
from netlab.api.frozen import FrozenDict, freeze

# Every public result class: the lifecycle's, and those results.py loads from its other modules.
PUBLIC = sorted({*R._ELSEWHERE, "UpResult", "DownResult", "Status", "LabInfo"})

# A free-form part as the kernel's JSON gives it: lists and objects inside (an inspected route's nexthops).
FREE_FORM = {"dst": "10.244.1.0/24", "flags": ["onlink"], "nexthops": [{"dev": "flannel.1", "weight": 1}]}


def sample(hint: typing.Any, depth: int = 0) -> typing.Any:
    """JSON for a value of type ``hint``, with something in every field (nested free-form data too)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, __import__("types").UnionType):
        return sample(next(a for a in args if a is not type(None)), depth)
    if origin is tuple:
        return [sample(args[0], depth + 1)]
    if origin is Mapping or hint is Mapping:
        return {"route": FREE_FORM} if not args or args[1] is typing.Any else {"k": sample(args[1], depth + 1)}
    if dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        # deep down, None in what may hold more (a str, int, float or bool field takes no None: from_json checks)
        return {f.name: sample(hints[f.name], depth + 1) if depth < 4 or hints[f.name] in (str, int, float, bool)
                else None for f in dataclasses.fields(hint)}
    return {str: "x", int: 3, float: 0.5, bool: True, typing.Any: FREE_FORM}[hint]


def build(name: str) -> typing.Any:
    cls = getattr(R, name)
    return jsonio.from_json(cls, sample(cls))


@pytest.mark.parametrize("name", PUBLIC)
def test_every_result_pickles_deep_copies_converts_and_hashes(name):
    result = build(name)
    again = pickle.loads(pickle.dumps(result))
    assert again == result and hash(again) == hash(result) and type(again) is type(result)
    assert copy.deepcopy(result) == result and copy.copy(result) == result
    as_dict = dataclasses.asdict(result)
    assert set(as_dict) == {f.name for f in dataclasses.fields(result)}
    assert jsonio.from_json(type(result), as_dict) == result
    json.dumps(as_dict)  # asdict's usual next step: dataclasses, tuples and free-form parts all become JSON
    assert jsonio.from_json(type(result), json.loads(json.dumps(jsonio.to_json(result)))) == result
    assert {result: 1}[again] == 1  # usable as a key, found by an equal one


def test_free_form_parts_are_read_only_all_the_way_down():
    route = build("Inspection").routes[0]["route"]
    assert isinstance(route, FrozenDict) and route == freeze(FREE_FORM)
    assert route["dst"] == "10.244.1.0/24" and route["flags"] == ("onlink",)  # lists become tuples
    assert route["nexthops"][0] == {"dev": "flannel.1", "weight": 1} and isinstance(route["nexthops"][0], FrozenDict)
    with pytest.raises(TypeError):
        route["dst"] = "0.0.0.0/0"  # type: ignore[index]
    for change in (lambda: route.update(x=1), lambda: route.pop("dst"), route.clear,
                   lambda: route.setdefault("x")):
        with pytest.raises(TypeError):
            change()
    route.__init__({"dst": "0.0.0.0/0"})  # type: ignore[misc]
    assert route["dst"] == "10.244.1.0/24"
    assert jsonio.to_json(route) == FREE_FORM  # the JSON is the CLI's: lists again


def test_a_frozen_dict_is_a_value():
    a, b = FrozenDict({"x": 1, "y": (2, 3)}), freeze({"y": [2, 3], "x": 1})
    assert a == b and hash(a) == hash(b) and a == {"x": 1, "y": (2, 3)} and {"x": 1, "y": (2, 3)} == a
    assert a != {"x": 1} and a != [("x", 1)] and len(a) == 2 and list(a) == ["x", "y"] and "x" in a
    assert json.loads(json.dumps(a)) == {"x": 1, "y": [2, 3]} and FrozenDict(x=1) == FrozenDict([("x", 1)])
    assert pickle.loads(pickle.dumps(a)) == a and copy.deepcopy(a) == a and copy.copy(a) is a
    assert repr(FrozenDict({"x": 1})) == "FrozenDict({'x': 1})" and type(pickle.loads(pickle.dumps(a))) is FrozenDict


def _summary(report: typing.Any) -> tuple[str, int]:
    return report.lab, len(report.probes)


def test_a_result_goes_to_another_process_and_back():
    report = build("ProbeReport")
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        assert pool.apply(_summary, (report,)) == ("x", 1)
        assert pool.apply(copy.copy, (report,)) == report  # and comes back equal


def _aliased_classes() -> list[type]:
    """Every result class of netlab.api with deprecated JSON keys (``__json_aliases__``), nested ones included."""
    import importlib
    import pkgutil

    import netlab.api

    found = set()
    for info in pkgutil.iter_modules(netlab.api.__path__):
        module = importlib.import_module(f"netlab.api.{info.name}")
        found |= {cls for cls in vars(module).values()
                  if isinstance(cls, type) and "__json_aliases__" in vars(cls) and dataclasses.is_dataclass(cls)}
    return sorted(found, key=lambda cls: cls.__qualname__)


@pytest.mark.parametrize("cls", _aliased_classes(), ids=lambda cls: cls.__qualname__)
def test_every_deprecated_key_is_a_property_in_python(cls):
    """docs/json.md: "In Python the old names are properties of the results", each the value of the field it names
    now (``CniCall.duration`` was only a JSON key: AttributeError)."""
    result = jsonio.from_json(cls, sample(cls))
    for old, field in cls.__json_aliases__.items():
        assert getattr(result, old) == getattr(result, field), (cls, old)
