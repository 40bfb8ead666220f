"""A nodePort whose endpoints a NetworkPolicy isolates: probed, with the evaluator's verdict (no root).

The receiving node DNATs the packet (PREROUTING) and masquerades it (POSTROUTING); the policy chains sit in
FORWARD between the two. An endpoint on another node is judged with the receiving node's address towards it
(flannel.1's with VXLAN, eth0's with host-gw); one on the receiving node with the client's own address, and a
node reaching its own pod through its own nodePort never passes FORWARD (the own-node rule). The matrix left
these probes out ("the nodes' NAT picks the address"); a Service whose endpoints give different verdicts for
one (client, node) is still not probed, as a ClusterIP's mixed case is.
"""

from __future__ import annotations

import copy

from netlab.model.lab import resolve
from netlab.model.topology import Topology
from netlab.probe import services as svcs
from netlab.probe import service_targets

TOPO = {
    "name": "npx",
    "nodes": [{"name": "n1", "ip": "192.168.122.2", "podCIDR": "10.244.0.0/24"},
              {"name": "n2", "ip": "192.168.122.3", "podCIDR": "10.244.1.0/24"}],
    "pods": [{"name": "web-1", "node": "n1", "labels": {"app": "web", "tier": "web"}},
             {"name": "web-2", "node": "n2", "labels": {"tier": "web"}},
             {"name": "client", "node": "n2", "labels": {"role": "client"}}],
    "services": [{"name": "web-np", "type": "NodePort", "selector": {"app": "web"},
                  "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30080}]},
                 {"name": "both-np", "type": "NodePort", "selector": {"tier": "web"},
                  "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30081}]}],
    "internet": {"cidr": "203.0.113.0/24", "gateway": {"ip": "203.0.113.1"},
                 "hosts": [{"name": "example", "ip": "203.0.113.10"}]},
    "networkPolicies": [{"name": "web-from-clients", "spec": {
        "podSelector": {"matchLabels": {"tier": "web"}},
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}]}]}}],
}
# The nodes' addresses: eth0's (the underlay) and flannel.1's (each pod CIDR's network address).
NODES_BLOCK = [{"ipBlock": {"cidr": "192.168.122.0/24"}}, {"ipBlock": {"cidr": "10.244.0.0/32"}},
               {"ipBlock": {"cidr": "10.244.1.0/32"}}]


def lab_with(from_: list | None = None, mode: str = "vxlan"):
    topo = copy.deepcopy(TOPO)
    topo["network"] = {"mode": mode}
    if from_ is not None:
        topo["networkPolicies"][0]["spec"]["ingress"] = [{"from": from_}]
    return resolve(Topology.model_validate(topo))


def nodeports(plan: service_targets.ServicePlan, service: str) -> dict[tuple[str, str], bool]:
    """(client, receiving node) -> expected reachable, for ``service``'s nodePort probes."""
    return {(p.source.name, p.svc.node): p.expected for p in plan.probes
            if p.svc is not None and p.svc.kind == "NodePort" and p.svc.service == service}


def test_isolated_endpoint_is_probed_and_denied_but_from_its_own_node():
    plan = svcs.build(lab_with(), ("tcp",))
    assert nodeports(plan, "web-np") == {
        ("n1", "n1"): True,  # n1's own packet to its own pod: OUTPUT, then cni0, never FORWARD
        ("n2", "n1"): False, ("example", "n1"): False,  # the client's own address, before n1's masquerade
        ("n1", "n2"): False, ("n2", "n2"): False, ("example", "n2"): False}  # n2's flannel.1 address
    [own] = [p for p in plan.probes if p.svc and p.svc.service == "web-np" and p.source.name == p.svc.node == "n1"]
    assert own.reason == "service; policy: node n1 is default/web-1's own node: always allowed (kubelet probes)"
    [denied] = [p for p in plan.probes if p.svc and p.svc.service == "web-np" and p.source.name == "example"
                and p.svc.node == "n2"]
    assert denied.reason == ("service; policy: denied by policy default/web-from-clients (no ingress rule allows "
                             "it for pod default/web-1)")
    assert not [n for n in plan.notes if "NodePort 30080" in n]


def test_an_ipblock_of_the_nodes_addresses_lets_the_masqueraded_packet_in_not_the_hosts_own():
    plan = svcs.build(lab_with(NODES_BLOCK), ("tcp",))
    assert nodeports(plan, "web-np") == {
        ("n1", "n1"): True, ("n2", "n1"): True,  # n2's eth0 address is in the underlay's block
        ("example", "n1"): False,  # n1 holds the endpoint: judged before its masquerade, as 203.0.113.10
        ("n1", "n2"): True, ("n2", "n2"): True, ("example", "n2"): True}  # as n2's flannel.1 address
    [p] = [p for p in plan.probes if p.svc and p.svc.service == "web-np" and p.source.name == "example"
           and p.svc.node == "n2"]
    assert "ipBlock 10.244.1.0/32" in p.reason


def test_host_gw_masquerades_to_eth0():
    """With host-gw the receiving node's address towards a remote pod is its eth0 address: the underlay's block
    alone lets it in."""
    plan = svcs.build(lab_with([{"ipBlock": {"cidr": "192.168.122.0/24"}}], mode="host-gw"), ("tcp",))
    got = nodeports(plan, "web-np")
    assert got[("example", "n2")] and got[("n1", "n2")] and not got[("example", "n1")]
    vx = nodeports(svcs.build(lab_with([{"ipBlock": {"cidr": "192.168.122.0/24"}}]), ("tcp",)), "web-np")
    assert not vx[("example", "n2")]  # flannel.1's 10.244.1.0 is not in the underlay


