"""trace's account of a packet that goes round a loop, and of a drop in kube-proxy's firewall-check, against the
real packets: curl, tcpdump and nft's counter (root; iptables and nftables modes).

A LoadBalancer IP its node does not DNAT for a client (iptables: KUBE-PROXY-FIREWALL's DROP deleted, an outside
source; nftables: the balancer's service-ips element deleted, an allowed source; either mode: a port the Service
does not have) goes back out to the internet's gateway, whose route sends it to the node again: curl exits 7 on
the ICMP time exceeded that comes back. trace walked the loop to its step limit (hundreds of lines, "more than 64
steps: a routing loop?") and the node's row ended "the way kube-proxy's rule spares it". It now says the loop
once, and where the TTL runs out: with the client's TTL 64 the node gets it with TTL 1 and sends the time exceeded
from its route's source (192.168.122.2), with TTL 63 the gateway does (from 203.0.113.1), as tcpdump sees.

nftables mode, firewall-check's own rule replaced by a drop: the kernel drops every new connection there (curl
times out, from inside the ranges too); trace said only "not DNATed here".
"""

from __future__ import annotations

import re
import subprocess

import pytest

from helpers import as_planned, in_netns, lab_up, netlab, traced, unique_lab, write_topology
from test_trace_kernel_ways_live import tcpdump

pytestmark = pytest.mark.root

TOPOLOGY = """name: {lab}
cluster: {{kubeProxyMode: {mode}}}
nodes: [{{name: n1}}]
pods:
  - {{name: web, node: n1, labels: {{app: web}}}}
services:
  - name: lb
    selector: {{app: web}}
    type: LoadBalancer
    loadBalancerIP: 203.0.113.100
    loadBalancerSourceRanges: [203.0.113.8/30]
    ports: [{{port: 80, targetPort: 8080}}]
internet:
  cidr: 203.0.113.0/24
  gateway: {{ip: 203.0.113.1}}
  hosts: [{{name: outside, ip: 203.0.113.50}}, {{name: inside, ip: 203.0.113.10}}]
"""
EXCEEDED = re.compile(r"IP (\S+) > (\S+): ICMP time exceeded in-transit")
IP = {"outside": "203.0.113.50", "inside": "203.0.113.10"}


@pytest.fixture(scope="module", params=["iptables", "nftables"])
def lab(request, tmp_path_factory):
    name = unique_lab("t2l")
    path = write_topology(tmp_path_factory.mktemp(name), TOPOLOGY.format(lab=name, mode=request.param),
                          f"{name}.yaml")
    with lab_up(path, name):
        yield name, request.param, path


@pytest.fixture
def repaired(lab):
    """The lab, put back as planned (`netlab up`) after a test that edits its rules."""
    try:
        yield lab
    finally:
        netlab("up", "-t", lab[2])
        assert as_planned(lab[0])


def curl(lab: str, host: str, port: int = 80) -> int:
    """curl's exit code: 0 answered, 7 refused (here: the ICMP time exceeded), 28 timed out (dropped)."""
    return in_netns(f"{lab}-{host}", "curl", "-s", "-m", "2", f"http://203.0.113.100:{port}/", timeout=10).returncode


def break_the_dnat(lab: str, mode: str) -> str:
    """The client the node then does not DNAT: iptables, KUBE-PROXY-FIREWALL's DROP deleted (an outside source
    falls through KUBE-FW undone, and nothing drops it); nftables, the balancer's service-ips element deleted (an
    allowed source passes the firewall chain and meets no DNAT)."""
    n1 = f"{lab}-n1"
    if mode == "iptables":
        saved = in_netns(n1, "iptables-save", "-t", "filter", check=True).stdout
        (drop,) = [line for line in saved.splitlines() if line.startswith("-A KUBE-PROXY-FIREWALL ")]
        subprocess.run(["ip", "netns", "exec", n1, "sh", "-c", f"iptables -t filter -D {drop[3:]}"], check=True)
        return "outside"
    in_netns(n1, "nft", "delete element ip kube-proxy service-ips { 203.0.113.100 . tcp . 80 }", check=True)
    return "inside"


