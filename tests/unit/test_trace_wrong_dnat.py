"""A Service packet DNATed to no endpoint, and kube-proxy's ruleset gone at its root, in both modes (no root).

A DNAT rule edited by hand (the endpoint's port wrong) sends every new connection astray: the trace names that
rule beside the one kube-proxy writes, and its fix puts the chain back; it blames conntrack (a stale entry, fixed
by deleting it) only when the node held the flow's entry before the packet. A node without table ip kube-proxy,
or without the chain its jump leads to, is blamed on that node, with `netlab up` as the fix. The lab is
topologies/services.yaml (web-1 10.244.0.2 on node-1, web-2 10.244.1.2 on node-2, client on node-1).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from netlab.errors import netlab_command
from netlab.plan.resources import NftRules
from netlab.trace.facts import CtEntry, NatRule, NftTable
from netlab.trace.flow import Flow
from test_trace_missing_rules import CLIENT, WEB_1, WEB_IP, planned_rules, sep_rules, services_lab, to_web, traced

N1 = "svc-node-1"


def dnated(k, port: int, made_before: bool | None) -> Flow:
    """node-1's entry: client → web's ClusterIP DNATed to web-1 at ``port``; made for the packet or before it."""
    flow = to_web()
    k.ct[N1] = [CtEntry(flow, Flow("tcp", WEB_1, CLIENT, port, 40000), "SYN_SENT", made_before=made_before)]
    return flow


def edit_ipt(k, old: str, new: str, counted: int | None = 1) -> None:
    """iptables -t nat -R: ``old`` replaced by ``new`` in node-1's nat table, which counted the packet."""
    plain = k.nat_table

    def nat_table(netns):
        table = plain(netns)
        if netns != N1 or table is None:
            return table
        rules = tuple(NatRule(new, counted or 0, counted) if r.line == old else r for r in table.rules)
        return replace(table, rules=rules)
    k.nat_table = nat_table


def edit_nft(k, chain: str, old: str, new: str) -> None:
    """nft replace rule: ``old`` replaced by ``new`` in chain ``chain`` of node-1's table ip kube-proxy."""
    plain = k.nft_table

    def nft_table(netns):
        table = plain(netns)
        if netns != N1 or table is None:
            return table
        rules = dict(table.rules, **{chain: tuple(new if r == old else r for r in table.rules[chain])})
        listing = frozenset(line.replace(f" {old}", f" {new}") if line.startswith(f"rule {chain} ") else line
                            for line in table.listing)
        return replace(table, listing=listing, rules=rules)
    k.nft_table = nft_table


@pytest.fixture
def ipt():
    return services_lab(nft=False)


@pytest.fixture
def nft():
    return services_lab(nft=True)


def test_a_dnat_rule_edited_by_hand_is_named_not_a_stale_entry_iptables(ipt):
    _, m, k = ipt
    sep = next(e.sep_chain for e in m.service_for(WEB_IP, 80, "tcp").endpoints if e.pod == "web-1")
    mark, dnat = sep_rules(k, N1, sep)
    wrong = dnat.replace(":8080", ":8081")
    edit_ipt(k, dnat, wrong)
    for made_before in (False, None):  # a new connection; or nobody heard its entry made (the rule says so)
        w, v = traced(m, k, dnated(k, 8081, made_before))
        row = w.hops[v.lost_at]
        assert (row.netns, row.kind) == (N1, "dnat") and not v.delivered
        assert "stale" not in v.reason and "conntrack -D" not in v.fix
        assert (f"node-1's nat table DNATs this new connection to {WEB_1}:8081, which is no endpoint of Service "
                f"default/web:http") in v.reason
        assert (f"the rule `{wrong}` did it (its counter went up by 1 during the trace), where kube-proxy writes "
                f"`{dnat}` (the DNAT to endpoint web-1)") in v.reason
        assert row.facts["wrong_rule"] == wrong and row.facts["planned_rule"] == dnat
        ipt_nat = f"ip netns exec {N1} iptables -t nat"
        assert v.fix == (f"{ipt_nat} -F {sep} && {ipt_nat} -A {sep} -s {WEB_1}/32 -m comment --comment "
                         f"default/web:http -j KUBE-MARK-MASQ && {ipt_nat} -A {sep} -p tcp -m comment --comment "
                         f"default/web:http -m tcp -j DNAT --to-destination {WEB_1}:8080")
    assert mark in sep_rules(k, N1, sep)


