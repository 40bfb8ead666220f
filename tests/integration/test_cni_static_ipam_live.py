"""Debian's static IPAM gives pods their planned addresses (root, real plugins in /usr/lib/cni, real namespaces,
two nodes, three pods; QA cnf63 #1).

static parses CNI_ARGS' IP= as CIDR only: netlab sent the bare address and every ADD failed ("the 'ip' field is
expected to be in CIDR notation, got: '10.244.0.2'"). It now gets address/prefix (the node's podCIDR's), CHECK and
DEL too; with the ips capability, runtimeConfig.ips says the same address. host-local still gets the bare form."""

from __future__ import annotations

import json

import pytest

from helpers import in_netns, ip_json, lab_namespaces, netlab

pytestmark = pytest.mark.root

MACVLAN = {"cniVersion": "1.0.0", "name": "qcmv", "plugins": [
    {"type": "macvlan", "master": "eth0", "mode": "bridge",
     "ipam": {"type": "static", "routes": [{"dst": "0.0.0.0/0"}]}}]}
BRIDGE = {"cniVersion": "1.0.0", "name": "qcbr", "plugins": [
    {"type": "bridge", "bridge": "qcbr0", "isGateway": True, "capabilities": {"ips": True},
     "ipam": {"type": "static", "routes": [{"dst": "0.0.0.0/0"}]}}]}


def _topology(lab: str) -> str:
    return f"""name: {lab}
network: {{cni: {{conflist: st.conflist}}}}
nodes: [{{name: n1, podCIDR: 10.244.0.0/24}}, {{name: n2, podCIDR: 10.244.1.0/24}}]
pods:
  - {{name: a, node: n1}}
  - {{name: b, node: n1}}
  - {{name: c, node: n2}}
"""


@pytest.mark.parametrize("conflist", [MACVLAN, BRIDGE], ids=["macvlan", "bridge-ips-capability"])
def test_static_ipam_gives_each_pod_its_planned_address(labs, tmp_path, conflist):
    (tmp_path / "st.conflist").write_text(json.dumps(conflist))
    lab = labs.name("cfst")
    _, proc = labs.up(_topology(lab), check=False)
    assert proc.returncode == 0, proc.stderr
    planned = {"a": "10.244.0.2", "b": "10.244.0.3", "c": "10.244.1.2"}
    for pod, ip in planned.items():
        [eth0] = ip_json("-4", "addr", "show", "eth0", netns=f"{lab}-{pod}")
        assert [(a["local"], a["prefixlen"]) for a in eth0["addr_info"]] == [(ip, 24)], eth0
    assert in_netns(f"{lab}-a", "ping", "-c1", "-W2", planned["b"]).returncode == 0
    assert netlab("status", "--lab", lab, check=False).returncode == 0  # static's CHECK got the CIDR form too
    calls = json.loads(netlab("cni", "log", "--lab", lab, "a", "-o", "json").stdout)["calls"]
    asked = {(c["network"], c["command"]): dict(kv.split("=", 1) for kv in c["env"]["CNI_ARGS"].split(";"))["IP"]
             for c in calls}
    assert asked == {("cni-loopback", "ADD"): "10.244.0.2", (conflist["name"], "ADD"): "10.244.0.2/24",
                     ("cni-loopback", "CHECK"): "10.244.0.2", (conflist["name"], "CHECK"): "10.244.0.2/24"}, asked
    netlab("down", "--lab", lab)  # static's DEL parses IP= too
    assert not lab_namespaces(lab)
