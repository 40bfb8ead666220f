"""The probe's DNS question and answer codec (probe/dnsq.py), checked against scapy's DNS dissector."""

from __future__ import annotations

import pytest
from scapy.layers.dns import DNS, DNSQR, DNSRR, DNSRRSOA

from netlab.probe import dnsq
from netlab.probe.tasks import Observation, Task
from netlab.probe.transports import payload, reply_fields

NAME = "kube-dns.kube-system.svc.cluster.local"


def test_the_query_is_what_a_stub_resolver_sends():
    msg = DNS(dnsq.query(0x1_2345, NAME))  # the id is the task's, cut to 16 bits
    assert (msg.id, msg.qr, msg.rd, msg.opcode, msg.qdcount, msg.ancount) == (0x2345, 0, 1, 0, 1, 0)
    assert (msg.qd[0].qname, msg.qd[0].qtype, msg.qd[0].qclass) == (NAME.encode() + b".", 1, 1)
    assert dnsq.query(7, NAME + ".") == dnsq.query(7, NAME)  # a trailing dot is the same name


def response(ident: int, **fields) -> bytes:
    return bytes(DNS(id=ident, qr=1, aa=1, rd=1, qd=[DNSQR(qname=NAME, qtype="A")], **fields))


def test_an_answer_gives_its_rcode_and_a_records():
    two = response(9, an=[DNSRR(rrname=NAME, type="A", ttl=30, rdata="10.96.0.10"),
                          DNSRR(rrname=NAME, type="TXT", ttl=30, rdata="x"),
                          DNSRR(rrname=NAME, type="A", ttl=30, rdata="10.96.0.11")])
    assert dnsq.answer(two, 9) == {"rcode": "NOERROR", "a": ["10.96.0.10", "10.96.0.11"]}
    # as dnsmasq words it: the answer's name a compression pointer to the question's
    packed = bytearray(response(9))
    packed[7] = 1  # ANCOUNT 1
    packed += b"\xc0\x0c" + bytes.fromhex("0001 0001 0000001e 0004") + bytes([10, 96, 0, 10])
    assert DNS(bytes(packed)).an[0].rdata == "10.96.0.10"  # scapy reads it so too
    assert dnsq.answer(bytes(packed), 9) == {"rcode": "NOERROR", "a": ["10.96.0.10"]}
    nx = response(9, rcode=3, ns=[DNSRRSOA(rrname="cluster.local", mname="ns.dns.cluster.local",
                                            rname="hostmaster.cluster.local", minimum=30)])
    assert dnsq.answer(nx, 9) == {"rcode": "NXDOMAIN", "a": []}
    assert dnsq.describe(dnsq.answer(two, 9)) == "NOERROR, A 10.96.0.10 10.96.0.11"
    assert dnsq.describe({"rcode": "NXDOMAIN", "a": []}) == "NXDOMAIN"


@pytest.mark.parametrize("data", [
    pytest.param(response(8), id="another-id"),
    pytest.param(dnsq.query(9, NAME), id="a-query"),
    pytest.param(response(9, an=[DNSRR(rrname=NAME, type="A", rdata="10.96.0.10")])[:-2], id="cut-short"),
    pytest.param(b'{"pod": "web-1", "client": "10.244.0.3:5"}\n', id="an-echo-line"),
    pytest.param(b"\x00\x09", id="no-header"),
])
def test_anything_but_the_answer_to_this_query_is_none(data):
    assert dnsq.answer(data, 9) is None


def test_a_udp_probe_sends_its_question_and_takes_only_its_answer():
    asks = Task(id=9, src="x-a", dst="10.244.0.4", proto="udp", port=53, question=NAME)
    plain = Task(id=9, src="x-a", dst="10.244.0.2", proto="udp", port=8080)
    assert payload(asks) == dnsq.query(9, NAME) and payload(plain) == b"netlab probe 9\n"
    assert payload(asks, stream=True) == dnsq.over_tcp(dnsq.query(9, NAME))  # TCP: the length first
    obs = Observation(outcome="reply")
    assert not reply_fields(obs, asks, response(8))  # not its answer: the probe waits on
    assert reply_fields(obs, asks, response(9, an=[DNSRR(rrname=NAME, type="A", rdata="10.96.0.10")]))
    assert obs.dns == {"rcode": "NOERROR", "a": ["10.96.0.10"]} and obs.answered_by is None
    echo = Observation(outcome="reply")
    assert reply_fields(echo, plain, b'{"pod": "web-1", "client": "10.244.0.3:5", "server": "10.244.0.2:8080"}\n')
    assert echo.answered_by == "web-1" and echo.dns is None


def test_the_report_counts_the_answers_and_its_json_holds_the_question_and_answer():
    from netlab.api import jsonio, results as R
    from netlab.model.lab import resolve
    from netlab.model.topology import Topology
    from netlab.probe import report as render
    from netlab.probe.judge import Report, Result, judge
    from netlab.probe.matrix import build_matrix

    topo = {"name": "dq", "nodes": [{"name": "n1"}], "pods": [{"name": "web", "node": "n1", "labels": {"a": "b"}}],
            "services": [{"name": "web", "selector": {"a": "b"}, "ports": [{"port": 80, "targetPort": 8080}]}]}
    lab = resolve(Topology.model_validate(topo))
    asks = [p for p in build_matrix(lab, protos=["udp"]) if p.question is not None]
    assert [(p.source.name, p.destination.name) for p in asks] == [("web", "kube-dns"), ("n1", "kube-dns")]
    good, bad = ({"rcode": "NOERROR", "a": ["10.96.0.10"]}, {"rcode": "SERVFAIL", "a": []})
    results = [Result(p, o, 1.0, judge(p, o, 1.0, None))
               for p, o in zip(asks, [Observation(outcome="reply", dns=good), Observation(outcome="reply", dns=bad)])]
    report = Report("dq", 1.0, results, [])
    assert ("cluster DNS: 1/2 answers to A kube-dns.kube-system.svc.cluster.local gave its ClusterIP 10.96.0.10 "
            "(probes of kube-dns's port 53, UDP and TCP, ask it a real question, as a pod's resolver does)") in \
        render.text(report).splitlines()
    data = render.to_json(report)
    assert data["probes"][1]["dns"] == {"question": "A kube-dns.kube-system.svc.cluster.local",
                                        "expected_a": "10.96.0.10", "answer": bad}
    api = jsonio.from_json(R.ProbeReport, data)
    assert api.probes[0].dns == R.ProbedDns("A kube-dns.kube-system.svc.cluster.local", "10.96.0.10",
                                            R.DnsAnswer("NOERROR", ("10.96.0.10",)))


def test_over_tcp_a_message_has_its_length_first_and_is_whole_only_when_all_of_it_came():
    q = dnsq.query(9, NAME)
    framed = dnsq.over_tcp(q)
    assert framed[:2] == len(q).to_bytes(2, "big") and framed[2:] == q
    whole = dnsq.over_tcp(response(9, an=[DNSRR(rrname=NAME, type="A", rdata="10.96.0.10")]))
    assert dnsq.from_tcp(whole[:1]) is None and dnsq.from_tcp(whole[:-1]) is None  # not all of it yet
    assert dnsq.answer(dnsq.from_tcp(whole + b"next"), 9) == {"rcode": "NOERROR", "a": ["10.96.0.10"]}
