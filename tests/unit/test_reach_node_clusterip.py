"""``Lab.reach(node, "svc/NAME")`` dials the ClusterIP, as ``trace node-1 svc/web`` does
(probe/service_node_clusterip.py): it was refused ("nodes and internet hosts a NodePort or LoadBalancer"),
though a node reaches a ClusterIP through nat OUTPUT's KUBE-SERVICES on any Kubernetes node. The endpoint sees
the node's masquerade (KUBE-SVC marks what does not come from the pod network): cni0's address for a pod of the
node's own, flannel.1's (VXLAN) or eth0's (host-gw) for one on another node."""

from __future__ import annotations

import pytest

from netlab.api import reach as reach_mod
from netlab.api.topology import load
from netlab.errors import UsageError
from netlab.probe.services import build

NODES = [{"name": "n1", "ip": "192.168.122.2"}, {"name": "n2", "ip": "192.168.122.3"}]


def lab_of(mode: str = "vxlan", itp: str | None = None, policies: list | None = None):
    svc: dict = {"name": "web", "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}
    if itp:
        svc["internalTrafficPolicy"] = itp
    topo = {"name": "rnc", "network": {"mode": mode}, "nodes": NODES,
            "pods": [{"name": "a", "node": "n1", "labels": {"app": "web"}},
                     {"name": "b", "node": "n2", "labels": {"app": "web"}}, {"name": "c", "node": "n2"}],
            "services": [svc], "networkPolicies": policies or []}
    return load(topo).lab


@pytest.mark.parametrize("mode", ["vxlan", "host-gw"])
def test_a_nodes_probe_of_a_clusterip_expects_its_masquerade_towards_each_endpoint(mode):
    lab = lab_of(mode)
    p = reach_mod.probe_of(lab, "n1", "svc/web")
    assert p.svc is not None and p.svc.kind == "ClusterIP" and str(p.destination.ip) == str(p.svc.address)
    assert (p.source.name, p.proto, p.port, p.expected) == ("n1", "tcp", 80, True)
    seen = {r.answerer: r.allowed for r in p.rules}
    n1 = lab.node("n1")
    other = str(n1.vtep_ip) if mode == "vxlan" else str(n1.ip)
    assert seen == {"a": (str(n1.gateway.ip),), "b": (other,)}, p.rules
    # not a row of the matrix: a node's Service probes there are its NodePort's
    assert not any(q.source.name == "n1" and q.svc is not None and q.svc.kind == "ClusterIP"
                   for q in build(lab, ("tcp",), node_clusterips=True).probes)


def test_internal_traffic_policy_local_leaves_a_node_its_own_endpoints_and_drops_it_without_one():
    lab = lab_of(itp="Local")
    mine = reach_mod.probe_of(lab, "n1", "svc/web")
    assert mine.expected is True and [r.answerer for r in mine.rules] == ["a"]
    # n2 has b: its own; a node with none drops it (has no local endpoints)
    lab3 = load({**lab.topo.model_dump(by_alias=True, exclude_none=True),
                 "nodes": NODES + [{"name": "n3", "ip": "192.168.122.4"}]}).lab
    none = reach_mod.probe_of(lab3, "n3", "svc/web")
    assert none.expected is False and "no endpoint on n3" in none.reason and none.rules == ()


def test_a_policy_judges_a_nodes_clusterip_flow_as_its_own_nodeport_flow_the_same_masquerade():
    """A policy admitting pods only: the node's own connection reaches a pod of its own node (netlab's policies,
    as most CNIs', let a node reach its own pods) and not one on another node (masqueraded to the node's
    flannel.1 address, not a pod's): judged as the node's connection to its own NodePort, which is masqueraded
    alike."""
    pods_only = [{"name": "web-from-pods", "spec": {"podSelector": {"matchLabels": {"app": "web"}},
                                                    "ingress": [{"from": [{"podSelector": {}}]}]}}]
    topo = {"name": "rnp", "nodes": NODES, "pods": [{"name": "a", "node": "n1", "labels": {"app": "web"}},
                                                   {"name": "c", "node": "n2"}],
            "services": [{"name": "web", "type": "NodePort", "selector": {"app": "web"},
                          "ports": [{"port": 80, "targetPort": 8080}]}], "networkPolicies": pods_only}
    lab = load(topo).lab
    plan = build(lab, ("tcp",))
    own_nodeport = {p.source.name: p for p in plan.probes
                    if p.svc is not None and p.svc.kind == "NodePort" and p.source.name == p.svc.node}
    for node, reached in (("n1", True), ("n2", False)):
        p = reach_mod.probe_of(lab, node, "svc/web")
        assert p.svc is not None and p.svc.kind == "ClusterIP", p.svc
        assert (p.expected, p.reason) == (reached, own_nodeport[node].reason if not reached else p.reason), \
            (node, p.reason, own_nodeport[node].reason)
        assert p.expected == own_nodeport[node].expected, (node, p.reason, own_nodeport[node].reason)
    assert "web-from-pods" in reach_mod.probe_of(lab, "n2", "svc/web").reason


def test_an_internet_host_still_reaches_a_clusterip_service_only_through_its_nodeport_or_balancer():
    lab = load({"name": "rni", "nodes": NODES, "internet": {"hosts": [{"name": "www", "ip": "203.0.113.10"}]},
                "pods": [{"name": "a", "node": "n1", "labels": {"app": "web"}}],
                "services": [{"name": "web", "selector": {"app": "web"}, "ports": [{"port": 80}]}]}).lab
    with pytest.raises(UsageError, match="pods and nodes reach a ClusterIP, internet hosts a NodePort"):
        reach_mod.probe_of(lab, "www", "svc/web")


def test_a_protocol_the_service_does_not_serve_is_named_as_asked():
    """QA: `reach("n1", "svc/web", proto="udp")` said "svc/web has no port /UDP"."""
    lab = lab_of()
    for args, words in ((dict(proto="udp"), "has no UDP port"), (dict(port=81), "has no port 81 "),
                        (dict(proto="udp", port=80), "has no port 80/UDP")):
        with pytest.raises(UsageError, match=f"svc/web {words}") as err:
            reach_mod.probe_of(lab, "n1", "svc/web", **args)
        assert str(err.value).endswith("(ports: 80/TCP)"), err.value
