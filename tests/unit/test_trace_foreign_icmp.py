"""trace reads an nftables rule's ICMP matches (`icmp type echo-request drop`, as a learner writes it, at the
destination pod's input hook), and names a rule it cannot judge and that has no counter as one that may drop the
packet, rather than saying nothing (it said "delivered ... NO REPLY: the pod sent no reply", blaming the pod).
"""

from __future__ import annotations

from netlab.trace import foreignnft
from netlab.trace.flow import Flow, Observe
from netlab.trace.foreignnft import Packet, foreign_drop
from netlab.trace.hops import Hop

PING = Flow.icmp("10.244.0.2", "10.244.1.3", 4711)
REQUEST, REPLY = Packet(PING, icmp=(8, 0)), Packet(PING.reversed(), icmp=(0, 0))
SYN = Packet(Flow("tcp", "10.244.0.2", "10.244.1.3", 40000, 80))


def _match(proto: str, field: str, right, op: str = "==") -> dict:
    return {"match": {"op": op, "left": {"payload": {"protocol": proto, "field": field}}, "right": right}}


def ruleset(*rules: list) -> dict:
    """`nft -j list ruleset` of a pod with table inet t, base chain in at the input hook, holding ``rules``."""
    items: list[dict] = [{"table": {"family": "inet", "name": "t"}},
                         {"chain": {"family": "inet", "table": "t", "name": "in", "type": "filter", "hook": "input",
                                    "prio": 0, "policy": "accept"}}]
    items += [{"rule": {"family": "inet", "table": "t", "chain": "in", "handle": 2 + i, "expr": exprs}}
              for i, exprs in enumerate(rules)]
    return {"nftables": [{"metainfo": {}}] + items}


def drops(packet: Packet, *matches: dict) -> bool:
    return foreign_drop(ruleset([*matches, {"drop": None}]), "input", packet) is not None


def test_icmp_type_and_code_matches_are_read():
    echo = _match("icmp", "type", "echo-request")
    d = foreign_drop(ruleset([echo, {"drop": None}]), "input", REQUEST)
    assert d is not None and (d.table, d.chain, d.handle, d.maybe) == ("t", "in", 2, False)
    why, fix = foreignnft.reason("x-fedora-2", d)
    assert "drops the packet at the input hook: chain in, rule handle 2 (drop)" in why, why
    assert fix == "ip netns exec x-fedora-2 nft delete rule inet t in handle 2"
    assert not drops(REPLY, echo) and not drops(SYN, echo)  # an echo reply; a TCP segment has no ICMP header
    assert drops(REPLY, _match("icmp", "type", "echo-reply"))
    assert drops(REQUEST, _match("icmp", "type", 8)) and not drops(REQUEST, _match("icmp", "type", 0))
    assert drops(REQUEST, _match("icmp", "type", {"set": ["echo-reply", "echo-request"]}))
    assert drops(REQUEST, _match("icmp", "type", "echo-reply", "!="))
    assert drops(REQUEST, _match("icmp", "code", 0)) and not drops(REQUEST, _match("icmp", "code", 3))
    unreach = Packet(Flow.unreachable("10.244.1.3", "10.244.0.2", Flow("udp", "10.244.0.2", "10.244.1.3", 1, 53)),
                     icmp=(3, 3))
    assert drops(unreach, _match("icmp", "type", "destination-unreachable"), _match("icmp", "code",
                                                                                    "port-unreachable"))
    assert not drops(unreach, _match("icmp", "code", "host-unreachable"))
    # IPv6's headers are not an IPv4 packet's: no icmpv6 or ip6 match holds
    assert not drops(REQUEST, _match("icmpv6", "type", "echo-request"))
    assert not drops(REQUEST, _match("ip6", "saddr", "::1"))


