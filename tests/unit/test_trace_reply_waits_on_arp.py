"""A reply no capture saw because its sender's kernel holds it for an ARP answer that never comes is said so
(trace/verdict.reply_waits_on_arp), not "sent no reply": a CNI pod whose eth0 prefix covers the address its reply
goes to asks for it on its link. The root test: tests/integration/test_cni_wide_prefix.py."""

from __future__ import annotations

from test_trace_walk import world  # noqa: F401  (the fixture)

from netlab.trace.flow import Flow
from netlab.trace.verdict import reply_waits_on_arp
from netlab.trace.walk import walk


def _reply(k, m, state):
    k.no_neigh[("demo-fedora-1", "eth0", "10.244.0.3")] = state
    return walk(k, m, "demo-fedora-1", Flow("tcp", "10.244.0.2", "10.244.0.3", 8080, 40000), role="reply",
                direction="reply")


def test_a_reply_held_by_an_unanswered_arp_request_names_it_and_the_on_link_route(world):  # noqa: F811
    _, m, k = world
    back = _reply(k, m, "INCOMPLETE")
    v = reply_waits_on_arp(back, "pod fedora-1")
    assert v is not None and not v.delivered and back.hops[v.lost_at].kind == "neigh"
    assert v.reason.startswith("pod fedora-1 answered, but its reply waits on ARP for 10.244.0.3: no ARP answer for "
                               "10.244.0.3 on eth0 (INCOMPLETE)"), v.reason
    assert "its route `10.244.0.0/24 dev eth0` puts 10.244.0.3 on eth0's link, so it asks for it there" in v.reason


def test_no_entry_at_all_is_no_arp_the_reply_waits_on(world):  # noqa: F811
    _, m, k = world
    assert reply_waits_on_arp(_reply(k, m, None), "pod fedora-1") is None  # the kernel never asked: no reply made
    assert reply_waits_on_arp(_reply(k, m, "REACHABLE"), "pod fedora-1") is None
