"""``up``'s try-line suggests a ping the lab's own NetworkPolicies allow (model/netpol.ping_pair), without root.

It always suggested the first pod pinging one on another node: on a lab whose first pod is under egress
default-deny, the very command it printed got "Destination Port Unreachable".
"""

from __future__ import annotations

import copy

from netlab.api.topology import load
from netlab.model.netpol import Peer, ping_pair, policy_set

DENY_EGRESS_A = {"name": "deny-egress", "namespace": "a", "spec": {"podSelector": {}, "policyTypes": ["Egress"]}}
TOPO = {
    "name": "tryl",
    "nodes": [{"name": "n1"}, {"name": "n2"}],
    "pods": [{"name": "a-web", "namespace": "a", "node": "n1"},
             {"name": "a-cli", "namespace": "a", "node": "n2"},
             {"name": "b-cli", "namespace": "b", "node": "n2"}],
    "networkPolicies": [DENY_EGRESS_A],
}


def pair_names(topo: dict) -> tuple[str, str] | None:
    pair = ping_pair(load(copy.deepcopy(topo)).lab)
    return None if pair is None else (pair[0].name, pair[1].name)


def test_without_policies_the_first_pod_pings_one_on_another_node():
    assert pair_names({**TOPO, "networkPolicies": []}) == ("a-web", "a-cli")


def test_a_pair_the_policies_allow_is_chosen_and_the_model_agrees():
    assert pair_names(TOPO) == ("b-cli", "a-web")  # a's pods may send nothing; b-cli to a-web, across nodes
    lab = load(copy.deepcopy(TOPO)).lab
    src, dst = ping_pair(lab)  # type: ignore[misc]
    ps = policy_set(lab)
    s, d = ps.pod(src.name), ps.pod(dst.name)
    assert ps.flow(Peer(s.ip, s), Peer(d.ip, d), "ICMP", None).allowed


def test_no_line_when_the_policies_allow_no_ping_and_a_lone_pod_pings_itself():
    deny_all = [{"name": "deny", "namespace": ns, "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}
                for ns in ("a", "b")]
    assert pair_names({**TOPO, "networkPolicies": deny_all}) is None
    lone = {**TOPO, "pods": TOPO["pods"][:1], "networkPolicies": deny_all[:1]}
    assert pair_names(lone) == ("a-web", "a-web")  # a pod reaching itself is never judged
    # icmp only where a rule allows it: a rule for TCP alone allows no ping
    tcp_only = {"name": "tcp-out", "namespace": "a", "spec": {"podSelector": {}, "policyTypes": ["Egress"],
                                                                  "egress": [{"ports": [{"port": 80}]}]}}
    assert pair_names({**TOPO, "networkPolicies": deny_all + [tcp_only]}) is None
