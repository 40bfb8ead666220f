"""`probe` of a real lab with one pod's namespace deleted behind netlab's back (`ip netns delete L-a`; root).

Its probes from a were errors ("namespace L-a does not exist") judged as unreached probes: a's flows a policy
denies counted "as expected", the run failed only on rule 3 (a's eth0 unread), and nothing named the deletion
as exec, trace and `policy table` do. Now a's flows are not probed, the line exec says names it on stderr, in a
note and as JSON's `error`, and the run exits 1; every other flow is still probed, for real, and passes.
"""

from __future__ import annotations

import json

import pytest

from helpers import ip, lab_down, lab_namespaces, netlab, probe_failures, unique_lab, without_turn_waits, write_topology
from netlab.errors import netlab_command

pytestmark = pytest.mark.root

TOPOLOGY = """name: {lab}
network: {{mode: host-gw}}
nodes: [{{name: n1}}, {{name: n2}}]
pods:
  - {{name: a, node: n1, ip: 10.244.0.2, labels: {{app: a}}}}
  - {{name: b, node: n2, ip: 10.244.1.2}}
networkPolicies:
  - {{name: a-sends-nothing, spec: {{podSelector: {{matchLabels: {{app: a}}}}, policyTypes: [Egress]}}}}
"""


def test_probe_names_a_deleted_pod_leaves_its_flows_out_and_fails(tmp_path):
    lab = unique_lab("pr")
    path = write_topology(tmp_path, TOPOLOGY.format(lab=lab))
    try:
        netlab("up", "-t", path)
        before = json.loads(netlab("probe", "--lab", lab, "-o", "json").stdout)
        assert before["ok"] and any(p["source"] == "a" for p in before["probes"]), probe_failures(before)
        ip("netns", "delete", f"{lab}-a")  # behind netlab's back; a's echo server holds the namespace on
        assert f"{lab}-a" not in lab_namespaces(lab)
        line = f"namespace {lab}-a was deleted while lab {lab} is up; `{netlab_command(f'up -t {path}')}` makes it again"
        r = netlab("probe", "--lab", lab, check=False)
        assert (r.returncode, without_turn_waits(r.stderr)) == (1, f"netlab: {line}\n"), r
        out = r.stdout.splitlines()
        assert f"a: its flows not probed: {line}" in out, r.stdout
        assert not [x for x in out if x.startswith("a ")], r.stdout  # no row of a in the matrix
        n = len(before["probes"]) - sum(1 for p in before["probes"] if p["source"] == "a")
        assert [x for x in out if x.startswith("*** ") and "probes as expected" in x][0].startswith(
            f"*** {n}/{n} probes as expected (1 pod not probed: its namespace was deleted) in "), r.stdout
        assert out[-2:] == ["1 not as expected:", f"  {line}"], r.stdout
        r = netlab("probe", "--lab", lab, "-o", "json", check=False)
        assert (r.returncode, without_turn_waits(r.stderr)) == (1, f"netlab: {line}\n"), r
        got = json.loads(r.stdout)
        assert (got["ok"], got["error"], got["summary"]["probes"], got["summary"]["as_expected"]) == (
            False, line, n, n), got["summary"]
        assert f"a: its flows not probed: {line}" in got["not_probed"]
        assert [p["name"] for p in got["pods"]] == ["b"]  # a's eth0 is not there to read: not a rule-3 failure
        assert {p["source"] for p in got["probes"]} == {"b", "n1", "n2"}
        assert all(p["as_expected"] for p in got["probes"]), probe_failures(got)
        to_a = [p for p in got["probes"] if p["destination"] == "a"]  # real traffic, to the namespace its server holds
        assert to_a and all(p["observed"] == "reachable" for p in to_a), to_a
    finally:
        lab_down(lab)
