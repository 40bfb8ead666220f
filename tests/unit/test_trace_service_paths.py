"""The trace through kube-proxy's rules, with a fake kernel (no root): what a node did not DNAT and why, which rule
chose the endpoint.

The lab is topologies/services.yaml (two nodes, web-1/web-2 behind web, a NodePort, a LoadBalancer, kube-dns,
an internet gateway); the fake kernel (test_trace_walk.FakeKernel) answers from its plan, and the tests delete
rules and chains from its nat tables the way a learner would (``iptables -t nat -D``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from netlab.plan.build import build_plan
from netlab.trace.facts import CtEntry
from netlab.trace.flow import Flow
from netlab.trace.labmap import LabMap
from netlab.trace.verdict import explain, mark_seen
from netlab.trace.walk import walk
from test_trace_walk import FakeKernel, _seen_everywhere, lab_from

ROOT = Path(__file__).resolve().parents[2]
CLIENT, WEB_IP = "10.244.0.3", "10.96.0.20"
SERVICES_RULE = ('-A KUBE-SERVICES -d 10.96.0.20/32 -p tcp -m comment --comment "default/web:http cluster IP" '
                 "-m tcp --dport 80 -j KUBE-SVC-CDGGSHYLG3RE2FKL")


@pytest.fixture
def svc():
    lab = lab_from((ROOT / "topologies/services.yaml").read_text())
    plan = build_plan(lab)
    return lab, LabMap.from_lab(lab, plan), FakeKernel(lab, plan)


def to_web(k, masquerade: bool = True):
    """client → web's ClusterIP, not DNATed on node-1: Flannel's masquerade is all conntrack holds."""
    flow = Flow("tcp", CLIENT, WEB_IP, 40000, 80)
    if masquerade:
        k.ct["svc-node-1"] = [CtEntry(flow, Flow("tcp", WEB_IP, "192.168.122.2", 80, 40000), "SYN_SENT")]
    return flow


def traced(m, k, flow, src="svc-client"):
    """Walk, and let the capture see the packet everywhere it can (it does travel on, undelivered)."""
    w = walk(k, m, src, flow)
    mark_seen(w.hops, _seen_everywhere(w), {h.netns for h in w.hops})
    return w, explain(w)


def test_a_deleted_kube_services_rule_blames_the_node_and_names_the_rule(svc):
    _, m, k = svc
    k.no_rule.add(("svc-node-1", SERVICES_RULE))  # iptables -t nat -D KUBE-SERVICES ...
    w, v = traced(m, k, to_web(k))
    assert w.outcome == "stopped" and not v.delivered
    lost = w.hops[v.lost_at]
    assert (lost.netns, lost.device, lost.kind) == ("svc-node-1", "cni0", "dnat")
    assert f"`{SERVICES_RULE}`" in v.reason and "missing from node-1's nat table" in v.reason
    assert v.reason.startswith("node-1 did not DNAT this packet for Service default/web:http")
    assert "lost in svc-gateway eth0: no route to 10.96.0.20" in v.reason  # where it finally went
    assert v.fix == ("ip netns exec svc-node-1 iptables -t nat -I KUBE-SERVICES 1 -d 10.96.0.20/32 -p tcp "
                     "-m comment --comment 'default/web:http cluster IP' -m tcp --dport 80 -j KUBE-SVC-CDGGSHYLG3RE2FKL")
    assert lost.facts["missing_rule"] == SERVICES_RULE
    # The gateway never DNATs Services: it is not blamed, not even mentioned as "not DNATed".
    assert not any(h.kind == "dnat" for h in w.hops if h.netns == "svc-gateway")
    # The packet's real way on is shown: masqueraded out of node-1 to the gateway.
    assert any(h.kind == "snat" and h.netns == "svc-node-1" for h in w.hops)


def test_a_deleted_service_chain_is_named(svc):
    _, m, k = svc
    k.no_chain.add(("svc-node-1", "KUBE-SVC-CDGGSHYLG3RE2FKL"))
    k.no_rule.add(("svc-node-1", SERVICES_RULE))  # iptables refuses -X while a rule jumps to it
    _, v = traced(m, k, to_web(k))
    assert "chain KUBE-SVC-CDGGSHYLG3RE2FKL (Service default/web:http's entry in KUBE-SERVICES)" not in v.reason
    assert f"`{SERVICES_RULE}`" in v.reason  # the first thing missing on the packet's way
    k.no_rule.clear()
    _, v = traced(m, k, to_web(k))
    assert "chain KUBE-SVC-CDGGSHYLG3RE2FKL (Service default/web:http's choice of an endpoint) is missing" in v.reason
    assert v.fix.startswith("ip netns exec svc-node-1 iptables -t nat -N KUBE-SVC-CDGGSHYLG3RE2FKL && ")
    assert ("-A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment 'default/web:http -> 10.244.0.2:8080' "
            "-m statistic --mode random --probability 0.50000000000") in v.fix


def test_the_deleted_prerouting_jump_is_named(svc):
    _, m, k = svc
    k.no_rule.add(("svc-node-1", '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES'))
    w, v = traced(m, k, to_web(k))
    assert w.hops[v.lost_at].netns == "svc-node-1"
    assert ('`-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES` '
            "(the jump into kube-proxy's rules)") in v.reason
    assert v.fix == ("ip netns exec svc-node-1 iptables -t nat -I PREROUTING 1 -m comment --comment "
                     "'kubernetes service portals' -j KUBE-SERVICES")


def test_a_node_sending_to_a_service_enters_at_output(svc):
    _, m, k = svc
    k.no_rule.add(("svc-node-1", '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES'))
    w, v = traced(m, k, Flow("tcp", "192.168.122.2", WEB_IP, 40000, 80), src="svc-node-1")
    assert w.hops[v.lost_at].kind == "dnat" and \
        '`-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES`' in v.reason


def test_a_missing_node_port_rule_is_named_on_the_node_it_reached(svc):
    _, m, k = svc
    rule = '-A KUBE-NODEPORTS -p tcp -m comment --comment "default/web-np:http" -m tcp --dport 30080 -j KUBE-EXT-2262UYG6EQJDKK3I'
    k.no_rule.add(("svc-node-2", rule))
    w, v = traced(m, k, Flow("tcp", "203.0.113.10", "192.168.122.3", 40000, 30080), src="svc-example")
    lost = w.hops[v.lost_at]
    assert (lost.netns, lost.kind) == ("svc-node-2", "dnat") and f"`{rule}`" in v.reason
    assert "Service default/web-np:http's nodePort 30080 in KUBE-NODEPORTS" in v.reason
    assert "without it the packet stays addressed to node-2 itself, port 30080, where no socket listens" in v.reason
    assert "no interface owns" not in v.reason


def test_all_rules_in_place_but_no_dnat_keeps_the_plain_reason(svc):
    _, m, k = svc
    w, _ = traced(m, k, to_web(k))
    row = next(h for h in w.hops if h.kind == "dnat")
    assert row.netns == "svc-node-1" and not row.cause and "it was not DNATed here" in row.problem


# --- the rule that chose the endpoint ---------------------------------------------------------------------------

WEB_SVC = "KUBE-SVC-CDGGSHYLG3RE2FKL"
TO_WEB_1 = (f'-A {WEB_SVC} -m comment --comment "default/web:http -> 10.244.0.2:8080" -m statistic --mode random '
            "--probability 0.50000000000 -j KUBE-SEP-QA4PSDNF5R2OJOPA")
TO_WEB_2 = f'-A {WEB_SVC} -m comment --comment "default/web:http -> 10.244.1.2:8080" -j KUBE-SEP-UIQK3OSOSTRHRPBX'


def dnat_to(k, ep_ip: str):
    flow = Flow("tcp", CLIENT, WEB_IP, 40000, 80)
    k.ct["svc-node-1"] = [CtEntry(flow, Flow("tcp", ep_ip, CLIENT, 8080, 40000), "SYN_RECV")]
    return flow


def test_the_dnat_row_names_the_statistic_rule_and_its_probability(svc):
    _, m, k = svc
    k.counted[("svc-node-1", TO_WEB_1)] = 1  # the packet's own count: iptables-save -c before and after
    w = walk(k, m, "svc-client", dnat_to(k, "10.244.0.2"))
    row = next(h for h in w.hops if h.kind == "dnat")
    assert row.facts["endpoint"] == "web-1" and row.facts["rule"] == TO_WEB_1
    assert row.facts["probability"] == 0.5 and row.facts["chance"] == "1/2" and row.facts["rule_counted"] == 1
    assert f"{WEB_SVC} rule 1 of 2 chose it (--probability 0.5; 1/2 overall)" in row.decision
    assert f"`{TO_WEB_1}` (rule 1 of 2, taken with probability 0.5; 1 in 2 overall); its counter went up by 1" \
        in row.facts["chosen_by"]


def test_the_last_endpoint_is_chosen_by_the_unconditional_rule(svc):
    _, m, k = svc
    w = walk(k, m, "svc-client", dnat_to(k, "10.244.1.2"))
    row = next(h for h in w.hops if h.kind == "dnat")
    assert row.facts["rule"] == TO_WEB_2 and row.facts["probability"] == 1.0 and row.facts["chance"] == "1/2"
    assert "rule 2 of 2, no statistic match: it takes every packet the rules before it (--probability 0.5) let pass" \
        in row.facts["chosen_by"]


def test_three_endpoints_each_get_a_third_and_the_counter_decides():
    from netlab.trace.facts import NatRule, NatTable
    from netlab.trace.kubeproxy import choice
    from netlab.trace.labmap import ServiceEndpoint, ServiceFacts

    eps = tuple(ServiceEndpoint(f"10.0.0.{i}", 80, f"p{i}", f"KUBE-SEP-{i}") for i in range(3))
    svc = ServiceFacts("default/s", "10.96.0.9", 80, "tcp", "KUBE-SVC-S", endpoints=eps)
    lines = ["-A KUBE-SVC-S -m statistic --mode random --probability 0.33333333349 -j KUBE-SEP-0",
             "-A KUBE-SVC-S -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-1",
             "-A KUBE-SVC-S -j KUBE-SEP-2"]
    table = NatTable(frozenset({"KUBE-SVC-S"}), tuple(NatRule(line, 0, 0) for line in lines))
    got = [choice(table, svc, ep) for ep in eps]
    assert [str(c.chance) for c in got] == ["1/3", "1/3", "1/3"]
    assert [c.position for c in got] == [1, 2, 3] and got[1].probability == 0.5
    assert "taken with probability 0.5 once the rules before it (--probability 0.333333) let the packet pass" \
        in got[1].text()
    # sessionAffinity: a `recent --rcheck` rule that counted the packet chose it, not chance.
    sticky = "-A KUBE-SVC-S -m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-1 --mask 255.255.255.255 " \
             "--rsource -j KUBE-SEP-1"
    table = NatTable(table.chains, (NatRule(sticky, 5, 1),) + table.rules)
    c = choice(table, svc, eps[1])
    assert c.affinity and c.rule.line == sticky and "sessionAffinity ClientIP" in c.text()


# --- internet → NodePort: the endpoint's hop --------------------------------------------------------------------

def test_a_node_port_is_the_service_behind_it_and_its_endpoints_are_captured(svc):
    from netlab.trace.targets import capture_namespaces, resolve_source, resolve_target

    lab, _, _ = svc
    src = resolve_source(lab, "example")
    for spec in ("node-2", "192.168.122.3"):
        dst = resolve_target(lab, spec, None, 30080, src)
        assert (dst.kind, dst.name, dst.port, dst.proto, dst.service) == ("node", "node-2", 30080, "tcp", "web-np")
    ns = capture_namespaces(lab, src, dst)
    assert {"svc-web-1", "svc-web-2", "svc-gateway", "svc-node-2"} <= set(ns)
    plain = resolve_target(lab, "node-2", "tcp", 22, src)  # not a nodePort: the node itself
    assert plain.service is None and "svc-web-1" not in capture_namespaces(lab, src, plain)


def test_internet_to_node_port_follows_the_dnat_to_the_endpoint_on_the_other_node(svc):
    from netlab.trace.render import TraceResult, number, render_text

    _, m, k = svc
    flow = Flow("tcp", "203.0.113.10", "192.168.122.3", 40000, 30080)
    # node-2 DNATs to web-1 (node-1) and masquerades (KUBE-EXT marks it): the reply must come back through node-2.
    k.ct["svc-node-2"] = [CtEntry(flow, Flow("tcp", "10.244.0.2", "10.244.1.0", 8080, 20000), "SYN_SENT")]
    w, v = traced(m, k, flow, src="svc-example")
    assert w.outcome == "delivered" and w.end_netns == "svc-web-1" and v.delivered
    last = w.hops[-1]
    assert (last.netns, last.kind, last.seen) == ("svc-web-1", "deliver", True)
    assert [h.netns for h in w.hops if h.kind == "decap"] == ["svc-node-1"]  # across the overlay
    r = TraceResult(lab="svc", src={"name": "example", "ip": "203.0.113.10"},
                    dst={"name": "node-2", "ip": "192.168.122.3"}, proto="tcp", port=30080, marker="m",
                    forward=w, reply=None, verdict=v, reply_verdict=None, reply_received=True)
    number(r)
    text = render_text(r)
    assert ("result: delivered to web-1, endpoint of Service default/web-np:http (node-2:30080 DNATed to "
            "10.244.0.2:8080)") in text


# --- a pod to itself ---------------------------------------------------------------------------------------------

def _result(w, back, src, dst, proto="icmp", port=None):
    from netlab.trace.render import TraceResult, number

    r = TraceResult(lab="svc", src=src, dst=dst, proto=proto, port=port, marker="m", forward=w, reply=back,
                    verdict=explain(w), reply_verdict=explain(back) if back else None, reply_received=True,
                    reply_text="echo reply from 10.244.0.3 ttl 64")
    number(r)
    return r


def test_a_pod_to_its_own_address_is_delivered_through_lo(svc):
    from netlab.trace.render import render_text

    _, m, k = svc
    w = walk(k, m, "svc-client", Flow.icmp(None, CLIENT, 9))
    assert [(h.netns, h.device, h.kind) for h in w.hops] == [("svc-client", "lo", "deliver")]
    assert "loops it back through lo" in w.hops[0].decision
    o = w.hops[0].observe  # the capture sees it on lo: the row can be seen, not "-"
    assert (o.netns, o.ifname, o.direction, o.role) == ("svc-client", "lo", "in", "request")
    back = walk(k, m, w.end_netns, w.final.reversed(), role="reply", direction="reply")
    assert back.hops[0].observe.role == "reply" and back.hops[0].device == "lo"
    pod = {"name": "client", "ip": CLIENT, "netns": "svc-client"}
    text = render_text(_result(w, back, pod, pod))
    assert "\nreply :" not in text
    assert f"reply {CLIENT} → {CLIENT} icmp id 9" in text
    assert ("result: delivered to client (itself: 10.244.0.3 is its own address, so the kernel loops the packet "
            "back through lo and it never leaves svc-client); reply received") in text


def test_a_pod_to_its_own_service_comes_back_through_the_bridge_in_hairpin(svc):
    from dataclasses import replace

    from netlab.trace.render import render_text

    lab, m, k = svc
    web1 = "10.244.0.2"
    flow = Flow("tcp", web1, WEB_IP, 40000, 80)
    # DNAT to web-1 itself, and KUBE-SEP's `-s 10.244.0.2/32 -j KUBE-MARK-MASQ` masquerades it to cni0's address.
    k.ct["svc-node-1"] = [CtEntry(flow, Flow("tcp", web1, "10.244.0.1", 8080, 40000), "SYN_RECV")]
    w = walk(k, m, "svc-web-1", flow)
    assert w.outcome == "delivered" and w.end_netns == "svc-web-1"
    port = lab.pod("web-1").host_veth
    out = next(h for h in w.hops if h.kind == "bridge" and h.device == port)
    assert "(hairpin)" in out.decision and out.problem is None
    assert w.final == Flow("tcp", "10.244.0.1", web1, 40000, 8080)
    pod = {"name": "web-1", "ip": web1, "netns": "svc-web-1"}
    text = render_text(_result(w, None, pod, {"name": "svc/web", "ip": WEB_IP}, "tcp", 80))
    assert ("(itself, through the Service: node-1's bridge cni0 sent the frame back out the port it came in on, "
            f"{port} in hairpin mode, masqueraded to 10.244.0.1 so that the reply comes back through node-1 to "
            "be un-DNATed)") in text
    # Hairpin off on that port: the bridge drops the frame, and the trace says so.
    k._links["svc-node-1"][port] = replace(k._links["svc-node-1"][port], hairpin=False)
    w = walk(k, m, "svc-web-1", flow)
    assert w.outcome == "stopped" and "only sends a frame back out its ingress port in hairpin mode" \
        in w.hops[-1].problem


# --- on a terminal: wrapped to its width, with a legend ------------------------------------------------------------

def test_text_wraps_to_the_width_and_explains_the_status_column(svc):
    from netlab.trace.render import render_text

    _, m, k = svc
    k.no_rule.add(("svc-node-1", SERVICES_RULE))
    w, v = traced(m, k, to_web(k))
    pod = {"name": "client", "ip": CLIENT, "netns": "svc-client"}
    r = _result(w, None, pod, {"name": "svc/web", "ip": WEB_IP}, "tcp", 80)
    whole = render_text(r)
    assert max(len(line) for line in whole.splitlines()) > 200  # what a terminal got before
    for width in (80, 120):
        text = render_text(r, width=width)
        lines = text.splitlines()
        assert max(len(line) for line in lines) <= width, width
        # Nothing is lost: the words are the same, in the same order (commands cut with shell continuations).
        assert " ".join(text.replace(" \\\n", " ").split()) == " ".join(whole.split())
    # The "-" status (a NAT row: nothing a capture can see) is explained; so is "seen".
    assert "\nstatus:\n" in whole and "\n  -         nothing a capture can show: a decision the kernel takes" in whole
    assert "\n  seen      the capture saw the packet there" in whole and "NOT SEEN  that namespace" not in whole
    # A long decision continues under its own column when there is room for it.
    lines = render_text(r, width=120).splitlines()
    row = next(i for i, line in enumerate(lines) if "no DNAT for" in line)
    column = lines[row].index("no DNAT for")
    assert column > 40 and lines[row + 1][:column].strip() == "" and lines[row + 1][column] != " "


def test_a_nodes_own_service_connection_is_answered_from_the_cluster_ip_and_seen_arriving():
    """node-1 → web (OUTPUT DNAT to web-2, masqueraded into the overlay): the reply is un-SNATed in PREROUTING and
    un-DNATed in INPUT; the capture on flannel.1 sees it before both."""
    lab = lab_from((ROOT / "topologies/services.yaml").read_text())
    plan = build_plan(lab)
    m, k = LabMap.from_lab(lab, plan), FakeKernel(lab, plan)
    fwd = Flow("tcp", "192.168.122.2", WEB_IP, 40000, 80)
    k.ct["svc-node-1"] = [CtEntry(fwd, Flow("tcp", "10.244.1.2", "10.244.0.0", 8080, 50000), "SYN_SENT")]
    w = walk(k, m, "svc-node-1", fwd)
    assert w.outcome == "delivered" and w.end_netns == "svc-web-2"
    back = walk(k, m, "svc-web-2", w.final.reversed(), role="reply", direction="reply")
    assert back.outcome == "delivered" and back.end_netns == "svc-node-1"
    assert back.final == Flow("tcp", WEB_IP, "192.168.122.2", 80, 40000)  # what node-1's socket gets
    undo = next(h for h in back.hops if h.kind == "snat")
    assert undo.netns == "svc-node-1" and "un-DNAT" in undo.decision
    wire = Flow("tcp", "10.244.1.2", "10.244.0.0", 8080, 50000)
    last = back.hops[-1]
    assert (last.kind, last.device) == ("deliver", "flannel.1") and last.observe.flow == wire


def test_a_nodes_own_packet_dnated_in_output_names_the_device_it_leaves_by():
    """The first row of a node's own Service packet is nat OUTPUT's DNAT, before the packet is routed again by its
    new destination: it named device "-"; it names the device the kernel sends it out of, the next route row's
    (flannel.1 to web-2 on the other node, cni0 to web-1 on its own), in the rows and in the JSON."""
    lab = lab_from((ROOT / "topologies/services.yaml").read_text())
    plan = build_plan(lab)
    m, k = LabMap.from_lab(lab, plan), FakeKernel(lab, plan)
    fwd = Flow("tcp", "192.168.122.2", WEB_IP, 40000, 80)
    for ep, ep_src, dev in (("10.244.1.2", "10.244.0.0", "flannel.1"), ("10.244.0.2", "10.244.0.1", "cni0")):
        k.ct["svc-node-1"] = [CtEntry(fwd, Flow("tcp", ep, ep_src, 8080, 50000), "SYN_SENT")]
        w = walk(k, m, "svc-node-1", fwd)
        # row 1: the lookup that picked the source, by the ClusterIP (eth0: test_trace_node_service_source.py)
        first, route = w.hops[1], next(h for h in w.hops[2:] if h.kind == "route")
        assert (first.netns, first.kind, first.device) == ("svc-node-1", "dnat", dev), first
        assert (route.netns, route.device) == ("svc-node-1", dev) and first.to_json()["device"] == dev
        assert not any(h.device == "-" for h in w.hops)
    # Not DNATed (OUTPUT's jump deleted): it leaves as it was, by node-1's default route, eth0.
    k.ct.clear()
    k.no_rule.add(("svc-node-1", '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES'))
    w = walk(k, m, "svc-node-1", fwd)
    assert [(h.kind, h.device) for h in w.hops[:2]] == [("dnat", "eth0"), ("route", "eth0")]



def test_a_nodes_own_packet_dropped_in_output_names_the_device_route_get_picks():
    """A Service without endpoints: kube-proxy's REJECT drops the node's own packet in OUTPUT, before any route
    row; its row names the device `ip route get` picks for the ClusterIP (eth0, the default route), not "-"."""
    lab = lab_from("name: e\nnodes: [{name: n1}]\npods: [{name: p, node: n1}]\n"
                   "services: [{name: empty, selector: {app: none}, ports: [{port: 80}]}]\n")
    plan = build_plan(lab)
    m, k = LabMap.from_lab(lab, plan), FakeKernel(lab, plan)
    ip = next(s.ip for s in m.services if s.name.startswith("default/empty"))
    w = walk(k, m, "e-n1", Flow("tcp", str(lab.node("n1").ip), ip, 40000, 80))
    assert w.outcome == "stopped" and [h.kind for h in w.hops] == ["dnat"], w.hops
    assert w.hops[0].device == "eth0", w.hops[0]