def test_an_entry_held_before_the_packet_is_the_stale_one(ipt):
    """The rules are as planned: the node's entry, older than the packet, DNATs to an address no endpoint has."""
    _, m, k = ipt
    for made_before in (True, None):
        w, v = traced(m, k, dnated(k, 8081, made_before))
        assert w.hops[v.lost_at].kind == "dnat"
        assert "a stale entry an endpoint change left" in v.reason
        assert v.fix.startswith(f"ip netns exec {N1} conntrack -D -p tcp --orig-src {CLIENT} --orig-port-src 40000")


def test_a_dnat_rule_edited_by_hand_is_named_not_a_stale_entry_nftables(nft):
    _, m, k = nft
    sep = next(e.sep_chain for e in m.service_for(WEB_IP, 80, "tcp").endpoints if e.pod == "web-1")
    dnat = f"meta l4proto tcp dnat to {WEB_1}:8080"
    edit_nft(k, sep, dnat, dnat.replace(":8080", ":8081"))
    w, v = traced(m, k, dnated(k, 8081, False))
    row = w.hops[v.lost_at]
    assert (row.netns, row.kind) == (N1, "dnat") and "stale" not in v.reason
    assert (f"node-1's table ip kube-proxy DNATs this new connection to {WEB_1}:8081, which is no endpoint") in v.reason
    assert (f"the rule `meta l4proto tcp dnat to {WEB_1}:8081` of chain {sep} did it, where kube-proxy writes "
            f"`{dnat}` (the DNAT to endpoint web-1)") in v.reason
    assert v.fix == (f"ip netns exec {N1} nft 'add chain ip kube-proxy {sep}; flush chain ip kube-proxy {sep}; "
                     f"add rule ip kube-proxy {sep} ip saddr {WEB_1} jump mark-for-masquerade; "
                     f"add rule ip kube-proxy {sep} {dnat}'")


def test_a_node_without_kube_proxys_table_is_blamed_with_netlab_up(nft):
    _, m, k = nft
    k.nft_table = lambda netns: NftTable(frozenset(), {}, {}, exists=False)  # nft delete table ip kube-proxy
    w, v = traced(m, k, to_web())
    row = w.hops[v.lost_at]
    assert (row.netns, row.kind) == (N1, "dnat") and row.cause
    assert row.decision.endswith("table ip kube-proxy is missing") and row.facts["missing_table"] == "ip kube-proxy"
    assert "table ip kube-proxy (kube-proxy's whole ruleset in nftables mode" in v.reason
    assert "is missing from node-1; without it 10.96.0.20 is an address no interface owns" in v.reason
    assert v.fix == netlab_command('up --lab svc')
    # No row asks the kernel for a chain of the table that is gone.
    assert not [c for h in w.hops for c in h.commands if "nft list chain ip kube-proxy" in c]


def test_a_jump_whose_chain_is_gone_too_is_fixed_by_up_both_modes(ipt, nft):
    _, m, k = ipt
    jumps = [line for line in k.nat_table(N1).rules if line.line.endswith("-j KUBE-SERVICES")]
    k.no_rule |= {(N1, r.line) for r in jumps}
    k.no_chain.add((N1, "KUBE-SERVICES"))  # iptables -t nat -D PREROUTING ...; -F, -X KUBE-SERVICES
    w, v = traced(m, k, to_web())
    assert w.hops[v.lost_at].netns == N1 and w.hops[v.lost_at].facts["missing_targets"] == ["KUBE-SERVICES"]
    assert "; and chain KUBE-SERVICES, which it jumps to, is missing too" in v.reason
    assert v.fix == netlab_command('up --lab svc')
    _, m, k = nft  # nft flush chain nat-prerouting, nat-output; nft delete chain services
    k.gone |= {(N1, line) for c in ("nat-prerouting", "nat-output", "services") for line in planned_rules(k, N1, c)}
    k.gone.add((N1, "chain services"))
    w, v = traced(m, k, to_web())
    assert "; and chain services, which it leads to, is missing too" in v.reason and v.fix == netlab_command('up --lab svc')


