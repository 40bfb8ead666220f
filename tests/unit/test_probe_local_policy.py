"""A NodePort Service with externalTrafficPolicy Local under a NetworkPolicy: probed with the evaluator's verdict.

An outside client reaches only the receiving node's own endpoints and is never masqueraded, so the endpoint's
ingress judges the client's own address as it reached the node: an internet host's, another node's eth0. These
probes were left out with a note ("the NetworkPolicy judge does not model" it).
"""

from __future__ import annotations

from netlab.model.lab import resolve
from netlab.model.topology import Topology
from netlab.probe import services as svcs
from netlab.probe import service_targets


def lab_with(from_: list):
    return resolve(Topology.model_validate({
        "name": "lpx",
        "nodes": [{"name": "n1", "ip": "192.168.122.2", "podCIDR": "10.244.0.0/24"},
                  {"name": "n2", "ip": "192.168.122.3", "podCIDR": "10.244.1.0/24"}],
        "pods": [{"name": "web-1", "node": "n1", "labels": {"app": "web"}}, {"name": "client", "node": "n2"}],
        "services": [{"name": "web", "type": "NodePort", "externalTrafficPolicy": "Local", "selector": {"app": "web"},
                      "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30080}]}],
        "internet": {"cidr": "203.0.113.0/24", "gateway": {"ip": "203.0.113.1"},
                     "hosts": [{"name": "example", "ip": "203.0.113.10"}]},
        "networkPolicies": [{"name": "web-in", "spec": {"podSelector": {"matchLabels": {"app": "web"}},
                                                        "ingress": [{"from": from_}]}}]}))


def nodeports(plan: service_targets.ServicePlan) -> dict[tuple[str, str], bool]:
    return {(p.source.name, p.svc.node): p.expected for p in plan.probes
            if p.svc is not None and p.svc.kind == "NodePort"}


def test_the_clients_own_address_is_judged():
    plan = svcs.build(lab_with([{"ipBlock": {"cidr": "203.0.113.10/32"}}]), ("tcp",))
    assert nodeports(plan) == {
        ("example", "n1"): True,  # its own address, kept: the ipBlock lets it in
        ("n2", "n1"): False,  # n2's eth0 address, kept: not in the ipBlock
        ("n1", "n1"): True,  # n1's own packet to its own pod: never FORWARD
        ("example", "n2"): False, ("n1", "n2"): False,  # n2 has no endpoint of its own: dropped
        # n2's own traffic is short-circuited to every endpoint, masqueraded: web-1 on n1 sees n2's flannel.1
        ("n2", "n2"): False}
    assert not [n for n in plan.notes if "NodePort 30080" in n], plan.notes


def test_the_nodes_block_lets_another_node_in_but_not_the_internet():
    plan = svcs.build(lab_with([{"ipBlock": {"cidr": "192.168.122.0/24"}}]), ("tcp",))
    got = nodeports(plan)
    assert got[("n2", "n1")] is True and got[("example", "n1")] is False, got
