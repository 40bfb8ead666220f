"""A pod's egress to its own node (plan/policy.py, INPUT): the node's addresses are local, so the pod's
packets to them go up through INPUT, never FORWARD. Kubernetes' "from the pod's own node" exception is for
the pod's ingress only; kube-router jumps to the pod's chain from INPUT too, and so does netlab. Pure: the
plan's rules, and the trace's words for such a packet."""

from __future__ import annotations

import copy

from test_services_plan import check_golden

from netlab.api.topology import load
from netlab.model.netpol import Peer, policy_set
from netlab.plan.build import build_plan
from netlab.plan.policy import FORWARD_CHAIN, pod_chain
from netlab.trace import policy as tpolicy
from netlab.trace.targets import Endpoint
from netpol_cases import CASES, model

BY_NAME = {c["name"]: c for c in CASES}
INPUT_CHAIN = "NETPOL-INPUT"  # the chain INPUT jumps to first, as kube-router's KUBE-ROUTER-INPUT
JUMP = f'-A INPUT -m comment --comment "netlab network policies" -j {INPUT_CHAIN}'

# Two nodes, a pod isolated for egress on n1 (a1) that may reach n1's node IP only through an ipBlock,
# a pod of no policy beside it (b1), and one on n2 (b2).
SMALL = {
    "name": "npe", "nodes": [{"name": "n1"}, {"name": "n2"}],
    "pods": [{"name": "a1", "node": "n1", "labels": {"app": "one"}},
             {"name": "b1", "node": "n1", "labels": {"app": "two"}},
             {"name": "b2", "node": "n2", "labels": {"app": "two"}}],
    "networkPolicies": [{"name": "one", "spec": {
        "podSelector": {"matchLabels": {"app": "one"}}, "policyTypes": ["Egress"],
        "egress": [{"to": [{"podSelector": {}}], "ports": [{"protocol": "TCP", "port": 8080}]},
                   {"to": [{"ipBlock": {"cidr": "192.168.122.2/32"}}]}]}}],
}


def filters(topo: dict) -> dict:
    lab = load(topo).lab
    return {r.netns.split("-", 1)[1]: r for r in build_plan(lab).of_kind("nat") if r.table == "filter"}


def test_egress_isolated_pods_are_judged_from_input_by_their_egress_chain():
    lab = load(model("npe", BY_NAME["default-deny-egress"]["policies"])).lab
    f = filters(model("npe", BY_NAME["default-deny-egress"]["policies"]))
    ps = policy_set(lab)
    for node, pods in (("n1", ("x-a", "x-c")), ("n2", ("x-b",))):
        rules = f[node].rules
        # First in INPUT (before kube-proxy's chains), as kube-router's KUBE-ROUTER-INPUT is.
        assert [r for r in rules if r.startswith("-A INPUT ")][0] == JUMP, node
        own = [r for r in rules if r.startswith(f"-A {INPUT_CHAIN} ")]
        assert own == [f"-A {INPUT_CHAIN} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN"] + [
            f'-A {INPUT_CHAIN} -s {ps.pod(p).ip}/32 -m comment --comment "x/{p} egress to this node" '
            f"-j {pod_chain('egress', ps.pod(p))}" for p in pods], node
        # The same pod chain as FORWARD's: the same allow rules, one REJECT.
        forward = [r for r in rules if r.startswith(f"-A {FORWARD_CHAIN} -s ") and not r.endswith("-j RETURN")]
        assert [r.split()[-1] for r in forward] == [r.split()[-1] for r in own[1:]]
        assert f":{INPUT_CHAIN} - [0:0]" in f[node].payload


def test_ingress_only_policies_leave_input_alone():
    """The node's own traffic to a pod is always allowed (OUTPUT, never judged), the pod's replies to it are
    ESTABLISHED: a pod isolated for ingress alone has nothing to judge in INPUT."""
    for res in filters(model("npe", BY_NAME["default-deny-ingress"]["policies"])).values():
        assert INPUT_CHAIN not in res.chains and not [r for r in res.rules if "NETPOL" in r and "INPUT" in r]
    for res in filters(model("npe", [])).values():
        assert not [r for r in res.rules if "NETPOL" in r]


def test_both_kube_proxy_modes_write_the_input_jump():
    for mode in ("iptables", "nftables"):
        topo = {**model("npe", BY_NAME["default-deny-both"]["policies"]), "cluster": {"kubeProxyMode": mode},
                "services": [{"name": "web", "namespace": "x", "selector": {"pod": "a"}, "ports": [{"port": 80}]}]}
        for node, res in filters(topo).items():
            assert JUMP in res.rules and f"#   {JUMP}" in res.payload, (mode, node)


