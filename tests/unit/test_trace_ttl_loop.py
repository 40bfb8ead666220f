"""A packet that comes back to where it was, as it was, goes round a loop: trace says so once, with where its TTL
runs out and who sends the ICMP time exceeded, and stops there (no root; both modes).

An outside client's packet to a LoadBalancer IP that its node does not DNAT (iptables: KUBE-PROXY-FIREWALL's DROP
deleted; nftables: the balancer's service-ips element deleted; either mode: a port the Service does not have) goes
back out to the internet's gateway, whose route sends it to the node again, round and round. Measured (tcpdump on
both ends, TTL 64 from the client): the gateway forwards it with TTL 63, n1 with 62, ..., n1 gets it with TTL 1 and
sends the ICMP time exceeded from 192.168.122.2; from a client with TTL 63 the gateway gets TTL 1 and sends it from
203.0.113.1. trace walked the loop to its step limit (118 rows, "more than 64 steps: a routing loop?"), and the
node's row ended "the way kube-proxy's rule spares it" (a packet that came that way already).
"""

from __future__ import annotations

import pytest

from netlab.trace.flow import Flow
from test_trace_lb_firewall import N1, build, planned
from test_trace_service_paths import traced

OUTSIDE, INSIDE = "203.0.113.50", "203.0.113.10"


def walk_from(m, k, src: str, port: int = 80):
    host = "outside" if src == OUTSIDE else "inside"
    return traced(m, k, Flow("tcp", src, "203.0.113.100", 40000, port), src=f"fw-{host}")


def sysctls(k, values: dict[tuple[str, str], str]) -> None:
    """The fake kernel answers these sysctls (namespace, key); others are not there."""
    k.sysctl = lambda ns, key: values.get((ns, key))


def the_loop(w):
    """The walk ended at its loop row, its last, and went round once: n1's and the gateway's forwarding rows are
    there at most twice (once on the way in, once round)."""
    assert w.outcome == "loop", (w.outcome, w.reason)
    last = w.hops[-1]
    assert last.kind == "loop" and last.problem, [(h.netns, h.kind) for h in w.hops]
    assert len(w.hops) < 25, len(w.hops)
    forwarded = [h.netns for h in w.hops if h.kind == "route" and h.facts.get("iif")]
    assert forwarded.count(N1) == 1 and forwarded.count("fw-gateway") == 2, forwarded
    assert "more than" not in (w.reason or "")
    return last


def test_iptables_without_the_firewalls_drop_the_loop_is_said_once_and_n1_sends_the_time_exceeded():
    _, m, k = build("iptables")
    (drop,) = planned(k, "filter", "-A KUBE-PROXY-FIREWALL ")
    k.no_rule.add((N1, drop))
    w, v = walk_from(m, k, OUTSIDE)
    loop = the_loop(w)
    assert (loop.netns, loop.device) == (N1, "eth0"), (loop.netns, loop.device)
    assert loop.facts["sent_ttl"] == 64 and loop.facts["ttl_expires"] == N1, loop.facts
    assert loop.facts["time_exceeded_from"] == "192.168.122.2" and loop.facts["loop"] == [N1, "fw-gateway"]
    assert "with TTL 1" in loop.problem and "ICMP time exceeded" in loop.problem, loop.problem
    assert "from 192.168.122.2" in loop.problem and f"to {OUTSIDE}" in loop.problem, loop.problem
    (row,) = [h for h in w.hops if h.netns == N1 and h.kind == "dnat"]  # said once, not once a lap
    assert w.hops[v.lost_at] is row and row.facts["missing_rule"] == drop, v.reason
    assert "spares it" not in row.problem, row.problem
    assert "back out to the internet's gateway it came in from" in row.problem, row.problem
    assert v.reason.count("ICMP time exceeded") == 1 and f"was lost in {N1} eth0: " in v.reason, v.reason


@pytest.mark.parametrize("inbound", [None, "1"])
def test_a_client_that_sends_with_ttl_63_has_it_run_out_at_the_gateway(inbound):
    """The gateway forwards it once before the loop (inet0 to eth0), then n1 and the gateway once a lap: the 63rd
    router is the gateway, which answers from its route back to the client (inet0's 203.0.113.1), or with
    net.ipv4.icmp_errors_use_inbound_ifaddr = 1 from eth0's address, the device the packet came in by."""
    _, m, k = build("iptables")
    (drop,) = planned(k, "filter", "-A KUBE-PROXY-FIREWALL ")
    k.no_rule.add((N1, drop))
    values = {("fw-outside", "net.ipv4.ip_default_ttl"): "63"}
    if inbound:
        values[("fw-gateway", "net.ipv4.icmp_errors_use_inbound_ifaddr")] = inbound
    sysctls(k, values)
    w, _ = walk_from(m, k, OUTSIDE)
    loop = the_loop(w)
    assert (loop.netns, loop.device) == ("fw-gateway", "eth0") and loop.facts["sent_ttl"] == 63, loop.facts
    want = "192.168.122.1" if inbound else "203.0.113.1"
    assert loop.facts["time_exceeded_from"] == want, loop.facts
    assert ("icmp_errors_use_inbound_ifaddr = 1" in loop.problem) == bool(inbound), loop.problem


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_a_port_the_service_does_not_have_loops_and_the_loop_is_why(mode):
    """Port 81 of the balancer's IP: no rule of kube-proxy's takes it (no fault of the lab's), n1 routes it back to
    the gateway: the loop is where and why it is lost, with no fix."""
    _, m, k = build(mode)
    w, v = walk_from(m, k, INSIDE, port=81)
    loop = the_loop(w)
    assert w.hops[v.lost_at] is loop and v.fix is None, v.reason
    assert v.reason == loop.problem and loop.facts["time_exceeded_from"] == "192.168.122.2", v.reason


def test_nftables_without_the_balancers_service_ips_element_the_loop_ends_the_walk():
    _, m, k = build("nftables")
    table = k.nft_table(N1)
    (element,) = [line for line in table.listing if line.startswith("element service-ips 203.0.113.100 ")]
    k.gone.add((N1, element))
    w, v = walk_from(m, k, INSIDE)
    loop = the_loop(w)
    assert loop.netns == N1 and loop.facts["time_exceeded_from"] == "192.168.122.2", loop.facts
    (row,) = [h for h in w.hops if h.netns == N1 and h.kind == "dnat"]
    assert w.hops[v.lost_at] is row and row.facts["missing_rule"] == element, v.reason
    assert "spares it" not in row.problem and "back out to the internet's gateway it came in from" in row.problem
    assert v.fix is not None and "service-ips" in v.fix, v.fix
