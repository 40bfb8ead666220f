"""A masquerade's rows say what conntrack rewrote, and which rule did it, in both kube-proxy modes (no root).

Flannel's ``MASQUERADE --random-fully`` remaps an ICMP echo id as it does a TCP or UDP source port: conntrack's
entry holds the sender's id in its original tuple and the new one in its reply tuple. The MASQUERADE row and its
reversal on the reply say so (an address that stays would read as a no-op otherwise), and the JSON ``conntrack``
keeps the ids. A source-only rewrite is no DNAT: in nftables mode its rows send the learner to the iptables rule
whose counter went up (Flannel's rules are iptables in both modes), not to kube-proxy's ``masquerading`` chain,
which skipped the unmarked packet. The lab is topologies/services.yaml: client (10.244.0.3) on node-1 pings the
internet host example, node-1 masquerades it to 192.168.122.2.
"""

from __future__ import annotations

import pytest

from netlab.plan.build import build_plan
from netlab.plan.resources import NatRules
from netlab.trace import nat
from netlab.trace.facts import CtEntry
from netlab.trace.flow import Flow
from netlab.trace.walk import walk
from test_trace_missing_rules import CLIENT, services_lab

NODE_1, EXAMPLE = "svc-node-1", "203.0.113.10"
SAVE = f"ip netns exec {NODE_1} iptables-save -c -t nat"
MASQUERADING = f"ip netns exec {NODE_1} nft list chain ip kube-proxy masquerading"
CONNTRACK = f"ip netns exec {NODE_1} conntrack -L -p icmp --orig-src {CLIENT} --orig-dst {EXAMPLE}"


def flannel_egress_rule(plan) -> str:
    rules = next(r for r in plan.resources if isinstance(r, NatRules) and r.netns == NODE_1 and r.table == "nat")
    return next(line for line in rules.rules if line.startswith("-A FLANNEL-POSTRTG -s 10.244.0.0/16 !"))


def ping_out(nft: bool, counted: bool):
    """client pings example; node-1's entry remaps the echo id 11230 to 64582 (``--random-fully``)."""
    lab, m, k = services_lab(nft)
    sent = Flow.icmp(CLIENT, EXAMPLE, 11230)
    k.ct[NODE_1] = [CtEntry(sent, Flow.icmp(EXAMPLE, "192.168.122.2", 64582))]
    rule = flannel_egress_rule(build_plan(lab))
    if counted:
        k.counted[(NODE_1, rule)] = 1
    w = walk(k, m, "svc-client", sent)
    assert w.outcome == "delivered" and w.end_netns == "svc-example"
    back = walk(k, m, w.end_netns, w.final.reversed(), role="reply", direction="reply")
    assert back.outcome == "delivered" and back.final == Flow.icmp(EXAMPLE, CLIENT, 11230)
    masq = next(h for h in w.hops if h.kind == "snat" and h.netns == NODE_1)
    undo = next(h for h in back.hops if h.kind == "dnat" and h.netns == NODE_1)
    return rule, masq, undo


@pytest.mark.parametrize("nft", [True, False])
def test_the_masquerade_rows_show_the_echo_id_conntrack_rewrote(nft):
    _, masq, undo = ping_out(nft, counted=True)
    assert masq.decision.startswith(f"MASQUERADE: source {CLIENT} → 192.168.122.2, echo id 11230 → 64582; "
                                    f"conntrack will rewrite the replies back to {CLIENT} id 11230")
    assert undo.decision.startswith(f"conntrack undoes the masquerade: destination 192.168.122.2 → {CLIENT}, "
                                    "echo id 64582 → 11230")
    assert masq.facts["conntrack"] == f"icmp {CLIENT} → {EXAMPLE} id 11230 | reply {EXAMPLE} → 192.168.122.2 id 64582"
    assert (masq.facts["before"], masq.facts["after"]) == (f"{CLIENT} → {EXAMPLE} icmp id 11230",
                                                           f"192.168.122.2 → {EXAMPLE} icmp id 64582")