def test_a_base_chain_comes_back_with_its_hook(nft):
    _, m, k = nft
    k.gone |= {(N1, line) for line in planned_rules(k, N1, "nat-prerouting")}
    listing = next(r for r in k.plan.resources if isinstance(r, NftRules) and r.netns == N1).listing
    k.gone |= {(N1, line) for line in listing if line.startswith("chain nat-prerouting ")}
    _, v = traced(m, k, to_web())
    assert v.fix == (f"ip netns exec {N1} nft 'add chain ip kube-proxy nat-prerouting {{ type nat hook prerouting "
                     "priority -100 ; }; flush chain ip kube-proxy nat-prerouting; add rule ip kube-proxy "
                     "nat-prerouting jump services'")


DEAD = "10.244.0.99"  # on node-1's cni0, where no pod answers ARP


def test_a_dnat_edited_to_a_dead_address_on_the_node_is_named_though_no_entry_was_kept_iptables(ipt):
    """The DNATed frame died in node-1's ARP queue for 10.244.0.99 before conntrack confirmed its entry: no entry,
    yet the rule's counter went up. The rule is to blame, not a missing one; the fix replaces it (-F, -A)."""
    _, m, k = ipt
    sep = next(e.sep_chain for e in m.service_for(WEB_IP, 80, "tcp").endpoints if e.pod == "web-1")
    mark, dnat = sep_rules(k, N1, sep)
    wrong = dnat.replace(f"{WEB_1}:8080", f"{DEAD}:8080")
    edit_ipt(k, dnat, wrong)
    k.ct[N1] = []  # the packet never left node-1: no entry
    w, v = traced(m, k, to_web())
    row = w.hops[v.lost_at]
    assert (row.netns, row.kind) == (N1, "dnat") and not v.delivered and row.facts["unconfirmed"]
    assert "is missing" not in v.reason and "did not DNAT" not in v.reason
    assert (f"node-1's nat table DNATs this new connection to {DEAD}:8080, which is no endpoint of Service "
            f"default/web:http") in v.reason
    assert f"the rule `{wrong}` did it (its counter went up by 1 during the trace)" in v.reason
    assert "conntrack kept no entry for this flow" in v.reason
    ipt_nat = f"ip netns exec {N1} iptables -t nat"
    assert v.fix.startswith(f"{ipt_nat} -F {sep} && ") and f"-j DNAT --to-destination {WEB_1}:8080" in v.fix
    assert " -I " not in v.fix  # an insert would leave the bogus rule before the good one
    assert w.hops[-1] is row  # the packet went no further
    # Its counter did not move: some other rule kept the packet from it, and the missing DNAT is the reason.
    _, m, k = services_lab(nft=False)
    edit_ipt(k, dnat, wrong, counted=0)
    k.ct[N1] = []
    w, v = traced(m, k, to_web())
    assert "is missing" in v.reason and "unconfirmed" not in w.hops[v.lost_at].facts


def test_a_dnat_edited_to_a_dead_address_on_the_node_is_named_though_no_entry_was_kept_nftables(nft):
    _, m, k = nft
    sep = next(e.sep_chain for e in m.service_for(WEB_IP, 80, "tcp").endpoints if e.pod == "web-1")
    dnat = f"meta l4proto tcp dnat to {WEB_1}:8080"
    edit_nft(k, sep, dnat, dnat.replace(WEB_1, DEAD))
    k.ct[N1] = []
    w, v = traced(m, k, to_web())
    row = w.hops[v.lost_at]
    assert (row.netns, row.kind) == (N1, "dnat") and row.facts["unconfirmed"]
    assert "cluster-ips-check" not in v.reason and "is missing" not in v.reason
    assert (f"the rule `meta l4proto tcp dnat to {DEAD}:8080` of chain {sep} did it, where kube-proxy writes "
            f"`{dnat}` (the DNAT to endpoint web-1)") in v.reason
    assert v.fix.startswith(f"ip netns exec {N1} nft 'add chain ip kube-proxy {sep}; flush chain ip kube-proxy {sep};")
