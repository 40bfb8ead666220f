"""kube-proxy's firewall of a LoadBalancer IP judged from the rules the kernel holds, not the topology's
loadBalancerSourceRanges (no root; both modes).

Whole, it drops a source outside the ranges (the drop the topology asks for, quoting the kernel's DROP and its
counter). Edited by hand it does what the kernel's rules say: without the pass of a source the topology allows, that
source is dropped (the pass is the fault, and its fix); without the DROP (iptables mode), a source KUBE-FW does not
pass goes on undone (the DROP is the fault); a firewall chain narrowed by hand (nftables mode) drops an allowed
source. trace judged from the topology's ranges: it said a dropped source went on astray, and an undropped one
dropped.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from netlab.plan.build import build_plan
from netlab.plan.resources import NatRules
from netlab.trace.flow import Flow
from netlab.trace.labmap import LabMap
from netlab.trace.lbfirewall import nft_drops
from test_trace_missing_rules import NftKernel
from test_trace_service_paths import traced
from test_trace_walk import FakeKernel, lab_from

TOPOLOGY = """name: fw
cluster: {{kubeProxyMode: {mode}}}
nodes: [{{name: n1}}]
pods:
  - {{name: web, node: n1, labels: {{app: web}}}}
services:
  - name: lb
    selector: {{app: web}}
    type: LoadBalancer
    loadBalancerIP: 203.0.113.100
    loadBalancerSourceRanges: [203.0.113.10/32, 203.0.113.8/30]
    ports: [{{port: 80, targetPort: 8080}}]
internet:
  cidr: 203.0.113.0/24
  gateway: {{ip: 203.0.113.1}}
  hosts: [{{name: outside, ip: 203.0.113.50}}, {{name: inside, ip: 203.0.113.10}}]
"""
N1 = "fw-n1"


def build(mode: str):
    lab = lab_from(TOPOLOGY.format(mode=mode))
    plan = build_plan(lab)
    k = (NftKernel if mode == "nftables" else FakeKernel)(lab, plan)
    return lab, LabMap.from_lab(lab, plan), k


def planned(k, table: str, needle: str) -> list[str]:
    """n1's planned iptables rules of ``table`` holding ``needle``."""
    return [line for r in k.plan.resources if isinstance(r, NatRules) and r.netns == N1 and r.table == table
            for line in r.rules if needle in line]


def trace_from(m, k, host: str):
    src = {"outside": "203.0.113.50", "inside": "203.0.113.10"}[host]
    w, v = traced(m, k, Flow("tcp", src, "203.0.113.100", 40000, 80), src=f"fw-{host}")
    rows = [h for h in w.hops if h.netns == N1 and h.kind == "dnat"]
    assert rows, [(h.netns, h.kind) for h in w.hops]
    return w, v, rows[0]


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_a_source_outside_the_ranges_is_the_drop_the_topology_asks_for(mode):
    _, m, k = build(mode)
    if mode == "iptables":
        (drop,) = planned(k, "filter", "-A KUBE-PROXY-FIREWALL ")
        k.counted[(N1, drop)] = 1
    w, v, row = trace_from(m, k, "outside")
    assert row.facts.get("dropped_here") and w.hops[v.lost_at] is row and v.fix is None, v.reason
    assert "the drop the topology asks for, not a fault" in v.reason, v.reason
    if mode == "iptables":
        assert f"`{drop}` drops it (its counter went up by 1 during the trace)" in v.reason, v.reason
        assert "passes only 203.0.113.10/32, 203.0.113.8/30 on to KUBE-EXT-" in v.reason, v.reason
    else:
        assert "'ip saddr != { 203.0.113.8/30 } drop' drops it before any DNAT" in v.reason, v.reason


def test_iptables_a_source_whose_pass_the_kernel_lacks_is_dropped_there_and_the_pass_put_back():
    """Both KUBE-FW passes that hold 203.0.113.10 deleted: KUBE-PROXY-FIREWALL drops it on n1 (measured: curl times
    out, the DROP counts it); trace said it went on undone to the gateway, round and round."""
    _, m, k = build("iptables")
    passes = planned(k, "nat", "-s 203.0.113.")
    assert len(passes) == 2, passes
    k.no_rule.update((N1, line) for line in passes)
    w, v, row = trace_from(m, k, "inside")
    assert row.facts.get("dropped_here") and w.hops[v.lost_at] is row, [(h.netns, h.kind) for h in w.hops]
    assert "though 203.0.113.10 is in its loadBalancerSourceRanges" in v.reason, v.reason
    assert f"`{passes[0]}`" in v.reason and "KUBE-PROXY-FIREWALL's `" in v.reason, v.reason
    assert "the drop the topology asks for" not in v.reason and row.facts["missing_rule"] == passes[0]
    assert v.fix.startswith(f"ip netns exec {N1} iptables -t nat -I KUBE-FW-") and "-s 203.0.113.10/32" in v.fix


