"""The note's old advice, "give host-local each node's podCIDR: the ipRanges capability passes it", followed with
the conflist's own ``ranges: [[{subnet: 10.244.0.0/16}]]`` kept: host-local puts the runtime's range (the node's
podCIDR) first and refuses two range sets that overlap, so every ADD failed ("range set 0 overlaps with 1") and
up rolled back, while validate said ok (the wide-range note passed over any plugin with the capability). Now
validate and up refuse it, naming the field and the nodes, before any change."""

from __future__ import annotations

import json

import pytest

from cli_inprocess import run_cli
from test_wide_range_note import TOPOLOGY as BASE

# test_wide_range_note's two nodes, a third (n3) with no pod
TOPOLOGY = BASE.replace("pods: [{name: a, node: n1}]", "  - {name: n3, podCIDR: 10.244.2.0/24}\n"
                                                       "pods: [{name: a, node: n1}, {name: b, node: n2}]")


def write(tmp_path, ipam: dict) -> str:
    (tmp_path / "bin").mkdir(exist_ok=True)
    (tmp_path / "net.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "w", "plugins": [
        {"type": "bridge", "isGateway": True, "capabilities": {"ipRanges": True},
         "ipam": {"type": "host-local", **ipam}}]}))
    (tmp_path / "t.yaml").write_text(TOPOLOGY)
    return str(tmp_path / "t.yaml")


def refusal(tmp_path, field: str, subnet: str, nodes: str) -> str:
    return (f"t.yaml:2: network.cni.conflist: {tmp_path}/net.conflist's plugins[0] declares the ipRanges capability "
            f"and its ipam.{field} {subnet} overlaps the podCIDR of {nodes}, which the capability passes: "
            "host-local puts the runtime's range first and refuses two that overlap, so every ADD there fails "
            "(\"range set 0 overlaps with 1\"); remove ipam's own subnet and ranges (the capability gives each "
            "node's pods its podCIDR)")


@pytest.mark.parametrize("ipam, field, subnet, nodes", [
    ({"ranges": [[{"subnet": "10.244.0.0/16"}]]}, "ranges[0][0].subnet", "10.244.0.0/16",
     "nodes n1 (10.244.0.0/24) and n2 (10.244.1.0/24)"),  # n3 has no pod: no ADD there
    ({"subnet": "10.244.0.0/16"}, "subnet", "10.244.0.0/16", "nodes n1 (10.244.0.0/24) and n2 (10.244.1.0/24)"),
    ({"ranges": [[{"subnet": "10.99.0.0/24"}], [{"subnet": "10.244.1.0/24", "rangeStart": "10.244.1.100"}]]},
     "ranges[1][0].subnet", "10.244.1.0/24", "node n2 (10.244.1.0/24)"),
])
def test_validate_refuses_own_ranges_overlapping_the_capabilitys(tmp_path, monkeypatch, ipam, field, subnet, nodes):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, ipam)
    run = run_cli("validate", "-t", "t.yaml")
    assert run.returncode != 0 and "Traceback" not in run.stderr, run.stderr
    assert refusal(tmp_path, field, subnet, nodes) in run.stderr, run.stderr


def test_the_node_of_the_cluster_dns_pod_is_one_whose_add_fails(tmp_path, monkeypatch):
    """A lab with Services gets the cluster DNS pod on the first node with room, n1 here, which has no pod of the
    topology's: its ADD there fails as well, and the line names n1 too (it named n2 alone)."""
    monkeypatch.chdir(tmp_path)
    write(tmp_path, {"ranges": [[{"subnet": "10.244.0.0/16"}]]})
    (tmp_path / "t.yaml").write_text(TOPOLOGY.replace("pods: [{name: a, node: n1}, {name: b, node: n2}]",
                                                      "pods: [{name: b, node: n2, labels: {app: b}}]\n"
                                                      "services: [{name: b, selector: {app: b}, ports: [{port: 80}]}]"))
    run = run_cli("validate", "-t", "t.yaml")
    assert run.returncode != 0 and "Traceback" not in run.stderr, run.stderr
    assert refusal(tmp_path, "ranges[0][0].subnet", "10.244.0.0/16",
                   "nodes n1 (10.244.0.0/24) and n2 (10.244.1.0/24)") in run.stderr, run.stderr


@pytest.mark.parametrize("ipam", [
    {},  # the runtime's range alone: what the advice means
    {"ranges": [[{"subnet": "10.99.0.0/24"}]]},  # a second address, from a range apart
    {"ranges": [[{"subnet": "10.244.0.0/16", "rangeStart": "10.244.200.2", "rangeEnd": "10.244.200.254"}]]},
    {"ranges": [[{"subnet": "10.244.2.0/24"}]]},  # n3's, which has no pod
])
def test_validate_takes_the_capability_beside_ranges_apart(tmp_path, ipam):
    run = run_cli("validate", "-t", write(tmp_path, ipam))
    assert run.returncode == 0 and "overlaps" not in run.stderr, run.stderr
