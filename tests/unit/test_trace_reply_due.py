"""A trace's verdict when no reply came back, and its temporary listener on an internet host (no root).

A reply lost on the way back fails the trace (exit 1) as a lost request does: the user's connection fails as
surely. Only a UDP datagram to a port nothing of netlab's answers may go unanswered by design.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.trace import run as trun
from netlab.trace.flow import Flow
from netlab.trace.render import TraceResult, number, render_text
from netlab.trace.targets import Endpoint
from netlab.trace.verdict import Verdict, explain
from test_trace_walk import ping, world  # noqa: F401  (the fixture)

SERVICES = str(Path(__file__).resolve().parents[2] / "topologies" / "services.yaml")


def result(w, reply_verdict, proto="udp", port=53, received=False, expected=True):
    r = TraceResult(lab="demo", src={"name": "fedora-1", "ip": "10.244.0.2"},
                    dst={"name": "fedora-2", "ip": "10.244.1.3"}, proto=proto, port=port, marker="m", forward=w,
                    reply=w, verdict=explain(w), reply_verdict=reply_verdict, reply_received=received,
                    reply_expected=expected)
    number(r)
    return r


def test_a_reply_lost_on_the_way_back_fails_the_trace(world):  # noqa: F811
    _lab, m, k = world
    w = ping(k, m)
    lost = Verdict(False, 2, "bridged without iptables: the reply keeps source 10.244.1.3")
    r = result(w, lost)
    assert r.verdict.delivered and r.reply_lost and not r.ok  # the CLI exits 1
    assert r.to_json()["ok"] is False and r.to_json()["delivered"] is True
    assert "NO REPLY (lost at hop " in render_text(r)
    # also where no reply was due: it was sent, and lost
    assert not result(w, lost, expected=False).ok


def test_no_reply_sent_fails_only_where_one_was_due(world):  # noqa: F811
    _lab, m, k = world
    w = ping(k, m)
    silent = Verdict(False, 0, "fedora-2 sent no reply", never_sent=True)
    assert not result(w, silent, proto="tcp", port=8080).ok  # the kernel answers every SYN
    assert not result(w, silent, expected=True).ok  # a DNS query, an echo port
    quiet = result(w, silent, port=9000, expected=False)  # a UDP program may take a datagram and say nothing
    assert quiet.ok and not quiet.reply_lost and quiet.to_json()["reply_expected"] is False


def test_a_reply_received_or_a_refusal_is_no_lost_reply(world):  # noqa: F811
    _lab, m, k = world
    w = ping(k, m)
    assert result(w, Verdict(True, None, None), received=True).ok
    r = result(w, Verdict(False, 0, "an ICMP port unreachable instead", never_sent=True))
    r.refused = "nothing is bound to udp port 53"
    assert not r.reply_lost and not r.ok  # failed for its refusal, said once


def test_which_udp_datagrams_expect_a_reply():
    lab = resolve(load_topology(SERVICES))
    web = next(p for p in lab.pods if p.name == "web-1")
    host = lab.internet_hosts[0][1]
    at = Flow("udp", "10.244.0.5", "10.244.0.2", 40000, 8080)
    assert trun.reply_expected(lab, "tcp", False, None, None)  # a SYN, an echo request: the kernel answers
    assert trun.reply_expected(lab, "icmp", False, None, None)
    assert trun.reply_expected(lab, "udp", True, None, None)  # a DNS query
    assert trun.reply_expected(lab, "udp", False, web.netns, at)  # the echo server's UDP twin of 8080
    assert not trun.reply_expected(lab, "udp", False, web.netns, at.with_dst("10.244.0.2", 9999))
    assert trun.reply_expected(lab, "udp", False, host, at.with_dst("203.0.113.10", 9999))  # its listener
    node = lab.nodes[0].netns
    assert not trun.reply_expected(lab, "udp", False, node, at.with_dst(str(lab.nodes[0].ip), 8080))


def test_a_trace_to_an_internet_host_runs_the_probes_listener_on_its_port(monkeypatch):
    started = []

    class Heard:
        already: list[str] = []
        errors: dict[str, str] = {}

    @contextlib.contextmanager
    def start(hosts, port, lifetime):
        started.append((hosts, port))
        yield Heard()
        started.append("stopped")

    monkeypatch.setattr(trun.listeners, "start", start)
    host = Endpoint("example", "internet", "203.0.113.10", "lab-example", port=8080)
    with contextlib.ExitStack() as stack:
        said = trun._listen(stack, host, "tcp", 8080, 1.0)
        assert started == [([("example", "lab-example")], 8080)]
    assert started[-1] == "stopped"
    assert said and "netlab's echo server listened on 8080 (TCP and UDP) there for this trace only" in said
    with contextlib.ExitStack() as stack:  # a ping, a pod: nothing started
        assert trun._listen(stack, host, "icmp", None, 1.0) is None
        assert trun._listen(stack, Endpoint("web-1", "pod", "10.244.0.2", "ns", port=8080), "tcp", 8080, 1.0) is None
    assert len(started) == 2
    Heard.already = ["example"]  # something of the user's listens there already: it answers, nothing to say
    with contextlib.ExitStack() as stack:
        assert trun._listen(stack, host, "udp", 8080, 1.0) is None