@pytest.mark.parametrize("nft", [True, False])
def test_the_masquerade_row_names_the_rule_whose_counter_went_up(nft):
    rule, masq, undo = ping_out(nft, counted=True)
    assert f"; by `{rule}` (its counter went up by 1 during the trace)" in masq.decision
    assert (masq.facts["rule"], masq.facts["rule_counted"]) == (rule, 1)
    # the rows point at the iptables rule that did it, never at kube-proxy's chain that skipped the packet
    assert masq.commands == undo.commands == [CONNTRACK, SAVE]


def test_an_echo_id_rewrite_is_no_dnat_in_nftables_mode():
    """No counter moved (read failed, say): the masquerade is still Flannel's (iptables) first, kube-proxy's
    masquerading chain only beside it, as for a TCP masquerade; never kube-proxy's chain alone, as for a DNAT."""
    _, masq, undo = ping_out(nft=True, counted=False)
    assert "by `" not in masq.decision and "rule" not in masq.facts
    assert masq.commands == undo.commands == [CONNTRACK, SAVE, MASQUERADING]


def test_an_address_that_stays_says_what_changed():
    """host-gw node → pod: the node's address is already the one it leaves by; only the echo id is remapped."""
    lab, m, _ = services_lab(nft=False)
    sent = Flow.icmp("192.168.122.3", "10.244.0.2", 46458)
    hit = nat.Hit(CtEntry(sent, Flow.icmp("10.244.0.2", "192.168.122.3", 17147)), "orig")
    new = nat.new_source(sent, hit)
    assert nat.describe(m, "src", hit, sent, new) == (
        "MASQUERADE: source 192.168.122.3 → 192.168.122.3, echo id 46458 → 17147 (the address stays: only the "
        "echo id changes); conntrack will rewrite the replies back to 192.168.122.3 id 46458")
    reply = Flow.icmp("10.244.0.2", "192.168.122.3", 17147)
    back = nat.Hit(hit.entry, "reply")
    assert nat.describe(m, "dst", back, reply, nat.new_destination(reply, back)) == (
        "conntrack undoes the masquerade: destination 192.168.122.3 → 192.168.122.3, echo id 17147 → 46458 (the "
        "address stays: only the echo id changes) (a reply to a connection this namespace SNATed)")
    assert not nat.dnated_here(hit)
    tcp = Flow("tcp", "192.168.122.3", "10.244.0.2", 40000, 8080)
    tcp_hit = nat.Hit(CtEntry(tcp, Flow("tcp", "10.244.0.2", "192.168.122.3", 8080, 51234)), "orig")
    assert nat.describe(m, "src", tcp_hit, tcp, nat.new_source(tcp, tcp_hit)).startswith(
        "MASQUERADE: source 192.168.122.3:40000 → 192.168.122.3:51234 (the address stays: only the source port "
        "changes)")


def test_in_nftables_mode_a_connection_kube_proxy_dnated_is_never_given_an_iptables_rule():
    """A nodePort packet DNATed and masqueraded by kube-proxy's nft chains: a Flannel rule whose counter another
    packet moved meanwhile is not named, and the rows list kube-proxy's masquerading chain."""
    lab, m, k = services_lab(nft=True)
    flow = Flow("tcp", "203.0.113.10", "192.168.122.3", 40000, 30080)
    k.ct["svc-node-2"] = [CtEntry(flow, Flow("tcp", "10.244.0.2", "10.244.1.0", 8080, 20000), "SYN_SENT")]
    rules = next(r for r in build_plan(lab).resources if isinstance(r, NatRules) and r.netns == "svc-node-2"
                 and r.table == "nat")
    other = next(line for line in rules.rules if line.startswith("-A FLANNEL-POSTRTG -s 10.244.0.0/16 !"))
    k.counted[("svc-node-2", other)] = 1
    masq = next(h for h in walk(k, m, "svc-example", flow).hops if h.kind == "snat" and h.netns == "svc-node-2")
    assert "by `" not in masq.decision and "rule" not in masq.facts, masq.decision
    assert masq.commands[1:] == ["ip netns exec svc-node-2 nft list chain ip kube-proxy masquerading"]
