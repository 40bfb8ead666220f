"""A user's conflist on a node with no pod yet (root, Debian's bridge and host-local plugins).

The plugins make their bridge, and the pods' gateway on it, at a node's first pod's ADD: a node without a pod has
neither (`ip -j link`). `get nodes` named the conflist's gateway there all the same, and `graph` drew the plugins'
pod side (and the routes leaving it) on that node. Checked against the kernel of both nodes.
"""

from __future__ import annotations

import json

import pytest

from helpers import ip_json, netlab

pytestmark = pytest.mark.root

TOPOLOGY = """name: {lab}
network: {{mode: vxlan, cni: {{conflist: net.conflist}}}}
nodes: [{{name: n1, podCIDR: 10.244.0.0/24}}, {{name: n2, podCIDR: 10.244.1.0/24}}]
pods: [{{name: a, node: n1}}]
"""
BRIDGE = {"type": "bridge", "bridge": "cni0", "isGateway": True, "isDefaultGateway": True, "hairpinMode": True,
          "mtu": 1450, "capabilities": {"ipRanges": True}, "ipam": {"type": "host-local"}}


def test_a_podless_node_has_no_gateway_named_nor_drawn(labs, tmp_path):
    (tmp_path / "net.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": f"net-{tmp_path.name}",
                                                       "plugins": [{**BRIDGE, "ipam": {**BRIDGE["ipam"],
                                                                    "dataDir": str(tmp_path / "leases")}}]}))
    lab = labs.name("ld")
    labs.up(TOPOLOGY.format(lab=lab))
    have = {n: {x["ifname"]: x for x in ip_json("-4", "addr", netns=f"{lab}-{n}")} for n in ("n1", "n2")}
    assert "cni0" not in have["n2"] and "cni0" in have["n1"], have
    gateway = next(a for a in have["n1"]["cni0"]["addr_info"])
    nodes = {n["name"]: n for n in json.loads(netlab("get", "nodes", "--lab", lab, "-o", "json").stdout)["items"]}
    assert nodes["n1"]["cni0"] == f"{gateway['local']}/{gateway['prefixlen']}" and nodes["n2"]["cni0"] is None, nodes
    drawn = netlab("graph", "--lab", lab).stdout
    assert "nothing yet: the CNI plugins" in drawn and drawn.count("made by the CNI plugins") == 1, drawn


def test_a_node_whose_last_pod_went_keeps_its_plugins_gateway_named_and_drawn(labs, tmp_path):
    """cn61: the bridge plugin never deletes its bridge, nor the pods' gateway on it: after n2's last pod went (taken
    out of the file, `up` again) the kernel still has them, but get nodes and graph said n2 had nothing, as a node
    that never had a pod, for the state did not record which nodes had one. It reads the devices the plugins keep,
    which the state records per node before each ADD."""
    (tmp_path / "net.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": f"net-{tmp_path.name}",
                                                       "plugins": [{**BRIDGE, "ipam": {**BRIDGE["ipam"],
                                                                    "dataDir": str(tmp_path / "leases")}}]}))
    lab = labs.name("ld")
    labs.up(TOPOLOGY.format(lab=lab).replace("pods: [{name: a, node: n1}]",
                                                       "pods: [{name: a, node: n1}, {name: b, node: n2}]"))
    labs.up(TOPOLOGY.format(lab=lab))  # b taken out: its DEL runs, n2 keeps the plugin's cni0
    have = {x["ifname"]: x for x in ip_json("-4", "addr", netns=f"{lab}-n2")}
    gateway = next(a for a in have["cni0"]["addr_info"])  # the kernel's: the bridge and its address stay
    nodes = {n["name"]: n for n in json.loads(netlab("get", "nodes", "--lab", lab, "-o", "json").stdout)["items"]}
    assert nodes["n2"]["pods"] == [] and nodes["n2"]["cni0"] == f"{gateway['local']}/{gateway['prefixlen']}", nodes
    drawn = netlab("graph", "--lab", lab).stdout
    assert "nothing yet: the CNI plugins" not in drawn and drawn.count("made by the CNI plugins") == 2, drawn
    assert netlab("status", "--lab", lab).stdout.endswith("all as planned\n")
