"""The JSON schema (schema/topology.schema.json, what editors check a topology with) refuses what the loader
refuses field by field: label, selector and matchLabels keys, impair interface names, a container port's name
(IANA_SVC_NAME), a NetworkPolicy port's number (1-65535) and name, a Service's and a policy's name. Each value
here is refused by both, and the valid ones beside them pass both.

python-jsonschema is not a dependency: ``valid`` checks the keywords the generated schema uses, as Draft 2020-12
defines them (``format`` is an annotation there, not checked)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from netlab.api.topology import load
from netlab.errors import TopologyError

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schema" / "topology.schema.json").read_text("utf-8"))
KEYWORDS = {"$defs", "$ref", "$schema", "additionalProperties", "anyOf", "const", "default", "description", "enum",
            "format", "items", "maxLength", "maximum", "minItems", "minLength", "minimum", "pattern", "patternProperties", "properties",
            "propertyNames", "required", "title", "type"}
TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def valid(value: Any, schema: Any = SCHEMA) -> bool:
    if schema is True or schema == {}:
        return True
    if schema is False:
        return False
    assert set(schema) <= KEYWORDS, set(schema) - KEYWORDS  # a keyword this checker does not know
    if "$ref" in schema and not valid(value, SCHEMA["$defs"][schema["$ref"].rsplit("/", 1)[1]]):
        return False
    if "anyOf" in schema and not any(valid(value, s) for s in schema["anyOf"]):
        return False
    if "const" in schema and value != schema["const"]:
        return False
    if "enum" in schema and value not in schema["enum"]:
        return False
    if "type" in schema and not _typed(value, schema["type"]):
        return False
    if isinstance(value, str):
        if len(value) > schema.get("maxLength", len(value)) or len(value) < schema.get("minLength", 0):
            return False
        # ECMA-262's $ is the end of the text (Python's would match before a final newline too)
        if "pattern" in schema and not re.search(schema["pattern"].replace("$", r"\Z"), value):
            return False
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < schema.get("minimum", value) or value > schema.get("maximum", value):
            return False
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or not all(valid(v, schema.get("items", True)) for v in value):
            return False
    if isinstance(value, dict):
        props = schema.get("properties", {})
        if any(k not in value for k in schema.get("required", [])):
            return False
        patterns = schema.get("patternProperties", {})
        for k, v in value.items():
            if not valid(k, schema.get("propertyNames", True)):
                return False
            matched = [p for p in patterns if re.search(p.replace("$", r"\Z"), k)]
            if not all(valid(v, patterns[p]) for p in matched):
                return False
            if k in props and not valid(v, props[k]):
                return False
            if k not in props and not matched and not valid(v, schema.get("additionalProperties", True)):
                return False
    return True


def _typed(value: Any, kind: str | list[str]) -> bool:
    if isinstance(kind, list):
        return any(_typed(value, k) for k in kind)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, TYPES[kind])


BASE = {
    "name": "qfs", "nodes": [{"name": "n1", "impair": {"eth0": {"delay": "10ms"}}}],
    "pods": [{"name": "a", "node": "n1", "labels": {"app": "web", "app.kubernetes.io/name": "web"},
              "containers": [{"name": "c", "ports": [{"containerPort": 8080, "name": "http-8080"}]}]}],
    "services": [{"name": "web", "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http-8080"}]}],
    "networkPolicies": [{"name": "allow.web", "spec": {
        "podSelector": {"matchLabels": {"app": "web"}},
        "ingress": [{"ports": [{"port": "http-8080"}, {"port": 65535}, {"port": 1, "endPort": 2}]}]}}],
}


def changed(path: tuple, value: Any) -> dict:
    topo = copy.deepcopy(BASE)
    where: Any = topo
    for part in path[:-1]:
        where = where[part]
    where[path[-1]] = value
    return topo


LABELS = ("pods", 0, "labels")
SELECTOR = ("services", 0, "selector")
MATCH = ("networkPolicies", 0, "spec", "podSelector", "matchLabels")
PORT_NAME = ("pods", 0, "containers", 0, "ports", 0, "name")
POLICY_PORT = ("networkPolicies", 0, "spec", "ingress", 0, "ports", 1, "port")
REFUSED = [
    (LABELS, {"app web": "x"}), (LABELS, {"Example_com/tier": "x"}), (LABELS, {"a" * 64: "x"}),
    (LABELS, {"a" * 254 + "/b": "x"}), (LABELS, {"-app": "x"}), (LABELS, {"app": "x y"}),
    (SELECTOR, {"app web": "web"}), (MATCH, {"app/": "web"}), (MATCH, {"a/b/c": "web"}),
    (PORT_NAME, "HTTP"), (PORT_NAME, "8080"), (PORT_NAME, "a" * 16), (PORT_NAME, "a--b"), (PORT_NAME, "-ab"),
    (PORT_NAME, "ab-"), (PORT_NAME, "ab\n"),
    (POLICY_PORT, 70000), (POLICY_PORT, 0), (POLICY_PORT, -1), (POLICY_PORT, "Bad_Name"), (POLICY_PORT, "80"),
    (POLICY_PORT, "a" * 16), (POLICY_PORT, True),
    (("nodes", 0, "impair"), {"eth 0": {"delay": "10ms"}}), (("nodes", 0, "impair"), {"": {"delay": "10ms"}}),
    (("services", 0, "name"), "1web"), (("services", 0, "name"), "80-web"),
    (("networkPolicies", 0, "name"), "a..b"), (("networkPolicies", 0, "name"), "a" * 254),
]
TAKEN = [
    (LABELS, {"a" * 63: "x", "a" * 253 + "/b": "x", "example.com/Tier_1.x": ""}), (PORT_NAME, "x"),
    (PORT_NAME, "8-a-9"), (PORT_NAME, "a" * 15), (POLICY_PORT, 1), (POLICY_PORT, "h2"),
    (("networkPolicies", 0, "name"), "a" * 63 + "." + "b" * 63),
]


def test_the_base_passes_both():
    assert valid(BASE)
    load(BASE)


@pytest.mark.parametrize("path, value", REFUSED, ids=[f"{p[-1]}={v!r}"[:60] for p, v in REFUSED])
def test_what_the_loader_refuses_the_schema_refuses(path, value):
    topo = changed(path, value)
    with pytest.raises(TopologyError):
        load(topo)
    assert not valid(topo)


@pytest.mark.parametrize("path, value", TAKEN, ids=[f"{p[-1]}={v!r}"[:60] for p, v in TAKEN])
def test_what_the_loader_takes_the_schema_takes(path, value):
    topo = changed(path, value)
    load(topo)
    assert valid(topo)