def test_golden_node_filter_with_an_egress_isolated_pod():
    """n1's whole filter payload: kube-proxy's and Flannel's chains, NETPOL-FORWARD, NETPOL-INPUT, a1's chain."""
    f = filters(SMALL)
    check_golden("netpol_node_filter.txt", f["n1"].payload)
    assert not [c for c in f["n2"].chains if c.startswith("NETPOL-")]  # b2 is isolated by nothing


def test_evaluator_and_trace_words_for_a_pod_to_its_own_node():
    lab = load(SMALL).lab
    ps = policy_set(lab)
    a1, n1, n2 = lab.pod("a1"), lab.node("n1"), lab.node("n2")
    src = Endpoint("a1", "pod", str(a1.ip), a1.netns)
    chain = pod_chain("egress", ps.pod("a1"))
    counted = {(n1.netns, chain): 1}
    # The node IP is in the ipBlock: allowed; cni0's and flannel.1's addresses are not: denied.
    assert ps.flow(Peer(a1.ip, ps.pod("a1")), Peer(n1.ip, None, "n1"), "ICMP", None).allowed
    [ok] = tpolicy.story(lab, src, Endpoint("n1", "node", str(n1.ip), n1.netns), "icmp", None, None, {}, {})
    assert ok == {"to": "n1", "allowed": True,
                  "text": "allowed by policy default/one, egress rule 2, peer 1 ipBlock 192.168.122.2/32, any port"}
    for addr in (n1.gateway.ip, n1.vtep_ip):
        [e] = tpolicy.story(lab, src, Endpoint(f"n1 {addr}", "ip", str(addr)), "icmp", None, None, {}, counted)
        assert e["text"] == (f"dropped in node n1, chain {chain}, from INPUT (the packet is for n1 itself), by "
                             "policy default/one (no egress rule allows it for pod default/a1); the kernel's REJECT "
                             "rule there counted it")
        assert (e["to"], e["node"], e["chain"], e["counted"]) == (f"n1 {addr}", "n1", chain, True)
    # Another node: forwarded, judged in FORWARD by the same chain.
    [e] = tpolicy.story(lab, src, Endpoint("n2", "node", str(n2.ip), n2.netns), "tcp", 22, None, {}, counted)
    assert e["text"].startswith(f"dropped in node n1, chain {chain}, by policy default/one") and not e["allowed"]
    # A pod no policy isolates: its egress says so.
    b1 = lab.pod("b1")
    [e] = tpolicy.story(lab, Endpoint("b1", "pod", str(b1.ip), b1.netns), Endpoint("n1", "node", str(n1.ip)),
                        "icmp", None, None, {}, {})
    assert e == {"to": "n1", "allowed": True, "text": "no policy selects default/b1 for egress: allowed"}
    # A node's trace to a node: no pod's egress, no story.
    assert tpolicy.story(lab, Endpoint("n2", "node", str(n2.ip), n2.netns), Endpoint("n1", "node", str(n1.ip)),
                         "icmp", None, None, {}, {}) == []


def test_a_node_as_a_destination_is_the_address_the_flow_goes_to_not_flannel1s():
    """probe's evaluator stood for a node by flannel.1's address as a destination too (lab_peer: the address a
    node sends from): a pod whose egress ipBlock holds another node's IP was expected refused when it pinged that
    node (flannel.1's address is not in the block), and expected to reach it with a block of flannel.1's address
    alone, which the kernel's `-d` rule in FORWARD never matches for a packet to the node IP."""
    from netlab.breaks.symptoms import allowed_flow
    from netlab.probe.matrix import endpoints
    from netlab.probe.policy import policy_judge

    for block, to_ip in (("node", True), ("vtep", False)):
        topo = copy.deepcopy(SMALL)
        probe_lab = load(topo).lab
        n2 = probe_lab.node("n2")
        cidr = f"{n2.ip if block == 'node' else n2.vtep_ip}/32"
        topo["networkPolicies"][0]["spec"]["egress"][1] = {"to": [{"ipBlock": {"cidr": cidr}}]}
        lab = load(topo).lab
        eps = endpoints(lab)
        judge = policy_judge(lab)
        assert judge is not None
        allowed, why = judge(eps["a1"], eps["n2"], "icmp", None)  # the probe pings n2's node IP
        assert allowed is to_ip, (cidr, why)
        # The quiz's flow for its trace (to a node by name: the trace goes to its node IP): n2 when the policy allows
        # that, else b2 on 8080 (the first rule).
        assert allowed_flow(lab, ["a1"], ["n2", "b2"])[1] == ("n2" if to_ip else "b2"), cidr
        ps = policy_set(lab)
        assert ps.flow(Peer(lab.pod("a1").ip, ps.pod("a1")), Peer(n2.vtep_ip), "ICMP", None).allowed is not to_ip
