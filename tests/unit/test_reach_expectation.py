"""``lab.reach`` expects what ``netlab probe`` expects for the same flow (api/reach.py), without root.

It expected a reply whatever the NetworkPolicies said: a flow a policy denies came back ``expected:
"reachable"``, ``as_expected: False``, blaming "a rule on the way or in its own firewall", not the policy.
"""

from __future__ import annotations

import copy

from helpers import REACH_DENIED, REACH_POLICY_TOPOLOGY
from netlab.api import reach as reach_mod
from netlab.api.topology import load
from netlab.probe.matrix import build_matrix
from netlab.probe.services import build as build_services

# The integration test's lab, with dev's pods under egress default-deny too.
TOPO = {**REACH_POLICY_TOPOLOGY, "name": "rex", "networkPolicies": REACH_POLICY_TOPOLOGY["networkPolicies"] + [
    {"name": "dev-deny-egress", "namespace": "dev", "spec": {"podSelector": {}, "policyTypes": ["Egress"]}}]}
DENIED = REACH_DENIED


def lab_of(topo: dict = TOPO):
    return load(copy.deepcopy(topo)).lab


def test_a_flow_a_policy_denies_is_expected_unreachable_as_probe_expects_it():
    lab = lab_of({**TOPO, "networkPolicies": TOPO["networkPolicies"][:1]})
    matrix = {p.key: p for p in build_matrix(lab, ("tcp",))}
    denied = reach_mod._probe(lab, "dev1", "api", "tcp", 8080)
    assert (denied.expected, denied.reason) == (False, DENIED)
    assert (denied.expected, denied.reason) == (matrix[("dev1", "api", "tcp", 8080)].expected,
                                                matrix[("dev1", "api", "tcp", 8080)].reason)
    allowed = reach_mod._probe(lab, "fe", "api", "tcp", 8080)
    assert allowed.expected is True and allowed.reason.startswith("policy: allowed by policy prod/api-from-fe")
    # A port no container declares is not in the matrix: judged by the same function all the same.
    other = reach_mod._probe(lab, "fe", "api", "tcp", 9999)
    assert ("fe", "api", "tcp", 9999) not in matrix
    assert (other.expected, other.reason) == (False, DENIED)


def test_a_pods_egress_to_a_node_is_judged_and_without_policies_everything_reaches():
    lab = lab_of()
    to_node = reach_mod._probe(lab, "dev1", "n1", "icmp", None)
    assert to_node.expected is False and "dev/dev-deny-egress" in to_node.reason
    assert reach_mod._probe(lab, "fe", "n1", "icmp", None).expected is True  # prod has no egress policy
    plain = lab_of({k: v for k, v in TOPO.items() if k != "networkPolicies"})
    p = reach_mod._probe(plain, "dev1", "api", "tcp", 8080)
    assert (p.expected, p.reason) == (True, "default")


def test_expect_entries_hold_for_reach_as_for_probe():
    lab = lab_of({**TOPO, "expect": [{"from": "fe", "to": "api", "proto": "tcp", "port": 8080, "reach": False}]})
    p = reach_mod._probe(lab, "fe", "api", "tcp", 8080)
    assert (p.expected, p.reason) == (False, "expect[0]")


def test_a_service_flow_is_judged_at_its_endpoints_as_probe_judges_it():
    lab = lab_of({**TOPO, "networkPolicies": TOPO["networkPolicies"][:1]})
    probes = {p.source.name: p for p in build_services(lab, ("tcp",)).probes
              if p.svc is not None and p.svc.kind == "ClusterIP" and p.svc.service == "api"}
    for src, expected in (("dev1", False), ("fe", True), ("api", True)):  # api: itself, through its Service
        p = reach_mod._service_probe(lab, src, "prod/api", "tcp", 80)
        assert (p.expected, p.reason) == (expected, probes[src].reason), src
    assert reach_mod._service_probe(lab, "dev1", "prod/api", "tcp", 80).reason == "service; " + DENIED