def test_iptables_without_its_drop_the_firewall_lets_an_outside_source_go_on_undone():
    """KUBE-PROXY-FIREWALL's DROP deleted: nothing drops 203.0.113.50 on n1, it goes on as it is (measured: out to
    the gateway and back, until its TTL runs out); trace said kube-proxy's firewall dropped it."""
    _, m, k = build("iptables")
    (drop,) = planned(k, "filter", "-A KUBE-PROXY-FIREWALL ")
    k.no_rule.add((N1, drop))
    w, v, row = trace_from(m, k, "outside")
    assert not row.facts.get("dropped_here") and row.cause, row.facts
    assert row.facts["missing_rule"] == drop and "missing from n1's filter table" in row.problem, row.problem
    assert row.fix.startswith(f"ip netns exec {N1} iptables -t filter -I KUBE-PROXY-FIREWALL "), row.fix
    assert any(h.netns == "fw-gateway" for h in w.hops[w.hops.index(row):]), "the walk did not go on"


def test_nftables_a_firewall_chain_narrowed_by_hand_drops_an_allowed_source():
    """The kernel's chain holds 203.0.113.8/31, not kube-proxy's 203.0.113.8/30: 203.0.113.10 is dropped before any
    DNAT; the fix writes kube-proxy's chain again. trace found nothing missing and said it was not DNATed."""
    _, m, k = build("nftables")
    table = k.nft_table

    def narrowed(ns):
        t = table(ns)
        if ns != N1:
            return t
        chain = next(c for c in t.rules if c.startswith("firewall-"))
        return replace(t, rules={**t.rules, chain: ("ip saddr != { 203.0.113.8/31 } drop",)})

    k.nft_table = narrowed
    w, v, row = trace_from(m, k, "inside")
    assert row.facts.get("dropped_here") and w.hops[v.lost_at] is row, [(h.netns, h.kind) for h in w.hops]
    assert "though 203.0.113.10 is in its loadBalancerSourceRanges" in v.reason, v.reason
    assert "'ip saddr != { 203.0.113.8/31 } drop' drops it" in v.reason, v.reason
    assert "kube-proxy's is 'ip saddr != { 203.0.113.8/30 } drop'" in v.reason, v.reason
    assert v.fix.startswith(f"ip netns exec {N1} nft 'add chain ip kube-proxy firewall-") and "8/30" in v.fix, v.fix


def test_nft_drops_reads_the_set_as_nft_lists_it():
    assert nft_drops("ip saddr != { 192.168.122.0/24, 203.0.113.8/30, 203.0.113.100 } drop", "203.0.113.50")
    assert not nft_drops("ip saddr != { 192.168.122.0/24, 203.0.113.8/30, 203.0.113.100 } drop", "203.0.113.9")
    assert not nft_drops("ip saddr != { 203.0.113.100 } drop", "203.0.113.100")
    assert not nft_drops("ip saddr != { 10.0.0.5-10.0.0.9 } drop", "10.0.0.7")
    assert nft_drops("ip saddr != 10.0.0.0/8 drop", "192.0.2.1")
    assert nft_drops("ip saddr { 192.0.2.0/24 } drop", "192.0.2.1")
    assert nft_drops("drop", "192.0.2.1")
    assert nft_drops("counter packets 3 bytes 180", "192.0.2.1") is None