def measured(lab: str, host: str, port: int = 80) -> tuple[int, str, bool]:
    """curl's exit code, the source of the ICMP time exceeded that came back to the client (tcpdump there), and
    whether n1 sent it (tcpdump on n1's eth0, not promiscuous: n1's own packets leave there; the gateway's go
    out of inet0 to the client)."""
    with tcpdump(f"{lab}-{host}", "eth0", "icmp", settle=0.5) as back, \
            tcpdump(f"{lab}-n1", "eth0", "icmp", settle=0.5) as at_n1:
        rc = curl(lab, host, port)
    sources = {m.group(1) for line in back if (m := EXCEEDED.search(line)) and m.group(2) == IP[host]}
    assert len(sources) == 1, back
    return rc, sources.pop(), any(EXCEEDED.search(line) for line in at_n1)


def the_loop(d: dict, lab: str, src: str, by_n1: bool) -> dict:
    """The trace's loop row, its last, and what it claims against what tcpdump saw."""
    hops = d["hops"]
    loop = hops[-1]
    assert loop["kind"] == "loop" and len(hops) < 25, [(h["netns"], h["kind"]) for h in hops]
    assert loop["facts"]["time_exceeded_from"] == src, (loop["facts"], src)
    assert loop["facts"]["ttl_expires"] == (f"{lab}-n1" if by_n1 else f"{lab}-gateway"), loop["facts"]
    assert f"ICMP time exceeded (ttl exceeded in transit) from {src}" in loop["problem"], loop["problem"]
    # the trace's own packet met the same end: its capture saw that time exceeded come back
    assert any(e["from"] == src and "time exceeded" in e["text"] for e in d["icmp_errors"]), d["icmp_errors"]
    return loop


@pytest.mark.parametrize("ttl", [64, 63])
def test_a_loop_is_said_once_and_its_ttl_runs_out_where_tcpdump_sees_it(repaired, ttl):
    lab, mode, _ = repaired
    host = break_the_dnat(lab, mode)
    client = f"{lab}-{host}"
    in_netns(client, "sysctl", "-qw", f"net.ipv4.ip_default_ttl={ttl}", check=True)
    try:
        rc, src, by_n1 = measured(lab, host)
        assert rc == 7  # refused at once: the time exceeded, not a timeout
        assert (src, by_n1) == (("192.168.122.2", True) if ttl == 64 else ("203.0.113.1", False))
        rct, d = traced(lab, host, "svc/lb", "--port", "80")
    finally:
        in_netns(client, "sysctl", "-qw", "net.ipv4.ip_default_ttl=64", check=True)
    loop = the_loop(d, lab, src, by_n1)
    assert loop["facts"]["sent_ttl"] == ttl, loop["facts"]
    (row,) = [h for h in d["hops"] if h["netns"] == f"{lab}-n1" and h["kind"] == "dnat"]  # once, not once a lap
    assert rct == 1 and d["lost"]["hop"] == row["index"] and d["lost"]["fix"], d["lost"]
    assert "spares it" not in row["problem"], row["problem"]
    assert "back out to the internet's gateway it came in from" in row["problem"], row["problem"]
    assert d["lost"]["reason"].count("ICMP time exceeded") == 1, d["lost"]["reason"]
    subprocess.run(["bash", "-c", d["lost"]["fix"]], check=True)
    assert curl(lab, host) == (28 if mode == "iptables" else 0)  # dropped again / DNATed again


def test_a_port_the_service_does_not_have_goes_round_with_no_fault(lab):
    """Nothing of the lab's is broken: port 81 of the balancer's IP is no port of the Service, so no rule of
    kube-proxy's takes it; the loop is where it is lost, and why."""
    name, _, _ = lab
    rc, src, by_n1 = measured(name, "inside", 81)
    assert rc == 7 and (src, by_n1) == ("192.168.122.2", True)
    rct, d = traced(name, "inside", "203.0.113.100", "--port", "81")
    loop = the_loop(d, name, src, by_n1)
    assert rct == 1 and d["lost"]["hop"] == loop["index"] and d["lost"]["fix"] is None, d["lost"]
    assert d["lost"]["reason"] == loop["problem"] and as_planned(name), d["lost"]


