"""The NetworkPolicy verdict of a trace to a nodePort or a LoadBalancer (trace/nodeport.py, trace/policy.py; pure).

A node or an internet host reaching a Service's nodePort: kube-proxy DNATs the packet on the receiving node and
masquerades it there, after that node's FORWARD. The endpoint's ingress is judged on the endpoint's node with
the address the packet then has: the receiving node's address towards the pod (flannel.1's) when the endpoint
is elsewhere, the client's own address when the receiving node forwards it to its own pod. trace judged
nothing for these flows (a node, not a pod or a ClusterIP, was the destination), so a packet a policy's REJECT
dropped was blamed on what the walk found next: "no ARP entry for the endpoint on cni0".
"""

from __future__ import annotations

import copy
from ipaddress import IPv4Address

from netlab.api.topology import load
from netlab.model.netpol import Peer, nodeport_source, policy_set
from netlab.plan.policy import pod_chain
from netlab.probe.matrix import Endpoint as PEndpoint
from netlab.probe.policy import service_judge
from netlab.trace import policy as tpolicy
from netlab.trace.hops import Hop
from netlab.trace.targets import resolve_source, resolve_target

TOPO = {
    "name": "npn", "nodes": [{"name": "n1"}, {"name": "n2"}],
    "pods": [{"name": "web-1", "node": "n1", "labels": {"app": "web"}},
             {"name": "web-2", "node": "n2", "labels": {"app": "web"}},
             {"name": "client", "node": "n1", "labels": {"role": "client"}}],
    "services": [{"name": "web-np", "type": "NodePort", "selector": {"app": "web"},
                  "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30080}]},
                 {"name": "web-lb", "type": "LoadBalancer", "selector": {"app": "web"},
                  "loadBalancerIP": "203.0.113.100", "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30081}]}],
    "internet": {"cidr": "203.0.113.0/24", "gateway": {"ip": "203.0.113.1"},
                 "hosts": [{"name": "example", "ip": "203.0.113.10"}]},
    "networkPolicies": [{"name": "web-from-clients", "spec": {
        "podSelector": {"matchLabels": {"app": "web"}},
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}]}]}}],
}


def _story(lab, src: str, dst: str, port: int, counted_on: str | None, endpoint: str | None = None,
           dnat_node: str | None = None):
    s = resolve_source(lab, src)
    d = resolve_target(lab, dst, None, port, s)
    ps = policy_set(lab)
    counted = {}
    if counted_on is not None:
        counted = {(lab.node(lab.pod(counted_on).node).netns, pod_chain("ingress", ps.pod(counted_on))): 1}
    ip = str(lab.pod(endpoint).ip) if endpoint else None
    more = {"dnat_node": dnat_node} if dnat_node else {}
    return tpolicy.story(lab, s, d, d.proto or "tcp", d.port, ip, {}, counted, **more)


def test_a_nodeport_refused_by_the_endpoints_ingress_is_named():
    lab = load(TOPO).lab
    chain = pod_chain("ingress", policy_set(lab).pod("web-1"))
    # From another node, the endpoint on the receiving node itself: it sees n2's eth0 address. No conntrack entry
    # (the REJECT came first): the REJECT that counted it says which endpoint, the other one is left out.
    [e] = _story(lab, "n2", "n1", 30080, counted_on="web-1")
    assert e["text"] == (f"dropped in node n1, chain {chain}, by policy default/web-from-clients (no ingress rule "
                         f"allows it for pod default/web-1; it comes from {lab.node('n2').ip}, n2's eth0 address); "
                         "the kernel's REJECT rule there counted it")
    assert (e["node"], e["chain"], e["counted"], e["allowed"]) == ("n1", chain, True, False)
    # The endpoint elsewhere: n2 masqueraded it to its flannel.1 address.
    [e] = _story(lab, "n2", "n2", 30080, counted_on="web-1", endpoint="web-1", dnat_node="n2")
    assert f"it comes from {lab.node('n2').vtep_ip}, n2's address after its masquerade" in e["text"]
    # From the internet: the host's own address reaches n1 (no NAT on the way in).
    [e] = _story(lab, "example", "n1", 30080, counted_on="web-1")
    assert e["text"].startswith(f"dropped in node n1, chain {chain}") and "from 203.0.113.10, example's own" in \
        e["text"]


