"""validate's and up's notes (valid, probably not meant) are located as its problems are: ``FILE:LINE: field:
message``, at the field the note is about, in the topology or in the included manifest the object came from
(QA: they named the policy, never where it was written). A topology given as a dict has no lines: its notes are
located by field, as its problems are. -o json: ``notes`` the lines as printed, ``note_places`` each one's file, line and field."""

from __future__ import annotations

import json

from cli_inprocess import run_cli

from netlab.api.topology import load, topology_notes

TOPOLOGY = """\
name: qnl1
nodes: [{name: n1}]
pods:
  - name: web
    node: n1
    labels: {app: web}
    containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]
services:
  - name: lonely
    selector: {app: nobody}
    ports: [{port: 80}]
include: [pol/*.yaml]
networkPolicies:
  - name: typo
    spec:
      podSelector: {matchLabels: {app: wbe}}
  - name: web-in
    spec:
      podSelector: {matchLabels: {app: web}}
      ingress:
        - from:
            - ipBlock: {cidr: 10.0.0.1/8}
            - ipBlock: {cidr: "2001:db8::/32"}
          ports:
            - port: htp
"""

MANIFEST = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: from-file
spec:
  podSelector:
    matchLabels: {app: gone}
---
apiVersion: v1
kind: List
items:
  - apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: listed}
    spec:
      podSelector: {matchLabels: {app: web}}
      egress:
        - to: [{ipBlock: {cidr: 192.168.1.1/16}}]
"""

EXPECTED = [
    ("t.yaml", 10, "services[0].selector", "service default/lonely port 80/TCP: no pod of namespace default has "
                                          "the labels app=nobody"),
    ("t.yaml", 16, "networkPolicies[0].spec.podSelector", "network policy default/typo: podSelector app=wbe selects"),
    ("t.yaml", 22, "networkPolicies[1].spec.ingress[0].from[0].ipBlock.cidr",
     "network policy default/web-in ingress rule 1 peer 1: ipBlock.cidr 10.0.0.1/8 has host bits set"),
    ("t.yaml", 23, "networkPolicies[1].spec.ingress[0].from[1].ipBlock.cidr",
     "network policy default/web-in ingress rule 1 peer 2: ipBlock 2001:db8::/32 is IPv6"),
    ("t.yaml", 25, "networkPolicies[1].spec.ingress[0].ports[0].port",
     "network policy default/web-in ingress rule 1 port 1: named port 'htp'/TCP"),
    ("pol/p.yaml", 6, "spec.podSelector", "network policy default/from-file: podSelector app=gone selects"),
    ("pol/p.yaml", 18, "items[0].spec.egress[0].to[0].ipBlock.cidr",
     "network policy default/listed egress rule 1 peer 1: ipBlock.cidr 192.168.1.1/16 has host bits set"),
]


def _write(tmp_path):
    (tmp_path / "pol").mkdir()
    (tmp_path / "pol" / "p.yaml").write_text(MANIFEST)
    (tmp_path / "t.yaml").write_text(TOPOLOGY)
    return tmp_path / "t.yaml"


def _lines(text: str, tmp_path) -> list[str]:
    return [line.replace(str(tmp_path) + "/", "") for line in text.splitlines()]


def test_validate_says_each_note_at_its_file_line_and_field(tmp_path):
    res = run_cli("validate", "-t", str(_write(tmp_path)))
    assert res.returncode == 0, res.stderr
    notes = _lines(res.stderr, tmp_path)
    assert len(notes) == len(EXPECTED), notes  # one line each
    for file, number, field, text in EXPECTED:
        assert any(line.startswith(f"netlab: note: {file}:{number}: {field}: {text}") for line in notes), \
            (file, number, field, notes)


def test_validate_json_gives_each_note_its_place(tmp_path):
    res = run_cli("validate", "-t", str(_write(tmp_path)), "-o", "json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert len(doc["note_places"]) == len(doc["notes"]) == len(EXPECTED)
    for line, place in zip(doc["notes"], doc["note_places"]):  # the line as printed, and its parts
        assert line == f"{place['file']}:{place['line']}: {place['field']}: {place['message']}"
    got = sorted((p["file"].replace(str(tmp_path) + "/", ""), p["line"], p["field"]) for p in doc["note_places"])
    assert got == sorted((f, n, field) for f, n, field, _ in EXPECTED)


def test_a_dict_topology_locates_its_notes_by_field():
    data = {"name": "qnl2", "nodes": [{"name": "n1"}],
            "networkPolicies": [{"name": "typo", "spec": {"podSelector": {"matchLabels": {"app": "x"}}}}]}
    notes = topology_notes(load(data, running=False))
    assert [n.line for n in notes] == [None]
    assert str(notes[0]).startswith("<dict>: networkPolicies[0].spec.podSelector: network policy default/typo: ")


def test_up_json_gives_each_note_its_place_as_validate_does(tmp_path, monkeypatch, state_root):
    """`up -o json` held the notes' lines only: a machine reading it had to parse FILE:LINE: field back out. Only
    the kernel's part of up is stubbed: Lab.up_loaded works the notes out and builds the result as it does."""
    from netlab.lab.up import UpResult

    monkeypatch.delenv("NETLAB_LAB", raising=False)
    monkeypatch.setattr("netlab.cli.lab.require_root", lambda: None)
    monkeypatch.setattr("netlab.api.lab.lifecycle.up", lambda lab, **kw: UpResult(lab=lab.name, fresh=True))
    path = str(_write(tmp_path))
    res = run_cli("up", "-t", path, "-o", "json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    valid = json.loads(run_cli("validate", "-t", path, "-o", "json").stdout)
    assert doc["notes"] == valid["notes"] and doc["note_places"] == valid["note_places"]  # the same shape, in order
    assert len(doc["note_places"]) == len(doc["notes"]) == len(EXPECTED)
    for line, place in zip(doc["notes"], doc["note_places"]):
        assert line == f"{place['file']}:{place['line']}: {place['field']}: {place['message']}"
    assert [line.removeprefix("netlab: note: ") for line in res.stderr.splitlines()
            if line.startswith("netlab: note: ")] == doc["notes"]  # said on stderr as well, as before
