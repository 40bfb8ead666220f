"""nft rules as netlab lists them, judged against the packet a trace follows (no root)."""

from __future__ import annotations

import pytest

from netlab.trace.flow import Flow
from netlab.trace.nftmatch import MAX_DEPTH, Step, first_drop, judge

F = Flow("tcp", "203.0.113.10", "203.0.113.100", 40000, 80)


@pytest.mark.parametrize("rule, verdict, matches", [
    ("drop", "drop", True),
    ("counter drop", "drop", True),
    ("ip daddr 203.0.113.100 drop", "drop", True),
    ("ip daddr != 203.0.113.100 drop", "drop", False),
    ("ip daddr 203.0.113.0/24 tcp dport 80 drop", "drop", True),
    ("tcp dport 81 drop", "drop", False),
    ("udp dport 80 drop", "drop", False),
    ("th dport 70-90 reject", "reject", True),
    ("tcp sport { 1, 40000 } drop", "drop", True),
    ("ip saddr { 203.0.113.8/30, 10.244.0.0/16 } accept", "accept", True),
    ("ip saddr 203.0.113.5-203.0.113.9 drop", "drop", False),
    ("meta l4proto tcp drop", "drop", True),
    ("ip protocol udp drop", "drop", False),
    ("ip saddr @allowed drop", "drop", True),
    ("ip saddr @nosuchset drop", "drop", None),
    ("ct state new drop", "drop", None),
    ("ct state new ip daddr 1.2.3.4 drop", "drop", False),  # one match that fails decides
    ("ip daddr 203.0.113.100 reject with icmp host-unreachable", "reject with icmp host-unreachable", True),
    ('ip daddr 203.0.113.100 drop comment "by hand"', "drop", True),
    ("counter", None, True),
])
def test_a_rule_is_judged_by_the_matches_trace_can_evaluate(rule, verdict, matches):
    j = judge(rule, F, {"allowed": ("203.0.113.10 comment \"x\"",)})
    assert (j.verdict, j.matches) == (verdict, matches), j
    if matches is None:
        assert j.unknown and j.unknown in rule, j


def test_an_icmp_packet_has_no_ports():
    assert judge("th dport 80 drop", Flow.icmp("10.0.0.1", "10.0.0.2", 80)).matches is False


@pytest.mark.parametrize("rule", ["tcp dport != 22 drop", "tcp sport != { 1, 2 } drop"])
def test_a_negated_port_match_of_another_protocol_fails_as_nft_s_protocol_dependency_does(rule):
    """nft checks the protocol before the port, negated or not: a UDP packet never matches `tcp dport != 22`
    (review rev59 1: the absent header's False was negated into a match, and trace said the rule dropped it)."""
    assert judge(rule, Flow("udp", "10.244.0.2", "10.96.0.10", 40000, 53)).matches is False


def test_a_concatenated_match_is_one_trace_cannot_evaluate_never_a_sure_no():
    """kube-proxy's `ip daddr . meta l4proto . th dport` forms: trace has no concatenation matcher, so the rule's
    fate is unknown (review rev59 2: `.` was read as the value and `meta l4proto .` failed the rule)."""
    j = judge("ip daddr . meta l4proto . th dport { 10.96.0.10 . udp . 53 } drop",
              Flow("udp", "10.244.0.2", "10.96.0.10", 40000, 53))
    assert j.matches is None and j.unknown, j


def walk(chains: dict[str, tuple[str, ...]], start: str = "firewall-check"):
    return first_drop(start, chains.get, F, stop=lambda chain, rule: chain == start and rule == "KUBE")


@pytest.mark.parametrize("verdict", ["jump", "goto"])
def test_a_drop_in_a_chain_a_rule_jumps_or_goes_to_is_followed(verdict):
    drop = walk({"firewall-check": ("ip daddr 203.0.113.0/24 " + verdict + " hand", "KUBE"),
                 "hand": ("tcp dport 81 drop", "ip saddr 203.0.113.10 " + verdict + " deeper"),
                 "deeper": ("counter tcp dport 80 drop",)})
    assert drop is not None and drop.sure and drop.step == Step("deeper", 0, "counter tcp dport 80 drop")
    assert [s.chain for s in drop.via] == ["firewall-check", "hand"] and drop.first.at == 0


def test_a_jumps_return_comes_back_and_a_gotos_return_leaves_the_chain_that_went():
    back = {"firewall-check": ("jump hand", "drop", "KUBE"), "hand": ("return", "drop")}
    assert walk(back).step == Step("firewall-check", 1, "drop")
    assert walk({**back, "firewall-check": ("goto hand", "drop", "KUBE")}) is None
    assert walk({"firewall-check": ("jump hand", "KUBE", "drop"), "hand": ("tcp dport 81 drop",)}) is None
    assert walk({"firewall-check": ("jump hand", "drop"), "hand": ("accept", "drop")}) is None


def test_what_trace_cannot_evaluate_on_the_way_makes_a_drop_one_that_may_drop():
    maybe = walk({"firewall-check": ("ct state new jump hand", "KUBE"), "hand": ("drop",)})
    assert maybe is not None and not maybe.sure and maybe.unknown == "ct state new"
    # a jump that may happen and comes back without a verdict leaves no doubt behind it
    assert walk({"firewall-check": ("ct state new jump hand", "drop"), "hand": ("tcp dport 81 drop",)}).sure
    # an accept that may happen first does
    after = walk({"firewall-check": ("jump hand", "drop"), "hand": ("meta mark 0x1 accept",)})
    assert after.step.rule == "drop" and not after.sure and after.unknown == "meta mark 0x1"


def test_a_chain_beyond_the_kernels_jump_depth_or_missing_may_drop():
    chains = {f"c{i}": (f"jump c{i + 1}",) for i in range(MAX_DEPTH + 2)}
    deep = walk(chains, "c0")
    assert deep is not None and not deep.sure and "a chain trace cannot follow" in deep.unknown
    gone = walk({"firewall-check": ("jump nosuch", "KUBE")})
    assert gone is not None and not gone.sure and gone.step.rule == "jump nosuch"