@pytest.mark.parametrize("held", ["drop", "counter drop"])
@pytest.mark.parametrize("host", ["outside", "inside"])
def test_nftables_a_firewall_check_chain_whose_rule_is_a_drop_drops_every_new_connection_there(host, held):
    """firewall-check's own rule (the verdict map firewall-ips) replaced by a drop: every new connection that
    crosses n1's filter-prerouting-pre-dnat is dropped there, before any DNAT, whatever its source (measured: curl
    from either host times out). trace found kube-proxy's way to the firewall chain broken, and said only that the
    packet was not DNATed here; it walked on, round the gateway."""
    _, m, k = build("nftables")
    table = k.nft_table

    def replaced(ns):
        t = table(ns)
        if ns != N1:
            return t
        counters = {"firewall-check": (3,)} if held.startswith("counter") else {}
        before = {"firewall-check": (1,)} if counters else None
        return replace(t, rules={**t.rules, "firewall-check": (held,)}, counters=counters, counters_before=before)

    k.nft_table = replaced
    w, v, row = trace_from(m, k, host)
    assert row.facts.get("dropped_here") and w.hops[v.lost_at] is row and w.hops[-1] is row, \
        [(h.netns, h.kind) for h in w.hops]
    assert row.facts["missing_rule"] == "rule firewall-check 0000 ip daddr . meta l4proto . th dport vmap @firewall-ips"
    assert v.reason.startswith("dropped by n1's chain firewall-check, before any DNAT"), v.reason
    assert f"the kernel drops this packet at the chain's rule '{held}'" in v.reason, v.reason
    assert "in place of kube-proxy's 'ip daddr . meta l4proto . th dport vmap @firewall-ips'" in v.reason, v.reason
    assert ("its counter went up by 2 during the trace" in v.reason) == (held != "drop"), v.reason
    assert v.fix == (f"ip netns exec {N1} nft 'add chain ip kube-proxy firewall-check; flush chain ip kube-proxy "
                     "firewall-check; add rule ip kube-proxy firewall-check ip daddr . meta l4proto . th dport vmap "
                     "@firewall-ips'"), v.fix


def test_nftables_a_drop_in_firewall_check_drops_a_pods_packet_to_a_clusterip_too():
    """filter-prerouting-pre-dnat jumps to firewall-check for every new connection, not only a balancer's: a pod's
    packet to its Service's ClusterIP is dropped there too, on its own node, before any DNAT (measured: curl from
    the pod to the ClusterIP, and to the balancer's IP, times out alike)."""
    _, m, k = build("nftables")
    table = k.nft_table
    k.nft_table = lambda ns: replace(table(ns), rules={**table(ns).rules, "firewall-check": ("drop",)}) \
        if ns == N1 else table(ns)
    svc = next(s for s in m.services if s.name.startswith("default/lb"))
    pod = next(ip for ip, name in m.ip_names.items() if name == "web")
    w, v = traced(m, k, Flow("tcp", pod, svc.ip, 40000, 80), src="fw-web")
    row = w.hops[v.lost_at]
    assert (row.netns, row.device, row.kind) == (N1, "cni0", "dnat") and row.facts["dropped_here"], row
    assert w.hops[-1] is row and "the kernel drops this packet at the chain's rule 'drop'" in v.reason, v.reason
    assert v.fix.startswith(f"ip netns exec {N1} nft 'add chain ip kube-proxy firewall-check; "), v.fix


def _firewall_check_holds(k, held: tuple[str, ...]):
    table = k.nft_table
    k.nft_table = lambda ns: replace(table(ns), rules={**table(ns).rules, "firewall-check": held}) \
        if ns == N1 else table(ns)


@pytest.mark.parametrize("held", ["ip daddr 203.0.113.100 drop", "tcp dport 80 drop", "counter tcp dport 80 drop",
                                  "ip daddr 203.0.113.100 ip protocol tcp th dport { 80, 443 } reject"])
def test_nftables_a_conditional_drop_in_firewall_check_that_holds_for_the_packet_drops_it_there(held):
    """firewall-check flushed and given `ip daddr 203.0.113.100 drop` (or `tcp dport 80 drop`) by hand: the kernel
    drops the packet there silently (measured: its counter rises, curl times out, no ICMP comes back). trace read
    only a bare drop or a saddr drop: it walked on and said the packet was lost in a loop, its TTL exceeded."""
    _, m, k = build("nftables")
    _firewall_check_holds(k, (held,))
    w, v, row = trace_from(m, k, "inside")
    assert row.facts.get("dropped_here") and w.hops[v.lost_at] is row and w.hops[-1] is row, \
        [(h.netns, h.kind) for h in w.hops]
    verb = "rejects" if held.endswith("reject") else "drops"
    assert f"the kernel {verb} this packet at the chain's rule '{held}'" in v.reason, v.reason
    assert row.facts["drop_rule"] == held and not row.facts.get("may_drop"), row.facts


@pytest.mark.parametrize("held", ["ip daddr 203.0.113.99 drop", "udp dport 80 drop", "tcp dport != 80 drop",
                                  "ip saddr 203.0.113.50 drop"])
