"""A trace to a node's hostPort follows portmap's DNAT to the pod, as one to a nodePort follows kube-proxy's: the
DNAT row names portmap's rule (CNI-HOSTPORT-DNAT → CNI-DN-<hash>), ``endpoint`` is the pod, and the result says it
was delivered there. It ended "delivered to n1" with ``endpoint`` null, its DNAT row naming no rule (QA qr3 #4).
A fake kernel (no root): the node's nat table holds portmap's rules as iptables-save shows them."""

from __future__ import annotations

from netlab.plan.build import build_plan
from netlab.trace import hostport
from netlab.trace.facts import CtEntry, NatRule, NatTable
from netlab.trace.flow import Flow
from netlab.trace.labmap import LabMap
from netlab.trace.render import TraceResult, render_text
from netlab.trace.verdict import explain
from netlab.trace.walk import walk
from helpers import two_node_topology
from test_trace_walk import FakeKernel, lab_from

NODE, CLIENT, POD = "192.168.122.215", "192.168.122.7", "10.244.0.2"  # minikube, minikube-m02, fedora-1
CHAIN = "CNI-DN-13f29cc9e58ddc4d03915"
PORTMAP = [  # iptables-save -t nat of a node with portmap, hostPort 18081 of the pod at 10.244.0.2:8080
    "-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT",
    f"-A {CHAIN} -s 10.244.0.0/24 -p tcp -m tcp --dport 18081 -j CNI-HOSTPORT-SETMARK",
    f"-A {CHAIN} -p tcp -m tcp --dport 18081 -j DNAT --to-destination {POD}:8080",
    '-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \\"hostport-net\\" id: \\"3115d1\\"" '
    f"-m multiport --dports 18080,18081 -j {CHAIN}",
]
RULE = PORTMAP[2]


class PortmapKernel(FakeKernel):
    def nat_table(self, netns, table="nat"):
        planned = super().nat_table(netns, table)
        if table != "nat" or netns != "hp-minikube" or planned is None:
            return planned
        return NatTable(planned.chains | {"CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-SETMARK", CHAIN},
                        planned.rules + tuple(NatRule(line, 1, 1) for line in PORTMAP))


def traced(table: bool = True):
    lab = lab_from(two_node_topology("hp"))
    plan = build_plan(lab)
    m, k = LabMap.from_lab(lab, plan), (PortmapKernel if table else FakeKernel)(lab, plan)
    fwd = Flow("tcp", CLIENT, NODE, 40000, 18081)
    k.ct["hp-minikube"] = [CtEntry(fwd, Flow("tcp", POD, CLIENT, 8080, 40000), "SYN_RECV")]
    w = walk(k, m, "hp-minikube-m02", fwd)
    return w, TraceResult(lab="hp", src={"name": "minikube-m02", "ip": CLIENT},
                          dst={"name": "minikube", "kind": "node", "ip": NODE}, proto="tcp", port=18081, marker="m",
                          forward=w, verdict=explain(w), reply=None, reply_verdict=None, reply_received=False)


def test_the_hostport_dnat_names_portmaps_rule_and_the_pod():
    w, r = traced()
    assert w.outcome == "delivered" and w.end_netns == "hp-fedora-1", w.hops
    row = next(h for h in w.hops if h.kind == "dnat")
    assert row.netns == "hp-minikube"
    assert (f"DNAT {NODE}:18081 → {POD}:8080: hostPort 18081 of pod fedora-1, CNI-HOSTPORT-DNAT → {CHAIN}: "
            f"portmap's `{RULE}` (its counter went up by 1 during the trace); conntrack will rewrite") in row.decision
    assert r.endpoint == {"endpoint": "fedora-1", "endpoint_ip": POD, "endpoint_port": 8080, "sep_chain": CHAIN,
                          "svc_chain": "CNI-HOSTPORT-DNAT", "rule": RULE, "rule_counted": 1, "via": "HostPort"}
    text = render_text(r, width=1000).splitlines()
    assert (f"result: delivered to fedora-1, whose hostPort is minikube:18081 (portmap DNATed it to {POD}:8080)"
            in [line.split(";")[0] for line in text]), text
    assert f"hostPort 18081 of pod fedora-1: portmap's DNAT to {POD}:8080 via CNI-HOSTPORT-DNAT → {CHAIN}" in text


def test_a_dnat_no_portmap_rule_makes_names_no_pod():
    """Another rule's DNAT (a hand-made one, say): the row as before, no endpoint."""
    w, r = traced(table=False)
    row = next(h for h in w.hops if h.kind == "dnat")
    assert "hostPort" not in row.decision and r.endpoint is None


def test_only_the_rule_for_that_port_address_and_protocol_matches():
    table = NatTable(frozenset({"CNI-HOSTPORT-DNAT", CHAIN}), tuple(NatRule(line) for line in PORTMAP))
    old, new = Flow("tcp", CLIENT, NODE, 40000, 18081), Flow("tcp", CLIENT, POD, 40000, 8080)
    assert hostport.dnat_of(table, old, new).rule.line == RULE
    assert hostport.dnat_of(table, Flow("udp", CLIENT, NODE, 40000, 18081), new) is None
    assert hostport.dnat_of(table, Flow("tcp", CLIENT, NODE, 40000, 18080), new) is None  # no DNAT for 18080 there
    assert hostport.dnat_of(table, old, Flow("tcp", CLIENT, "10.244.0.3", 40000, 8080)) is None
    pinned = [line.replace("-p tcp -m tcp", f"-d {CLIENT}/32 -p tcp -m tcp") for line in PORTMAP]  # hostIP
    assert hostport.dnat_of(NatTable(table.chains, tuple(NatRule(x) for x in pinned)), old, new) is None


