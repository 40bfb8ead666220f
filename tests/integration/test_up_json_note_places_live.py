"""`netlab up -o json` gives each of its notes a place (file, line, field, message), as `validate -o json` does:
it held the lines only. Root: a real `up` of a small lab whose topology carries notes (a Service that selects no
pod, a NetworkPolicy that selects none), the kernel checked with `ip -j`. Without root: tests/unit/test_notes_located.py."""

from __future__ import annotations

import json

import pytest

from helpers import ip_json, netlab

pytestmark = pytest.mark.root


def topology(lab: str) -> str:
    return f"""name: {lab}
network: {{mode: host-gw}}
nodes: [{{name: n1}}]
pods:
  - {{name: a, node: n1, ip: 10.244.0.2, labels: {{app: web}}}}
services:
  - name: lonely
    selector: {{app: nobody}}
    ports: [{{port: 80}}]
networkPolicies:
  - name: typo
    spec:
      podSelector: {{matchLabels: {{app: wbe}}}}
"""


def test_up_json_locates_its_notes_as_validate_does(labs):
    lab = labs.name("unp")
    path, up = labs.up(topology(lab), "topo.yaml", "-o", "json")
    doc = json.loads(up.stdout)
    assert [a["local"] for a in ip_json("-4", "addr", "show", "eth0", netns=f"{lab}-a")[0]["addr_info"]] == \
        ["10.244.0.2"]  # the lab is up, as planned
    got = [(p["file"], p["line"], p["field"]) for p in doc["note_places"]]
    assert got == [(path, 8, "services[0].selector"), (path, 13, "networkPolicies[0].spec.podSelector")], doc
    for line, place in zip(doc["notes"], doc["note_places"], strict=True):
        assert line == f"{place['file']}:{place['line']}: {place['field']}: {place['message']}"
    valid = json.loads(netlab("validate", "-t", path, "-o", "json").stdout)
    assert (valid["notes"], valid["note_places"]) == (doc["notes"], doc["note_places"])
    again = json.loads(netlab("up", "-t", path, "-o", "json").stdout)  # a lab up already: the same notes, placed
    assert not again["changed"] and again["note_places"] == doc["note_places"]