def test_nftables_a_conditional_drop_in_firewall_check_that_does_not_hold_lets_the_packet_by(held):
    _, m, k = build("nftables")
    _firewall_check_holds(k, (held, "ip daddr . meta l4proto . th dport vmap @firewall-ips"))
    w, v = traced(m, k, Flow("tcp", "203.0.113.10", "203.0.113.100", 40000, 80), src="fw-inside")
    assert not any(h.facts.get("drop_rule") for h in w.hops), [(h.netns, h.kind, h.facts) for h in w.hops]


def test_nftables_a_drop_in_firewall_check_under_a_match_trace_cannot_evaluate_is_quoted_as_one_that_may_drop():
    _, m, k = build("nftables")
    held = "ip daddr 203.0.113.100 ip dscp cs1 drop"
    _firewall_check_holds(k, (held,))
    w, v, row = trace_from(m, k, "inside")
    assert row.facts.get("may_drop") and row.facts["drop_rule"] == held and w.hops[v.lost_at] is row, row.facts
    assert f"'{held}'" in v.reason and "may drop this packet" in v.reason and "ip dscp cs1" in v.reason, v.reason


@pytest.mark.parametrize("verdict", ["jump", "goto"])
def test_nftables_a_drop_in_a_chain_firewall_check_jumps_to_is_followed(verdict):
    """`nft add chain ip kube-proxy hand; add rule ... hand tcp dport 80 drop; insert rule ... firewall-check ip
    daddr 203.0.113.100 jump hand`: the kernel drops the packet in hand. trace read firewall-check's rules alone:
    a jump decided nothing, and it walked on to kube-proxy's map, then round the gateway."""
    _, m, k = build("nftables")
    table = k.nft_table
    kube = "ip daddr . meta l4proto . th dport vmap @firewall-ips"
    k.nft_table = lambda ns: replace(table(ns), rules={
        **table(ns).rules, "firewall-check": (f"ip daddr 203.0.113.100 {verdict} hand", kube),
        "hand": ("udp dport 80 drop", "tcp dport 80 drop")}) if ns == N1 else table(ns)
    w, v, row = trace_from(m, k, "inside")
    assert row.facts.get("dropped_here") and w.hops[v.lost_at] is row and w.hops[-1] is row, \
        [(h.netns, h.kind) for h in w.hops]
    assert row.facts["drop_rule"] == "tcp dport 80 drop" and row.facts["chain"] == "hand", row.facts
    assert not row.facts.get("may_drop") and "missing_rule" not in row.facts, row.facts
    assert (f"the kernel drops this packet at the chain's rule 'ip daddr 203.0.113.100 {verdict} hand' (which "
            f"{'jumps' if verdict == 'jump' else 'goes'} to hand, whose rule 'tcp dport 80 drop' drops what it "
            f"matches), which n1 holds before kube-proxy's") in v.reason, v.reason
    assert "nft list chain ip kube-proxy hand" in " ".join(row.commands), row.commands


def test_nftables_a_jump_trace_cannot_evaluate_to_a_chain_that_drops_may_drop():
    _, m, k = build("nftables")
    table = k.nft_table
    k.nft_table = lambda ns: replace(table(ns), rules={
        **table(ns).rules, "firewall-check": ("ip dscp cs1 jump hand", "ip daddr . meta l4proto . th dport vmap "
                                              "@firewall-ips"), "hand": ("drop",)}) if ns == N1 else table(ns)
    w, v, row = trace_from(m, k, "inside")
    assert row.facts.get("may_drop") and row.facts["drop_rule"] == "drop" and w.hops[v.lost_at] is row, row.facts
    assert "may drop this packet" in v.reason and "trace cannot evaluate its 'ip dscp cs1'" in v.reason, v.reason


def test_the_way_to_a_drop_in_another_chain_names_the_chain_of_a_rule_with_a_comment():
    """Review rev61 2: a firewall-check rule read from nft ends with its comment; the way named the comment's last
    word as the chain (`which goes to block", whose rule ...`)."""
    from netlab.trace import lbfirewall, nftmatch

    f = Flow("tcp", "1.2.3.4", "10.0.0.1", 1000, 80)
    rules = {"firewall-check": ('ip daddr 10.0.0.1 jump my-chain comment "user block"',),
             "my-chain": ("ip saddr 1.2.3.4 drop",)}
    drop = nftmatch.first_drop("firewall-check", rules.get, f)
    assert drop is not None and drop.sure
    assert lbfirewall._way(drop) == (" (which jumps to my-chain, whose rule 'ip saddr 1.2.3.4 drop' drops what it "
                                     "matches)")
