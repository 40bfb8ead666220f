"""A pod's connection to a node's nodePort (probe/nodeport_pods.py): the client address each endpoint sees, the
expectation under NetworkPolicies, and lab.reach's reasons (api/reach.py). The kernel's side:
tests/integration/test_nodeport_hairpin.py."""

from __future__ import annotations

import pytest

from netlab.api import reach
from netlab.api.topology import load
from netlab.errors import UsageError
from netlab.probe import nodeport_pods, services as svcs
from netlab.probe.matrix import Probe, build_matrix
from netlab.probe.runner import as_nodeport


def lab_of(policies: list | None = None, local: bool = False, expect: list | None = None):
    svc = {"name": "web-np", "type": "NodePort", "selector": {"app": "web"},
           "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30080}]}
    if local:
        svc["externalTrafficPolicy"] = "Local"
    topo = {"name": "x", "nodes": [{"name": "n1"}, {"name": "n2"}],
            "pods": [{"name": "web-1", "node": "n1", "labels": {"app": "web"}}, {"name": "other", "node": "n2"}],
            "services": [svc], "networkPolicies": policies or [], "expect": expect or []}
    return load(topo).lab


def pod_probe(lab, src: str, node: str) -> Probe:
    p = nodeport_pods.probe(lab, svcs.build(lab, ("tcp",)), src, node, "tcp", 30080)
    assert isinstance(p, Probe), p
    return p


def deny(rules: list | None = None, types: tuple = ("Ingress",)) -> list:
    spec = {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": list(types)}
    spec.update({t.lower(): rules or [] for t in types})
    return [{"name": "web-pol", "spec": spec}]


def test_a_pod_reaching_itself_through_another_nodes_nodeport_is_seen_from_that_nodes_address():
    lab = lab_of()
    n1, n2 = lab.node("n1"), lab.node("n2")
    p = pod_probe(lab, "web-1", "n2")
    [rule] = p.rules
    assert p.expected and rule.allowed == (str(n2.vtep_ip),) and "hairpin through n2" in rule.why
    assert "hairpin through n2" in p.reason and str(n2.vtep_ip) in p.reason
    own = pod_probe(lab, "web-1", "n1")  # its own node's: masqueraded to cni0's address
    assert own.rules[0].allowed == (str(n1.gateway.ip),) and own.rules[0].why.startswith("hairpin:")
    assert pod_probe(lab, "other", "n1").rules[0].allowed == (str(n1.gateway.ip),)
    assert pod_probe(lab, "other", "n2").reason == "service"


@pytest.mark.parametrize("allow, expected", [(False, False), (True, True)])
def test_the_hairpin_through_another_node_is_judged_by_policies_with_that_nodes_address(allow, expected):
    vtep = lab_of().node("n2").vtep_ip
    lab = lab_of(deny([{"from": [{"ipBlock": {"cidr": f"{vtep}/32"}}]}] if allow else []))
    p = pod_probe(lab, "web-1", "n2")
    assert p.expected is expected and "default/web-pol" in p.reason and "hairpin through n2" in p.reason
    assert pod_probe(lab, "web-1", "n1").expected  # its own node's nodePort: a hairpin, never judged
    assert pod_probe(lab, "other", "n2").expected is expected  # n2's address too


def test_a_pods_egress_to_another_nodes_nodeport_is_judged_against_that_node():
    lab = lab_of(deny(types=("Egress",)))
    assert not pod_probe(lab, "web-1", "n2").expected
    assert pod_probe(lab, "web-1", "n1").expected  # DNATed to itself first: never judged


def test_external_traffic_policy_local_from_pods():
    lab = lab_of(local=True)
    p = nodeport_pods.probe(lab, svcs.build(lab, ("tcp",)), "web-1", "n2", "tcp", 30080)
    assert isinstance(p, Probe) and not p.expected and "no endpoint on n2" in p.reason
    # from n2's pod to n1's nodePort: Flannel's masquerade makes it outside traffic, which keeps n2's address
    assert pod_probe(lab, "other", "n1").rules[0].allowed == (str(lab.node("n2").ip),)
    # to its own node's: pod traffic goes the ClusterIP's way, unmasqueraded
    assert pod_probe(lab, "other", "n2").rules[0].allowed == (str(lab.pod("other").ip),)


def test_an_expect_entry_to_another_nodes_nodeport_is_checked_with_the_hairpins_rule():
    lab = lab_of(expect=[{"from": "web-1", "to": "n2", "proto": "tcp", "port": 30080}])
    [entry] = [p for p in build_matrix(lab, ("tcp",)) if p.key == ("web-1", "n2", "tcp", 30080)]
    p = as_nodeport(entry, svcs.build(lab, ("tcp",)), lab)
    assert p.reason == "expect[0]" and p.rules[0].allowed == (str(lab.node("n2").vtep_ip),)
    assert "hairpin through n2" in p.rules[0].why


def test_lab_reach_of_a_nodeport_is_the_service_probe():
    lab = lab_of(deny())
    p = reach._probe(lab, "web-1", "n2", None, 30080)
    assert p.svc is not None and not p.expected and "hairpin through n2" in p.reason
    p = reach._probe(lab, "n1", "n2", None, 30080)
    assert p.svc is not None and p.svc.node == "n2" and not p.expected


def test_lab_reach_of_a_service_probe_skips_as_a_whole_says_why():
    topo = {"name": "x", "nodes": [{"name": "n1"}],
            "pods": [{"name": "a", "node": "n1"},
                     {"name": "b", "node": "n1", "labels": {"app": "b"},
                      "containers": [{"name": "c", "command": ["sleep", "1000"],
                                      "ports": [{"containerPort": 9000, "protocol": "UDP"}]}]}],
            "services": [{"name": "cmd", "selector": {"app": "b"},
                          "ports": [{"port": 82, "targetPort": 9000, "protocol": "UDP"}]}]}
    lab = load(topo).lab
    with pytest.raises(UsageError) as err:
        reach._service_probe(lab, "a", "cmd", None, None)
    assert str(err.value) == ("svc/cmd 82/UDP cannot be probed from a: its endpoints answer it with no echo server of "
                              "netlab's (a command of their own may, or nothing), and a silent UDP server cannot be "
                              "told from a lost packet")
