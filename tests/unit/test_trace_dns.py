"""A trace to port 53 asks a real DNS question (no root): the query carries the marker, the answer is read back."""

from __future__ import annotations

from pathlib import Path

import pytest

from netlab.trace import dns
from netlab.trace.decode import classify, decode
from netlab.trace.facts import CtEntry
from netlab.trace.flow import Flow
from netlab.trace.verdict import explain, mark_seen
from netlab.trace.walk import walk
from test_trace_service_paths import svc  # noqa: F401  (the fixture)
from test_trace_walk import _seen_everywhere

scapy = pytest.importorskip("scapy")
from scapy.layers.dns import DNS, DNSQR, DNSRR  # noqa: E402
from scapy.layers.inet import IP, UDP  # noqa: E402
from scapy.layers.l2 import Ether  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MARK = b"netlab-trace 0badcafe"


def test_the_query_asks_for_the_name_and_carries_the_marker():
    ident, raw = dns.query("web.default.svc.cluster.local", MARK, ident=0x1234)
    msg = DNS(raw)
    assert ident == 0x1234 and msg.id == 0x1234 and msg.rd == 1 and msg.qr == 0
    assert msg.qd[0].qname == b"web.default.svc.cluster.local." and msg.qd[0].qtype == 1
    opt = msg.ar[0]
    assert opt.type == 41 and opt.rdata[0].optcode == dns.MARKER_OPTION and opt.rdata[0].optdata == MARK
    # The capture knows it for the trace's own packet, as it does any marked datagram.
    frame = bytes(Ether() / IP(src="10.244.0.3", dst="10.96.0.10") / UDP(sport=40000, dport=53) / raw)
    p = classify(decode(frame), "ns", "eth0", "out", 0.0, MARK, set())
    assert p is not None and p.role == "request" and p.flow == Flow("udp", "10.244.0.3", "10.96.0.10", 40000, 53)


def test_the_answer_is_read_back():
    reply = DNS(id=7, qr=1, aa=1, rd=1, ra=1, qd=[DNSQR(qname="web.default.svc.cluster.local")],
                an=[DNSRR(rrname="web.default.svc.cluster.local", type="A", rdata="10.96.0.20", ttl=0)])
    ans = dns.answer(bytes(reply), 7)
    assert ans["rcode"] == "NOERROR" and ans["question"] == "web.default.svc.cluster.local."
    assert ans["answers"] == [{"name": "web.default.svc.cluster.local.", "type": "A", "data": "10.96.0.20", "ttl": 0}]
    assert dns.text(ans) == "DNS answer: web.default.svc.cluster.local. A 10.96.0.20 (NOERROR)"
    nx = dns.answer(bytes(DNS(id=8, qr=1, rcode=3, qd=[DNSQR(qname="nope.default.svc.cluster.local")])), 8)
    assert dns.text(nx) == "DNS answer: no records for nope.default.svc.cluster.local. (NXDOMAIN)"
    assert dns.text(dns.answer(bytes(reply), 9)) == "DNS: not an answer to the query (id 7, the query's is 9)"
    assert dns.answer(b"\x01")["error"].startswith("not a DNS message")
    assert dns.answer(b"\x00\x07\x80\x00\x00\x01" + b"\x00" * 6 + b"\xff")["error"].startswith("not a DNS message (")
    # A UDP server on port 53 that is not DNS (netlab's echo server): it answers anything, the flow worked; the
    # line is no DNS response (QR bit 0), not a DNS server's wrong answer (QA q25 #2: "DNS: not an answer to the
    # query (id 31522, ...)", b'{"' read as the id).
    echo = b'{"pod": "web-1", "client": "10.244.0.2:41000", "server": "10.244.1.2:5353"}\n'
    for ident in (None, 5):
        ans = dns.answer(echo, ident)
        assert ans["not_dns"] and "rcode" not in ans
        assert dns.text(ans) == ("not a DNS message: the server behind it answers anything, as the lab's echo server "
                                 f"does: {echo.decode()[:60]!r}...")


def test_the_question_is_the_services_own_name(svc):  # noqa: F811
    lab, _, _ = svc
    assert dns.question_name(lab, "web") == "web.default.svc.cluster.local"
    assert dns.question_name(lab, "kube-dns") == "kube-dns.kube-system.svc.cluster.local"
    assert dns.question_name(lab, None) == "kube-dns.kube-system.svc.cluster.local"  # to a pod or node: port 53


def test_a_same_node_endpoints_reply_is_un_dnated_on_the_bridge(svc):  # noqa: F811
    """kube-dns answers the client straight (same cni0): br_netfilter turns its source back into the ClusterIP."""
    _, m, k = svc
    query = Flow("udp", "10.244.0.3", "10.96.0.10", 40000, 53)
    k.ct["svc-node-1"] = [CtEntry(query, Flow("udp", "10.244.0.4", "10.244.0.3", 53, 40000))]
    w = walk(k, m, "svc-client", query)
    assert w.outcome == "delivered" and w.end_netns == "svc-kube-dns"
    back = walk(k, m, w.end_netns, w.final.reversed(), role="reply", direction="reply")
    assert back.outcome == "delivered" and back.end_netns == "svc-client"
    undo = next(h for h in back.hops if h.kind == "snat")
    assert undo.netns == "svc-node-1" and "un-DNAT" in undo.decision and "on the bridge" in undo.decision
    assert back.final == Flow("udp", "10.96.0.10", "10.244.0.3", 53, 40000)
    out = back.hops[back.hops.index(undo) + 1]  # the client's port sees the translated packet
    assert out.kind == "bridge" and out.observe.flow == back.final
    mark_seen(back.hops, _seen_everywhere(back, "reply"), {h.netns for h in back.hops})
    assert explain(back).delivered


def test_a_users_kube_dns_of_another_namespace_is_not_the_cluster_dns():
    """A trace to port 53 of a pod or node asks for the cluster DNS Service's name, kube-system's, even when the
    user's default/kube-dns comes first; a trace to the user's asks for its own name."""
    import yaml

    from netlab.breaks.symptoms import dns_target
    from netlab.model.lab import resolve
    from netlab.model.topology import Topology

    lab = resolve(Topology.model_validate(yaml.safe_load(
        "name: d\nnodes: [{name: n1}]\npods: [{name: a, node: n1, labels: {app: a}}]\n"
        "services: [{name: kube-dns, selector: {app: a}, ports: [{port: 53, protocol: UDP}]}]\n")))
    assert dns.question_name(lab, None) == "kube-dns.kube-system.svc.cluster.local"
    assert dns.question_name(lab, "default/kube-dns") == "kube-dns.default.svc.cluster.local"
    assert dns.question_name(lab, "kube-system/kube-dns") == "kube-dns.kube-system.svc.cluster.local"
    assert dns_target(lab) == "svc/kube-system/kube-dns"  # break's traces: svc/kube-dns would be default's