def test_a_nodes_own_packet_to_its_own_pod_is_never_judged_and_a_client_pod_is_allowed():
    lab = load(TOPO).lab
    [e] = _story(lab, "n1", "n1", 30080, None, endpoint="web-1", dnat_node="n1")
    assert e["allowed"] and "n1 is default/web-1's own node: always allowed" in e["text"]  # OUTPUT, then cni0
    # A client pod on the receiving node: still itself there (the masquerade comes after FORWARD).
    [e] = _story(lab, "client", "n1", 30080, None, endpoint="web-1", dnat_node="n1")
    assert e["allowed"] and "role=client" in e["text"]
    # ... but the same pod through n2's nodePort is n1's eth0 address (Flannel's masquerade) when it reaches n2.
    [e] = _story(lab, "client", "n2", 30080, "web-2", endpoint="web-2", dnat_node="n2")
    assert not e["allowed"] and f"from {lab.node('n1').ip}, n1's eth0 address after Flannel's masquerade" in \
        e["text"]


def test_the_address_seen_decides_an_ipblock():
    """Allowed from the internet's addresses: the kernel lets a host's packet through when the receiving node holds
    the endpoint (before its masquerade), and refuses it when the endpoint is on the other node (after)."""
    topo = copy.deepcopy(TOPO)
    topo["networkPolicies"][0]["spec"]["ingress"] = [{"from": [{"ipBlock": {"cidr": "203.0.113.0/24"}}]}]
    lab = load(topo).lab
    [e] = _story(lab, "example", "n1", 30080, None, endpoint="web-1", dnat_node="n1")
    assert e["allowed"] and "ipBlock 203.0.113.0/24" in e["text"]
    [e] = _story(lab, "example", "n1", 30080, "web-2", endpoint="web-2", dnat_node="n1")
    assert not e["allowed"] and f"it comes from {lab.node('n1').vtep_ip}" in e["text"]
    # A LoadBalancer: the gateway routes it to a node untranslated (a passthrough balancer), so the node sees the
    # host's own address, which the ipBlock holds; which node it was is read from conntrack.
    [e] = _story(lab, "example", "svc/web-lb", 80, None, endpoint="web-1", dnat_node="n1")
    assert e["allowed"] and "ipBlock 203.0.113.0/24" in e["text"], e["text"]
    # Nothing names it (the packet did not get that far): judged as every node the gateway's route may pick
    # would (nothing was judged): n1 forwards it to its own pod with the host's address, n2 with its own.
    on_n1, on_n2 = _story(lab, "example", "svc/web-lb", 80, None, endpoint="web-1")
    assert on_n1["allowed"] and "ipBlock 203.0.113.0/24" in on_n1["text"]
    assert not on_n2["allowed"] and f"it comes from {lab.node('n2').vtep_ip}, n2's address" in on_n2["text"]
    # Refused from both: each says from where it comes; and the REJECT that counted it says which endpoint.
    lab = load(TOPO).lab
    texts = [e["text"] for e in _story(lab, "example", "svc/web-lb", 80, None)]
    assert len(texts) == 4 and all(t.startswith("dropped in node ") for t in texts), texts
    lb_ip = lab.find_service("web-lb").load_balancer_ip
    assert any("it comes from 203.0.113.10, example's own address" in t for t in texts), texts
    assert not any(str(lb_ip) in t for t in texts), texts
    [e1, e2] = _story(lab, "example", "svc/web-lb", 80, "web-1")
    assert {e1["pod"], e2["pod"]} == {"default/web-1"} and e1["counted"] and e2["counted"]


def test_the_gateways_route_row_names_the_node_it_picked():
    """A LoadBalancer's packet lost between the gateway and the node (no node kept an entry): the gateway's route
    row (a multipath route's hop, its hash's pick) names the node it sent the packet to."""
    lab = load(TOPO).lab
    gw = dict(lab.internet_hosts)["gateway"]
    n2 = lab.node("n2")
    hops = [Hop(gw, "gateway", "eth0", "route", "route get 203.0.113.100 → via ...",
                facts={"gateway": str(n2.ip), "iif": "inet0", "hops": [str(lab.node("n1").ip), str(n2.ip)]}),
            Hop("npn-underlay", "underlay", "br0", "drop", "...")]
    assert tpolicy.routed_node(lab, hops) == "n2"
    assert tpolicy.routed_node(lab, hops[1:]) is None


