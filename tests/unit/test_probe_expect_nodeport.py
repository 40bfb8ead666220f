"""A user's expect: entry to a node's nodePort is judged as the Service probe it is (no root).

The node DNATs the connection to an endpoint and masquerades it (KUBE-EXT) to its own address towards that
endpoint: the endpoint answers, and sees neither the client's address nor the node's address as dialed. Judged
as a connection to the node itself, every such entry failed the probe with "NAT: ... (rule 1: no NAT)" and
"(rule 3: ...)", though the connection worked as in a cluster.
"""

from __future__ import annotations

from netlab.model.lab import resolve
from netlab.model.topology import Topology
from netlab.probe import services as svcs
from netlab.probe.judge import judge
from netlab.probe.matrix import build_matrix
from netlab.probe.tasks import Observation
from netlab.probe.runner import as_nodeport

TOPO = {
    "name": "enp",
    "nodes": [{"name": "n1", "ip": "192.168.122.2", "podCIDR": "10.244.0.0/24"},
              {"name": "n2", "ip": "192.168.122.3", "podCIDR": "10.244.1.0/24"}],
    "pods": [{"name": "a", "node": "n1", "labels": {"app": "web"}}, {"name": "b", "node": "n2"}],
    "services": [{"name": "web", "type": "NodePort", "selector": {"app": "web"},
                  "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30080}]}],
    "expect": [{"from": "b", "to": "n1", "proto": "tcp", "port": 30080},
               {"from": "b", "to": "n2", "proto": "tcp", "port": 30080},
               {"from": "n2", "to": "n1", "proto": "tcp", "port": 30080, "reach": False},
               {"from": "b", "to": "n1", "proto": "tcp", "port": 22}],
}


def probes():
    lab = resolve(Topology.model_validate(TOPO))
    plan = svcs.build(lab, ("tcp",))
    return {p.key: p for p in (as_nodeport(p, plan) for p in build_matrix(lab, ("tcp",)))}


def reply(seen: str, server: str) -> Observation:
    return Observation(outcome="reply", rtt=0.001, local="10.244.1.2:40000", seen_client=f"{seen}:40000",
                       server=server, answered_by="a")


def test_an_entry_to_a_nodeport_gets_the_services_rules_and_keeps_its_expectation():
    got = probes()
    b_n1, b_n2, n2_n1 = got[("b", "n1", "tcp", 30080)], got[("b", "n2", "tcp", 30080)], got[("n2", "n1", "tcp", 30080)]
    for p in (b_n1, b_n2, n2_n1):
        assert p.svc is not None and p.svc.kind == "NodePort" and p.svc.service == "web"
        assert p.reason.startswith("expect[")
    assert b_n1.expected and b_n2.expected and not n2_n1.expected  # the user's word
    # n1 masquerades to cni0's address towards its own pod a; n2 to flannel.1's, a being on n1
    assert [r.allowed for r in b_n1.rules] == [("10.244.0.1",)]
    assert [r.allowed for r in b_n2.rules] == [("10.244.1.0",)]
    # a port no Service holds on the node stays a plain probe of the node
    plain = got[("b", "n1", "tcp", 22)]
    assert plain.svc is None and plain.rules == ()


def test_the_masqueraded_reply_passes_and_a_wrong_address_fails():
    p = probes()[("b", "n1", "tcp", 30080)]
    assert judge(p, reply("10.244.0.1", "10.244.0.2:8080"), 1.0, "10.244.1.2") == []
    assert judge(p, reply("10.244.1.2", "10.244.0.2:8080"), 1.0, "10.244.1.2") != []  # not masqueraded: not what n1 does