def test_where_gives_the_icmp_type_of_a_request_and_a_reply():
    def hop(direction: str, flow: Flow) -> Hop:
        return Hop("x-b", "pod b", "eth0", "deliver", "delivered", direction=direction,
                   observe=Observe("x-b", "eth0", "in", flow, "request"))

    assert foreignnft.where([hop("forward", PING)], 0) == ("x-b", "input", Packet(PING, "eth0", None, (8, 0)))
    assert foreignnft.where([hop("reply", PING.reversed())], 0)[2].icmp == (0, 0)
    unreach = Flow.unreachable("10.244.1.3", "10.244.0.2", Flow("udp", "10.244.0.2", "10.244.1.3", 1, 53))
    assert foreignnft.where([hop("reply", unreach)], 0)[2].icmp == (3, 3)


def test_a_rule_it_cannot_judge_without_a_counter_may_drop_the_packet_and_is_named():
    ct = {"match": {"op": "==", "left": {"ct": {"key": "mark"}}, "right": 0}}
    d = foreign_drop(ruleset([ct, {"drop": None}]), "input", REQUEST)
    assert d is not None and (d.handle, d.verdict, d.maybe) == (2, "drop", True)
    # asked only for a rule that surely drops it (trace asks so before a FORWARD policy or counted DROP)
    assert foreign_drop(ruleset([ct, {"drop": None}]), "input", REQUEST, maybe=False) is None
    why, fix = foreignnft.reason("x-b", d)
    assert why.startswith("table inet t in x-b, an nftables table the lab does not plan (status calls it extra), "
                          "may drop the packet at the input hook: chain in, rule handle 2 (drop) has a match trace "
                          "cannot judge"), why
    assert fix == "ip netns exec x-b nft delete rule inet t in handle 2"
    # with a counter that counted nothing: not this packet's; one that counted it: judged by it
    assert foreign_drop(ruleset([ct, {"counter": {"packets": 0, "bytes": 0}}, {"drop": None}]), "input",
                        REQUEST) is None
    # a later rule that surely drops it is named rather than the uncertain one
    d = foreign_drop(ruleset([ct, {"drop": None}], [_match("icmp", "type", "echo-request"), {"drop": None}]),
                     "input", REQUEST)
    assert d is not None and (d.handle, d.maybe) == (3, False)
    # an uncertain accept does not hide a sure drop after it, nor does an uncertain drop stay silent before an accept
    d = foreign_drop(ruleset([ct, {"drop": None}], [{"accept": None}]), "input", REQUEST)
    assert d is not None and (d.handle, d.maybe) == (2, True)
    # an uncertain match with another that fails: the rule does not match at all
    assert foreign_drop(ruleset([ct, _match("icmp", "type", "echo-reply"), {"drop": None}]), "input",
                        REQUEST) is None
    # an uncertain jump into a chain that drops
    items = ruleset([ct, {"jump": {"target": "sub"}}])
    items["nftables"] += [{"chain": {"family": "inet", "table": "t", "name": "sub"}},
                          {"rule": {"family": "inet", "table": "t", "chain": "sub", "handle": 9,
                                    "expr": [{"drop": None}]}}]
    d = foreign_drop(items, "input", REQUEST)
    assert d is not None and (d.chain, d.handle, d.maybe) == ("sub", 9, True)  # the chain that holds it


def test_a_negated_match_of_a_header_the_packet_lacks_never_holds():
    """nft puts a hidden protocol check before a header's match (`ip6 saddr != ::1` is `meta nfproto ipv6` and
    then the address): the kernel never applies it to a packet without that header, negated or not. trace took
    the negation of "no such header" as a hold, blamed such a rule for the drop and printed its deletion."""
    assert not drops(SYN, _match("ip6", "saddr", "::1", "!="))
    assert not drops(SYN, _match("icmp", "type", "echo-request", "!="))
    assert not drops(SYN, _match("udp", "dport", 53, "!="))
    assert not drops(REQUEST, _match("icmpv6", "type", "echo-request", "!="))
    assert drops(SYN, _match("tcp", "dport", 22, "!="))  # the header is there: the negation holds