def test_a_hostport_packet_a_policy_rejected_names_portmaps_dnat_and_stops_there():
    """No conntrack entry (a NetworkPolicy's REJECT dropped the DNATed packet in FORWARD, before conntrack kept one,
    QA q21 #1): the DNAT row still names portmap's rule and the pod, from the rules, and the walk stops there, as
    for a nodePort; it went on "delivered to the node", and the reset was blamed on no socket listening there."""
    lab = lab_from(two_node_topology("hp"))
    plan = build_plan(lab)
    k = PortmapKernel(lab, plan)
    k.policy_rejects = {"hp-minikube": ["NETPOL-IN-X"]}
    w = walk(k, LabMap.from_lab(lab, plan), "hp-minikube-m02", Flow("tcp", CLIENT, NODE, 40000, 18081))
    v = explain(w)
    row = w.hops[-1]
    assert (row.netns, row.kind, row.facts.get("dropped_here"), w.outcome) == ("hp-minikube", "dnat", True, "stopped")
    assert row.decision.startswith(f"DNAT by portmap's rules, but no conntrack entry kept for {CLIENT}:40000 → "
                                   f"{NODE}:18081 tcp: hostPort 18081 of pod fedora-1, CNI-HOSTPORT-DNAT → {CHAIN}")
    assert (row.facts["endpoint"], row.facts["endpoint_ip"], row.facts["via"]) == ("fedora-1", POD, "HostPort")
    assert not v.delivered and v.lost_at == len(w.hops) - 1
    assert f"{NODE}:18081 is hostPort 18081 of pod fedora-1, whose DNAT to {POD}:8080 hp-minikube's rules hold " \
           "(portmap's), but hp-minikube has no conntrack entry for this packet" in v.reason
    assert "NETPOL-IN-X" in v.reason
    k.policy_rejects = {}  # no REJECT counted it: nothing to say it was DNATed, the rows as before
    w = walk(k, LabMap.from_lab(lab, plan), "hp-minikube-m02", Flow("tcp", CLIENT, NODE, 40000, 18081))
    assert w.outcome == "delivered" and not any(h.kind == "dnat" for h in w.hops)


def test_a_pod_to_its_own_hostport_says_so_not_through_a_service():
    """A pod to its own node's hostPort: portmap's DNAT sends it back to the pod (the bridge in hairpin mode), and
    the 0x2000 mark its CNI-DN chain set for the pod CIDR's source has CNI-HOSTPORT-MASQ masquerade it, so that the
    reply comes back through the node. It was said to go "through the Service" (QA)."""
    lab = lab_from(two_node_topology("hp"))
    plan = build_plan(lab)
    m, k = LabMap.from_lab(lab, plan), PortmapKernel(lab, plan)
    fwd = Flow("tcp", POD, NODE, 40000, 18081)
    k.ct["hp-minikube"] = [CtEntry(fwd, Flow("tcp", POD, "10.244.0.1", 8080, 40000), "SYN_RECV")]
    w = walk(k, m, "hp-fedora-1", fwd)
    assert w.outcome == "delivered" and w.end_netns == "hp-fedora-1", w.hops
    pod = {"name": "fedora-1", "ip": POD, "netns": "hp-fedora-1"}
    r = TraceResult(lab="hp", src=pod, dst={"name": "minikube", "kind": "node", "ip": NODE}, proto="tcp",
                    port=18081, marker="m", forward=w, verdict=explain(w), reply=None, reply_verdict=None,
                    reply_received=False)
    result = next(line for line in render_text(r, width=1000).splitlines() if line.startswith("result:"))
    assert "Service" not in result, result
    assert ("(itself, through its hostPort: portmap's DNAT on minikube sent it back to the pod, minikube's bridge "
            "cni0 sending the frame back out the port it came in on") in result, result
    assert ("masqueraded to 10.244.0.1 (CNI-HOSTPORT-SETMARK's mark 0x2000, CNI-HOSTPORT-MASQ's MASQUERADE) so "
            "that the reply comes back through minikube to be un-DNATed)") in result, result


def test_a_refused_hostport_whose_rule_is_gone_gives_its_fix_and_up_beside_it():
    """The row where the packet arrived names the rule of portmap's that is gone and the iptables command that puts
    it back (trace.run); the result gives it as its fix, with the `up` that rewrites the node's nat rules."""
    lab = lab_from(two_node_topology("hp"))
    plan = build_plan(lab)
    w = walk(FakeKernel(lab, plan), LabMap.from_lab(lab, plan), "hp-minikube-m02", Flow("tcp", CLIENT, NODE, 40000,
                                                                                        18081))
    assert w.end_netns == "hp-minikube"
    r = TraceResult(lab="hp", src={"name": "minikube-m02", "ip": CLIENT}, dst={"name": "minikube", "kind": "node",
                    "ip": NODE}, proto="tcp", port=18081, marker="m", forward=w, verdict=explain(w), reply=None,
                    reply_verdict=None, reply_received=False)
    arrival = next(h for h in reversed(w.hops) if h.kind == "deliver")
    fix = "ip netns exec hp-minikube iptables -t nat -A CNI-DN-x -p tcp -m tcp --dport 18081 -j DNAT --to-destination " \
          f"{POD}:8080"
    arrival.problem, arrival.fix = "portmap's DNAT ... is gone", fix
    r.refused, r.repair = "connection refused; portmap's DNAT ... is gone", "sudo netlab up --lab hp"
    text = render_text(r, width=1000).splitlines()
    assert f"  fix: {fix}   (or: sudo netlab up --lab hp, which repairs the lab)" in text, text