def test_a_verdict_for_a_packet_lost_before_the_node_says_it_never_got_there():
    """A LoadBalancer's packet lost on the underlay between the gateway and n1, before n1's FORWARD hook, so n1's
    REJECT counted nothing because it never had the packet: the verdict says so, not "look at the node's filter
    table" (which stays for a packet that did reach the hook)."""
    lab = load(TOPO).lab
    gw, underlay = dict(lab.internet_hosts)["gateway"], lab.underlay_netns
    n1 = lab.node("n1")
    hops = [Hop(gw, "gateway", "eth0", "route", "route get ... (forwarded)", facts={"iif": "inet0"}),
            Hop(underlay, "underlay", "br0", "drop", "bridge br0: ... no port"),
            Hop(n1.netns, "node n1", "eth0", "route", "route get ... (forwarded)", facts={"iif": "eth0"})]
    assert tpolicy.forward_hooks_reached(hops, 1) == {gw}
    assert tpolicy.forward_hooks_reached(hops, None) == {gw, n1.netns}
    s = resolve_source(lab, "example")
    d = resolve_target(lab, "svc/web-lb", None, 80, s)
    ip = str(lab.pod("web-1").ip)
    counters = {(n1.netns, pod_chain("ingress", policy_set(lab).pod("web-1"))): 0}
    [e] = tpolicy.story(lab, s, d, "tcp", 80, ip, counters, counters, dnat_node="n1",
                        reached=tpolicy.forward_hooks_reached(hops, 1))
    assert not e["counted"] and "counted nothing" not in e["text"], e["text"]
    assert e["text"].endswith("; but the packet never got there: it was lost before node n1's FORWARD hook, so this "
                              "is what the policy would do to it"), e["text"]
    [e] = tpolicy.story(lab, s, d, "tcp", 80, ip, counters, counters, dnat_node="n1",
                        reached=tpolicy.forward_hooks_reached(hops, 2))
    assert e["text"].endswith(f"counted nothing: look at the node's filter table (ip netns exec {n1.netns} "
                              "iptables-save -c)") and "but NOT STOPPED: " in e["text"], e["text"]


def test_probe_and_trace_judge_a_nodeport_with_one_source():
    """Which source an endpoint's ingress is judged against for a nodePort packet is one function of the model
    (model/netpol.nodeport_source), which probe's ServiceJudge and trace/nodeport both call: the receiving node's
    address towards an endpoint elsewhere (after its masquerade), the client's own towards one of its own, and
    the node itself for its own packet."""
    lab = load(TOPO).lab
    ps = policy_set(lab)
    web1 = ps.pod("web-1")
    n1, n2 = lab.node("n1"), lab.node("n2")
    host = Peer(IPv4Address("203.0.113.10"))
    assert nodeport_source(lab, "n2", web1, host) == Peer(n2.vtep_ip, None, "n2")
    assert nodeport_source(lab, "n1", web1, host) == host
    assert nodeport_source(lab, "n1", web1, None) == Peer(n1.ip, None, "n1")
    # Both callers agree, where the address decides: an ipBlock of the internet and of n2's eth0 address.
    topo = copy.deepcopy(TOPO)
    topo["networkPolicies"][0]["spec"]["ingress"] = [{"from": [{"ipBlock": {"cidr": "203.0.113.0/24"}},
                                                               {"ipBlock": {"cidr": f"{n2.ip}/32"}}]}]
    lab = load(topo).lab
    ps = policy_set(lab)
    judge = service_judge(lab)
    assert judge is not None
    outcomes = set()
    for name, kind, ip in (("n1", "node", n1.ip), ("n2", "node", n2.ip), ("example", "host", host.ip)):
        src = PEndpoint(name, kind, "x", ip, node=name if kind == "node" else None)
        s = resolve_source(lab, name)
        for receiver in (lab.node("n1"), lab.node("n2")):
            d = resolve_target(lab, receiver.name, None, 30080, s)
            for pod in (ps.pod("web-1"), ps.pod("web-2")):
                probed = ps.flow(judge.nodeport_source(src, receiver, pod), Peer(pod.ip, pod), "TCP", 8080,
                                 via_service=True).allowed
                traced = tpolicy.story(lab, s, d, "tcp", 30080, str(pod.ip), {}, {}, dnat_node=receiver.name)
                assert [e["allowed"] for e in traced] == [probed], (name, receiver.name, pod.name, traced)
                outcomes.add(probed)
    assert outcomes == {True, False}
