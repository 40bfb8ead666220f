"""``policy table -t FILE`` judges the kernel by FILE's policies, as ``probe -t FILE`` does: a policy edited in the
file without ``up`` is a mismatch (exit 1, the flow named), not "as the policies say" (it compared the kernel with
the policies ``up`` last applied, and passed)."""

from __future__ import annotations

import json

import pytest

from helpers import netlab, write_topology
from netlab.errors import netlab_command

pytestmark = pytest.mark.root


def topology(name: str, ingress: list) -> str:
    return json.dumps({
        "name": name, "nodes": [{"name": "n1"}],
        "pods": [{"name": "a", "node": "n1", "labels": {"app": "a"}},
                 {"name": "b", "node": "n1", "labels": {"app": "b"}}],
        "networkPolicies": [{"name": "p", "spec": {
            "podSelector": {"matchLabels": {"app": "a"}}, "policyTypes": ["Ingress"], "ingress": ingress}}],
    })


def test_policy_table_of_an_edited_file_is_judged_by_the_file(labs, tmp_path):
    name = labs.name("np")
    path, _ = labs.up(topology(name, []), "lab.yaml")  # a: all ingress denied
    ran = netlab("policy", "table", "-t", path, "-o", "json", check=False)
    assert ran.returncode == 0, ran.stdout + ran.stderr  # the file as the lab runs it: no mismatch, no note
    assert "note:" not in ran.stderr
    flows = {(f["source"], f["destination"], f["port"]): f for f in json.loads(ran.stdout)["flows"]}
    assert not flows[("b", "a", 8080)]["allowed"] and flows[("b", "a", 8080)]["reached"] is False

    write_topology(tmp_path, topology(name, [{"from": [{"podSelector": {"matchLabels": {"app": "b"}}}]}]),
                   "lab.yaml")  # b allowed into a, in the file only: no `up`
    ran = netlab("policy", "table", "-t", path, check=False)
    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert "MISMATCH b -> a tcp/8080: allowed but BLOCKED (allowed by policy default/p" in ran.stdout
    assert "MISMATCH b -> a udp/8080: allowed but BLOCKED" in ran.stdout  # the echo server's UDP too
    assert "6/8 flows as the policies say" in ran.stdout
    assert (f"netlab: note: lab {name} runs other policies than {path}: 2 flows judged otherwise (first: b -> a "
            f"tcp/8080, allowed by the file); the table judges the file's; `{netlab_command(f'up -t {path}')}` "
            "applies them") in ran.stderr
    ran = netlab("policy", "table", "-t", path, "-o", "json", check=False)
    data = json.loads(ran.stdout)
    assert ran.returncode == 1 and data["mismatches"] == 2
    assert sorted((f["source"], f["destination"], f["protocol"], f["port"], f["allowed"], f["reached"])
                  for f in data["flows"] if f["mismatch"]) == [("b", "a", p, 8080, True, False) for p in ("tcp", "udp")]
    assert netlab("policy", "table", "--lab", name, check=False).returncode == 0  # the lab's own: as applied

    netlab("up", "-t", path)
    ran = netlab("policy", "table", "-t", path, check=False)
    assert ran.returncode == 0 and "8/8 flows as the policies say" in ran.stdout, ran.stdout + ran.stderr
    assert "note:" not in ran.stderr