def fc_counter(n1: str) -> int:
    listed = in_netns(n1, "nft", "list", "chain", "ip", "kube-proxy", "firewall-check", check=True).stdout
    (packets,) = re.findall(r"counter packets (\d+) bytes \d+ drop", listed)
    return int(packets)


def test_nftables_a_drop_in_firewall_check_drops_every_new_connection_and_trace_says_so(repaired):
    lab, mode, _ = repaired
    if mode != "nftables":
        pytest.skip("firewall-check is kube-proxy's nftables chain")
    n1 = f"{lab}-n1"
    in_netns(n1, "nft", "flush chain ip kube-proxy firewall-check; add rule ip kube-proxy firewall-check counter drop",
             check=True)
    assert curl(lab, "inside") == 28 and curl(lab, "outside") == 28  # dropped, inside the ranges too
    before = fc_counter(n1)
    rc, d = traced(lab, "inside", "svc/lb", "--port", "80")
    counted = fc_counter(n1) - before
    lost = d["lost"]
    assert rc == 1 and lost["netns"] == n1, lost
    row = next(h for h in d["hops"] if h["index"] == lost["hop"])
    assert row["facts"]["dropped_here"] is True and row is d["hops"][-1], row
    assert lost["reason"].startswith("dropped by n1's chain firewall-check, before any DNAT"), lost["reason"]
    assert "the kernel drops this packet at the chain's rule 'counter drop' (its counter went up by " \
           f"{counted} during the trace), which n1 holds in place of kube-proxy's 'ip daddr . meta l4proto . th " \
           "dport vmap @firewall-ips'" in lost["reason"], (counted, lost["reason"])
    assert counted >= 1
    subprocess.run(["bash", "-c", lost["fix"]], check=True)
    assert as_planned(lab) and curl(lab, "inside") == 0  # the fix lets it through again


@pytest.mark.parametrize("rule", ["ip daddr 203.0.113.100 drop", "tcp dport 80 counter drop",
                                  "ip daddr 203.0.113.100 ip dscp cs0 drop"])
def test_nftables_a_conditional_drop_in_firewall_check_is_read_against_the_packet(repaired, rule):
    """firewall-check flushed and given a drop under matches (qa: `ip daddr 203.0.113.100 drop`, `tcp dport 80
    drop`): the kernel drops the packet there silently (curl times out, no ICMP comes back, a counter in the rule
    rises). trace read only a bare drop or a saddr set: it walked on round the gateway and said the packet was lost
    in a loop, its TTL exceeded. A match trace cannot evaluate (ip dscp) is said as such: the rule may drop it."""
    lab, mode, _ = repaired
    if mode != "nftables":
        pytest.skip("firewall-check is kube-proxy's nftables chain")
    n1 = f"{lab}-n1"
    in_netns(n1, "nft", f"flush chain ip kube-proxy firewall-check; add rule ip kube-proxy firewall-check {rule}",
             check=True)
    with tcpdump(f"{lab}-inside", "eth0", "icmp", settle=0.5) as back:
        assert curl(lab, "inside") == 28  # dropped silently
    assert back == [], back  # no ICMP of any kind came back
    counter = "counter" in rule
    before = fc_counter(n1) if counter else None
    rc, d = traced(lab, "inside", "svc/lb", "--port", "80")
    lost = d["lost"]
    assert rc == 1 and lost["netns"] == n1, lost
    row = next(h for h in d["hops"] if h["index"] == lost["hop"])
    assert row is d["hops"][-1] and row["kind"] == "dnat", [(h["netns"], h["kind"]) for h in d["hops"]]
    assert not any(h["kind"] == "loop" for h in d["hops"]) and "time exceeded" not in lost["reason"], lost
    if "dscp" in rule:
        assert row["facts"]["may_drop"] is True, row["facts"]
        assert f"the chain's rule '{rule}' drops what it matches; trace cannot evaluate its 'ip dscp cs0'" \
               in lost["reason"] and "may drop this packet" in lost["reason"], lost["reason"]
    else:
        shown = rule.replace("counter ", "counter ") if counter else rule
        assert f"the kernel drops this packet at the chain's rule '{shown}'" in lost["reason"], lost["reason"]
        assert not row["facts"].get("may_drop"), row["facts"]
    if counter:
        counted = fc_counter(n1) - before
        assert counted >= 1 and f"(its counter went up by {counted} during the trace)" in lost["reason"], lost
    subprocess.run(["bash", "-c", lost["fix"]], check=True)
    assert as_planned(lab) and curl(lab, "inside") == 0  # the fix lets it through again


