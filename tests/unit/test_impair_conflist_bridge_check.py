"""A topology's impairment of a node's pod bridge, with a user's conflist (model/checks.py).

The check took the bridge to be cni0 whatever the conflist's bridge plugin named: a topology's ``qrbr0`` was
refused ("use one of eth0, cni0, flannel.1") and its ``cni0`` taken, an impairment no `up` could put (status
drift for good); a pod-less node's bridge, which the plugins make only at its first pod, was taken too.
"""

from __future__ import annotations

from helpers import CONFLIST, located_problems, write_conflist

TOPOLOGY = """name: t
network: {{mode: vxlan, cni: {cni}}}
nodes:
  - {{name: n1, podCIDR: 10.244.0.0/24, impair: {{{iface}: {{rate: 1mbit}}}}}}
  - {{name: n2, podCIDR: 10.244.1.0/24}}
pods: [{{name: a, node: n1}}]
"""
BRIDGE = {"type": "bridge", "bridge": "qrbr0", "isGateway": True, "ipam": {"type": "host-local"}}


def test_the_conflists_bridge_is_the_one_to_impair(tmp_path):
    write_conflist(tmp_path, [BRIDGE])
    assert located_problems(TOPOLOGY.format(cni=CONFLIST, iface="qrbr0"), tmp_path) == []
    problems = located_problems(TOPOLOGY.format(cni=CONFLIST, iface="cni0"), tmp_path)
    assert [m for _, _, m in problems] == ["no interface 'cni0' here to impair; use one of eth0, qrbr0, flannel.1"]


def test_a_podless_nodes_conflist_bridge_is_refused(tmp_path):
    write_conflist(tmp_path, [{**BRIDGE, "bridge": "cni0"}])
    text = TOPOLOGY.format(cni=CONFLIST, iface="eth0").replace(
        "{name: n2, podCIDR: 10.244.1.0/24}", "{name: n2, podCIDR: 10.244.1.0/24, impair: {cni0: {rate: 1mbit}}}")
    problems = located_problems(text, tmp_path)
    assert len(problems) == 1 and "node n2 has no pod, so no cni0 to impair" in problems[0][2], problems