def test_endpoints_with_different_verdicts_are_noted_not_probed():
    plan = svcs.build(lab_with(NODES_BLOCK), ("tcp",))
    both = nodeports(plan, "both-np")
    # From the internet to n1: web-1 (on n1) sees 203.0.113.10, web-2 sees n1's flannel.1 address: it depends
    # on kube-proxy's pick. To n2 it is the mirror image.
    assert ("example", "n1") not in both and ("example", "n2") not in both
    assert both == {("n1", "n1"): True, ("n2", "n1"): True, ("n1", "n2"): True, ("n2", "n2"): True}
    assert ("example -> svc/both-np tcp/80 (NodePort 30081 on n1): not probed: policies allow web-2 but not every "
            "endpoint: the result depends on the endpoint kube-proxy picks") in plan.notes
    assert "svc/both-np tcp/80: distribution not probed: a NetworkPolicy isolates its endpoints" in plan.notes


def test_a_service_no_policy_isolates_keeps_its_probes():
    topo = copy.deepcopy(TOPO)
    topo["networkPolicies"][0]["spec"]["podSelector"] = {"matchLabels": {"role": "nobody"}}
    plan = svcs.build(resolve(Topology.model_validate(topo)), ("tcp",))
    assert set(nodeports(plan, "web-np").values()) == {True} and len(nodeports(plan, "web-np")) == 6


def test_a_users_expect_entry_for_a_nodeport_is_that_probe():
    """An ``expect:`` entry from a node or host to a node's nodePort overrides the probe (matrix.py): the Service's
    own probe of that pair is left out, the others stay."""
    topo = copy.deepcopy(TOPO)
    topo["expect"] = [{"from": "n2", "to": "n1", "proto": "tcp", "port": 30080, "reach": True}]
    plan = svcs.build(resolve(Topology.model_validate(topo)), ("tcp",))
    got = nodeports(plan, "web-np")
    assert ("n2", "n1") not in got and got[("example", "n1")] is False and len(got) == 5


def isolated_notes(topo: dict) -> dict[str, str]:
    """Service -> the note on what the isolating policy kept the probe from checking."""
    plan = svcs.build(resolve(Topology.model_validate(topo)), ("tcp",))
    return {n.split(" ", 1)[0]: n.split(": ", 1)[1] for n in plan.notes if n.startswith("svc/") and
            "NetworkPolicy isolates its endpoints" in n}


def test_the_isolation_note_names_only_what_the_service_has():
    """A Service of one endpoint and no LoadBalancer has nothing the isolation keeps from being probed: no
    note. Two endpoints: the distribution; a LoadBalancer: the balancer; both: both (it named both always)."""
    topo = copy.deepcopy(TOPO)
    topo["services"] = [
        {"name": "one", "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
        {"name": "two", "selector": {"tier": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
        {"name": "one-lb", "type": "LoadBalancer", "selector": {"app": "web"},
         "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30082}]},
        {"name": "two-lb", "type": "LoadBalancer", "selector": {"tier": "web"},
         "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30083}]}]
    balancer = ("a NetworkPolicy isolates its endpoints, and the gateway routes each connection to a node by its "
                "hash, whose NAT decides the address they see")
    assert isolated_notes(topo) == {
        "svc/two": "distribution not probed: a NetworkPolicy isolates its endpoints",
        "svc/one-lb": f"LoadBalancer not probed: {balancer}",
        "svc/two-lb": f"distribution and LoadBalancer not probed: {balancer}"}



def lb_local(extra: list[dict]) -> tuple[dict[str, bool], list[str]]:
    """A LoadBalancer of web-1 and web-2 (tier web, one on each node) with externalTrafficPolicy Local, its
    endpoints isolated by web-from-clients plus the policies ``extra``: the internet host's probe of the LB IP ->
    expected, and the plan's notes on it."""
    topo = copy.deepcopy(TOPO)
    topo["services"] = [{"name": "lb", "type": "LoadBalancer", "externalTrafficPolicy": "Local",
                         "selector": {"tier": "web"}, "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30090}]}]
    topo["networkPolicies"] += extra
    plan = svcs.build(resolve(Topology.model_validate(topo)), ("tcp",))
    got = {p.source.name: p.expected for p in plan.probes if p.svc and p.svc.kind == "LoadBalancer"}
    return got, [n for n in plan.notes if "LoadBalancer" in n]


def from_internet(selector: dict) -> dict:
    return {"name": "from-internet", "spec": {"podSelector": {"matchLabels": selector},
                                              "ingress": [{"from": [{"ipBlock": {"cidr": "203.0.113.0/24"}}]}]}}


def test_a_load_balancer_with_external_traffic_policy_local_is_probed_under_an_isolating_policy():
    """QA qa61p 1: with externalTrafficPolicy Local the gateway routes the LB IP only to nodes with endpoints of their
    own, which keep the host's address: each endpoint is judged with it, whichever node the gateway's hash picks
    (it was skipped, its note saying a NAT decides the address). Cluster's is still skipped (isolated_notes)."""
    assert lb_local([]) == ({"example": False}, [])  # only pods with role client may reach them
    assert lb_local([from_internet({"tier": "web"})]) == ({"example": True}, [])
    # the host may reach web-1, not web-2: the gateway's hash decides
    assert lb_local([from_internet({"app": "web"})]) == ({}, [
        "example -> svc/lb tcp/80 (LoadBalancer 203.0.113.254): not probed: policies allow web-1 but not every "
        "endpoint: the result depends on the endpoint kube-proxy picks"])