def hand_counter(n1: str) -> int | None:
    listed = in_netns(n1, "nft", "list", "chain", "ip", "kube-proxy", "hand", check=True).stdout
    found = re.findall(r"counter packets (\d+) bytes \d+ drop", listed)
    return int(found[0]) if found else None


@pytest.mark.parametrize("verdict", ["jump", "goto", "maybe"])
def test_nftables_a_drop_in_a_chain_firewall_check_jumps_to_is_followed(repaired, verdict):
    """A chain of the user's that firewall-check jumps (or goes) to, before kube-proxy's rule, drops the packet
    (curl times out, no ICMP, the chain's counter rises). trace took the jump for a rule that decides nothing and
    walked on round the gateway. A jump under a match trace cannot evaluate (ip dscp) may drop it (its drop has no
    counter here: a counter that rose would prove it does)."""
    lab, mode, _ = repaired
    if mode != "nftables":
        pytest.skip("firewall-check is kube-proxy's nftables chain")
    n1 = f"{lab}-n1"
    jump = "ip dscp cs0 jump hand" if verdict == "maybe" else f"ip daddr 203.0.113.100 {verdict} hand"
    drop = "tcp dport 80 drop" if verdict == "maybe" else "tcp dport 80 counter drop"
    in_netns(n1, "nft", "add chain ip kube-proxy hand; add rule ip kube-proxy hand udp dport 80 drop; add rule ip "
             f"kube-proxy hand {drop}; insert rule ip kube-proxy firewall-check {jump}", check=True)
    with tcpdump(f"{lab}-inside", "eth0", "icmp", settle=0.5) as back:
        assert curl(lab, "inside") == 28  # dropped silently
    assert back == [], back
    before = hand_counter(n1)
    rc, d = traced(lab, "inside", "svc/lb", "--port", "80")
    lost = d["lost"]
    assert rc == 1 and lost["netns"] == n1, lost
    row = next(h for h in d["hops"] if h["index"] == lost["hop"])
    assert row is d["hops"][-1] and row["kind"] == "dnat", [(h["netns"], h["kind"]) for h in d["hops"]]
    assert row["facts"]["drop_rule"] == drop and row["facts"]["chain"] == "hand", row["facts"]
    way = (f"the chain's rule '{jump}' (which {'goes' if verdict == 'goto' else 'jumps'} to hand, whose rule "
           f"'{drop}' drops what it matches)")
    if verdict == "maybe":
        assert row["facts"]["may_drop"] is True, row["facts"]
        assert f"{way}; trace cannot evaluate its 'ip dscp cs0'" in lost["reason"], lost
    else:
        counted = hand_counter(n1) - before
        assert not row["facts"].get("may_drop") and counted >= 1, (row["facts"], counted)
        assert f"the kernel drops this packet at {way} (its counter went up by {counted} during the trace), which " \
               "n1 holds before kube-proxy's" in lost["reason"], lost["reason"]
    subprocess.run(["bash", "-c", lost["fix"]], check=True)
    assert curl(lab, "inside") == 0  # the fix (firewall-check as kube-proxy writes it) lets it through again
