"""A pod of Debian's ptp plugin, in a chain without CHECK (cniVersion 0.3.1), is held to the node's route to it
(root). ptp puts no bridge on the node: the node reaches the pod by a route of its own through the pod's host
veth (``10.244.0.2 dev vethX scope host``). Deleted by hand, the pod was cut off from every other pod while
status said all as planned and up had nothing to change (qa55); now status names it and up re-attaches the pod."""

from __future__ import annotations

import json

import pytest

from helpers import in_netns, ip, ip_json, ipv4_of, netlab, write_topology

pytestmark = pytest.mark.root

CONFLIST = {"cniVersion": "0.3.1", "name": "ptpnet", "plugins": [
    {"type": "ptp", "ipMasq": False, "ipam": {"type": "host-local", "routes": [{"dst": "0.0.0.0/0"}]},
     "capabilities": {"ipRanges": True}}]}


def _route_to(lab: str, address: str) -> list[dict]:
    return [r for r in ip_json("route", netns=f"{lab}-n1") if r["dst"] == address]


def test_the_nodes_route_to_a_ptp_pod_is_drift_and_up_makes_it_again(labs):
    lab = labs.name("cp")
    (labs.tmp_path / "ptp.conflist").write_text(json.dumps(CONFLIST))
    path = write_topology(labs.tmp_path, f"name: {lab}\nnetwork: {{mode: vxlan, cni: {{conflist: ./ptp.conflist}}}}\n"
                          "nodes: [{name: n1}, {name: n2}]\npods: [{name: a, node: n1}, {name: c, node: n2}]\n",
                          "t.yaml")
    netlab("up", "-t", path)
    a_ip = ipv4_of(f"{lab}-a", "eth0")
    [route] = _route_to(lab, a_ip)
    ip("route", "del", a_ip, "dev", route["dev"], netns=f"{lab}-n1")
    assert in_netns(f"{lab}-c", "ping", "-c1", "-W2", a_ip).returncode != 0  # cut off
    said = f"the node has no route to the pod's {a_ip} through {route['dev']}"
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 1 and (f"cni: pod a: it differs from its chain's cached ADD result: {said} "
                                       "(cniVersion 0.3.1 has no CHECK)") in status.stdout, status.stdout
    up = netlab("up", "-t", path)
    assert f"re-attached pod a through CNI (it differs from its chain's cached ADD result: {said}" in up.stdout
    a_ip = ipv4_of(f"{lab}-a", "eth0")
    [again] = _route_to(lab, a_ip)
    assert again["dev"].startswith("veth") and again["scope"] == "host", again
    assert in_netns(f"{lab}-c", "ping", "-c1", "-W5", a_ip).returncode == 0
    assert netlab("status", "--lab", lab).returncode == 0
