"""A same-node endpoint's reply bridged past iptables (bridge-nf-call-iptables = 0) reaches the client un-DNATed:
the trace says what the client's kernel really does with it (QA: it said the client "drops" it, while tcpdump in
the client shows its kernel answering the SYN-ACK with a reset, which aborts the endpoint's half-open connection;
the client's own SYN times out). With a fake kernel (no root); the capture's frames are made by hand.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from netlab.plan.build import build_plan
from netlab.trace import unnatreply
from netlab.trace.facts import CtEntry
from netlab.trace.flow import Flow, Packet
from netlab.trace.labmap import LabMap
from netlab.trace.verdict import explain
from netlab.trace.walk import walk
from test_trace_walk import FakeKernel, lab_from

ROOT = Path(__file__).resolve().parents[2]
CLIENT, WEB_IP, WEB_1 = "10.244.0.3", "10.96.0.20", "10.244.0.2"


@pytest.fixture
def svc():
    lab = lab_from((ROOT / "topologies/services.yaml").read_text())
    plan = build_plan(lab)
    k = FakeKernel(lab, plan)
    k.bridge_nf = lambda netns: netns != "svc-node-1"
    return lab, LabMap.from_lab(lab, plan), k


def _reply(k, m, proto: str, port: int, endpoint: str):
    """The reply of client → Service DNATed on node-1 to ``endpoint`` (web-1, on node-1 too), as the walk makes it."""
    svc_ip = WEB_IP if proto == "tcp" else "10.96.0.10"
    fwd = Flow(proto, CLIENT, svc_ip, 61106, port)
    dnat = Flow(proto, endpoint, CLIENT, 8080 if proto == "tcp" else 53, 61106)
    k.ct["svc-node-1"] = [CtEntry(fwd, dnat, "SYN_SENT" if proto == "tcp" else "")]
    return walk(k, m, "svc-web-1", dnat, role="reply", direction="reply"), dnat


@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_the_unnated_reply_row_says_what_the_clients_kernel_answers_not_that_it_drops_it(svc, proto):
    _lab, m, k = svc
    back, _ = _reply(k, m, proto, 80 if proto == "tcp" else 53, WEB_1)
    assert back.outcome == "delivered" and back.end_netns == "svc-client", back
    [row] = [h for h in back.hops if h.problem and "bridge-nf-call-iptables = 0" in h.problem]
    assert "drops it" not in row.problem and "talks to" not in row.problem
    if proto == "tcp":
        assert (f"the client's kernel has no connection from {WEB_1}:8080 (its connection is to {WEB_IP}:80), so it "
                "answers this SYN-ACK with a reset (TCP RST), which aborts web-1's half-open connection; the "
                f"client's own SYN to {WEB_IP}:80 is never answered and its connect times out") in row.problem
        assert row.facts["stray_reply"] == "reset"
    else:
        assert (f"has no socket for a datagram from {WEB_1}:53 (its socket is connected to 10.96.0.10:53), so it "
                "answers it with an ICMP port unreachable") in row.problem
        assert row.facts["stray_reply"] == "port unreachable"
    v = explain(back)
    assert not v.delivered and back.hops[v.lost_at] is row
    assert "where no endpoint is" not in v.reason, v.reason
    what = "a reset" if proto == "tcp" else "an ICMP port unreachable"
    assert v.reason.endswith(f"(it went on as it was and reached svc-client, whose kernel answered it with {what})")


def _frame(netns, direction, flow, flags=None, role="reply", quoted=None, ts=1.0, summary="IP x > y: Flags [R]"):
    return Packet(netns, "eth0", direction, ts, flow, role, summary=summary, tcp_flags=flags, quoted=quoted)


def test_the_captured_reset_is_quoted_as_the_evidence(svc):
    _lab, m, k = svc
    back, arrived = _reply(k, m, "tcp", 80, WEB_1)
    rst = arrived.reversed()
    frames = [
        _frame("svc-client", "in", arrived, 0x12, summary="IP 10.244.0.2.8080 > 10.244.0.3.61106: Flags [S.]"),
        _frame("svc-node-1", "in", rst, 0x04, ts=0.5),  # another namespace: not the client's kernel's answer
        _frame("svc-client", "out", rst, 0x10, ts=0.6),  # an ACK, no reset
        _frame("svc-client", "out", rst, 0x04, ts=2.0, summary="IP 10.244.0.3.61106 > 10.244.0.2.8080: Flags [R], "
                                                                "seq 7, win 0, length 0"),
    ]
    assert unnatreply.client_answer(frames, "svc-client", arrived) is frames[3]
    unnatreply.note_answers(back.hops, frames, "svc-client", back.final)
    v = explain(back)
    assert v.reason.endswith("whose kernel answered it with a reset; captured leaving svc-client eth0: IP "
                             "10.244.0.3.61106 > 10.244.0.2.8080: Flags [R], seq 7, win 0, length 0)"), v.reason


def test_the_captured_port_unreachable_is_quoted_for_udp(svc):
    _lab, m, k = svc
    back, arrived = _reply(k, m, "udp", 53, WEB_1)
    err = Flow("icmp", CLIENT, WEB_1, 0, 0)
    frames = [_frame("svc-client", "out", err, role="error", quoted=Flow("udp", WEB_1, CLIENT, 53, 9999)),  # another
              _frame("svc-client", "out", err, role="error", quoted=arrived, summary="IP 10.244.0.3 > 10.244.0.2: "
                     "ICMP 10.244.0.3 udp port 61106 unreachable")]
    assert unnatreply.client_answer(frames, "svc-client", arrived) is frames[1]
    unnatreply.note_answers(back.hops, frames, "svc-client", back.final)
    assert explain(back).reason.endswith("an ICMP port unreachable; captured leaving svc-client eth0: IP 10.244.0.3 > "
                                         "10.244.0.2: ICMP 10.244.0.3 udp port 61106 unreachable)")


def test_no_answer_captured_claims_none():
    arrived = Flow("tcp", WEB_1, CLIENT, 8080, 61106)
    assert unnatreply.client_answer([], "svc-client", arrived) is None
    assert unnatreply.verdict_end("c", "reset", None) == " and reached c, whose kernel answered it with a reset"
    assert unnatreply.verdict_end("c", None, None) == " and reached c, which ignored it"
    assert unnatreply.client_words(Flow.icmp(WEB_1, CLIENT, 5), Flow.icmp(WEB_IP, CLIENT, 5)) == \
        f"the client, which talks to {WEB_IP}, ignores it"
