"""cli/jsonout.py writes exactly json.dumps(data, indent=2, default=str), faster."""

from __future__ import annotations

import io
import ipaddress
import json
import math

import pytest
from hypothesis import given, settings, strategies as st

from netlab.cli import jsonout

SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8)
KEYS = st.text(max_size=6) | st.integers(-5, 5) | st.booleans() | st.none() | st.floats(allow_nan=False)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
                      | st.dictionaries(KEYS, inner, max_size=4), max_leaves=30)


def reference(data):
    return json.dumps(data, indent=2, default=str)


@settings(max_examples=400, deadline=None)
@given(VALUES)
def test_the_text_is_json_dumps_indent_2_byte_for_byte(data):
    assert jsonout.dumps(data) == reference(data)
    pieces = []
    jsonout.dump(data, pieces.append)
    assert "".join(pieces) == reference(data)


def test_a_probe_report_shaped_document():
    """Flat objects (written whole by the C encoder) beside nested ones, empty lists, non-ASCII, objects as str."""
    probe = {"source": "p0", "port": None, "as_expected": True, "problems": [], "rtt_ms": 10.526, "ttl": 64,
             "detail": "l'écho « répond »", "ip": ipaddress.ip_address("10.244.0.3")}
    failed = dict(probe, as_expected=False, problems=["no reply within 1.0 s", "NAT: seen 10.244.1.0"])
    data = {"lab": "x", "summary": {"probes": 2, "text": "1/2"}, "probes": [probe, failed], "pods": [],
            "stats": {2: math.inf, None: -0.0, True: float("nan")}, "nested": [[], [{}], [[1, [2, {"a": ()}]]]]}
    assert jsonout.dumps(data) == reference(data)


FLAT = SCALARS | st.sampled_from(["},\n      {", "}, {", "{", "}", "\n", "[{}]"]) | st.just([]) | st.just({}) | st.just(())
RECORDS = st.lists(st.dictionaries(KEYS, FLAT, min_size=1, max_size=5), min_size=1, max_size=5)


@settings(max_examples=400, deadline=None)
@given(RECORDS, st.integers(0, 3))
def test_a_list_of_flat_objects_written_in_one_encoder_call_is_json_dumps_byte_for_byte(records, depth):
    """A list of flat objects (a probe's results) is written by one call of the C encoder (_Writer.records): its
    objects at any depth, with empty containers, braces and separators inside strings, keys of every kind."""
    data = records
    for _ in range(depth):
        data = {"probes": data, "n": [1, {"x": data}]}
    assert jsonout.dumps(data) == reference(data)
    assert jsonout.dumps(records) == reference(records)


def test_a_list_of_objects_with_an_empty_one_or_a_nested_one_is_written_as_json_dumps_writes_it():
    for data in ([{"a": 1}, {}], [{"a": 1}, {"b": [1]}], [{"a": {}}, {"b": []}], [{"a": 1}, 2], ({"a": (), 1: None},)):
        assert jsonout.dumps(data) == reference(data)


def test_print_json_streams_the_same_text():
    out = io.StringIO()
    jsonout.dump({"a": [1, {"b": None}], "c": ()}, out.write)
    assert out.getvalue() == reference({"a": [1, {"b": None}], "c": ()})


def test_a_key_json_cannot_write_is_refused_as_json_refuses_it():
    with pytest.raises(TypeError, match="keys must be str, int, float, bool or None"):
        jsonout.dumps({"a": [1, {("x",): 1, "y": [2]}]})
