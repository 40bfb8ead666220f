"""trace names what dropped a packet outside the lab's own rules: an nftables table the lab does not plan (made by
hand: `nft add table inet x`, a drop rule or a drop policy at the hook where the packet died), and a DROP in the
destination pod's own filter table (`iptables -I INPUT ... -j DROP` inside the pod).

trace sent the user to iptables counters and `inspect` for the first (which show neither the table nor its rule),
and said "delivered ... sent no reply" for the second, blaming the application; status named both.
"""

from __future__ import annotations

from netlab.trace import foreignnft, inputdrop
from netlab.trace.flow import Flow, Observe
from netlab.trace.foreignnft import Packet, foreign_drop
from netlab.trace.hops import Hop

SYN = Flow("tcp", "10.244.0.2", "10.244.1.2", 40000, 8080)


def _match(proto: str, field: str, right) -> dict:
    return {"match": {"op": "==", "left": {"payload": {"protocol": proto, "field": field}}, "right": right}}


def ruleset(*rules: list, policy: str = "accept", hook: str = "forward", family: str = "inet",
            table: str = "x") -> dict:
    """A namespace's `nft -j list ruleset`: iptables-nft's filter table (the lab's, with a DROP of its own that
    must not be blamed) and a table ``family table`` with base chain fw at ``hook``, holding ``rules``."""
    items: list[dict] = [
        {"table": {"family": "ip", "name": "filter"}},
        {"chain": {"family": "ip", "table": "filter", "name": "FORWARD", "type": "filter", "hook": "forward",
                   "prio": 0, "policy": "accept"}},
        {"rule": {"family": "ip", "table": "filter", "chain": "FORWARD", "handle": 3,
                  "expr": [{"counter": {"packets": 9, "bytes": 9}}, {"drop": None}]}},
        {"table": {"family": family, "name": table}},
        {"chain": {"family": family, "table": table, "name": "fw", "type": "filter", "hook": hook, "prio": -10,
                   "policy": policy}},
        {"chain": {"family": family, "table": table, "name": "sub"}},
    ]
    for i, exprs in enumerate(rules):
        chain = "sub" if exprs and exprs[0] == "sub" else "fw"
        items.append({"rule": {"family": family, "table": table, "chain": chain, "handle": 10 + i,
                               "expr": [e for e in exprs if e != "sub"]}})
    return {"nftables": [{"metainfo": {}}] + items}


def test_a_foreign_tables_drop_rule_that_matches_the_packet_is_named():
    drop = [_match("ip", "daddr", "10.244.1.2"), _match("tcp", "dport", 8080), {"drop": None}]
    d = foreign_drop(ruleset(drop), "forward", Packet(SYN, "flannel.1", "cni0"))
    assert d is not None and (d.family, d.table, d.chain, d.hook, d.handle, d.verdict) == \
        ("inet", "x", "fw", "forward", 10, "drop")
    why, fix = foreignnft.reason("t-n2", d)
    assert why.startswith("table inet x in t-n2, an nftables table the lab does not plan (status calls it extra), "
                          "drops the packet at the forward hook: chain fw, rule handle 10 (drop)"), why
    assert "ip netns exec t-n2 nft delete table inet x" in why
    assert fix == "ip netns exec t-n2 nft delete rule inet x fw handle 10"
    # another port, another address, UDP, or the input hook: not this packet's; the lab's own DROP is never blamed
    assert foreign_drop(ruleset(drop), "forward", Packet(Flow("tcp", "10.244.0.2", "10.244.1.2", 1, 80))) is None
    assert foreign_drop(ruleset(drop), "forward", Packet(Flow("udp", "10.244.0.2", "10.244.1.2", 1, 8080))) is None
    assert foreign_drop(ruleset(drop), "input", Packet(SYN)) is None
    assert foreign_drop(ruleset(), "forward", Packet(SYN)) is None


def test_prefixes_sets_ranges_negations_and_devices():
    def drops(*matches) -> bool:
        return foreign_drop(ruleset([*matches, {"drop": None}]), "forward", Packet(SYN, "flannel.1", "cni0")) \
            is not None

    assert drops(_match("ip", "saddr", {"prefix": {"addr": "10.244.0.0", "len": 24}}))
    assert not drops(_match("ip", "saddr", {"prefix": {"addr": "10.244.1.0", "len": 24}}))
    assert drops(_match("tcp", "dport", {"set": [80, {"range": [8000, 8100]}]}))
    assert drops({"match": {"op": "!=", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 80}})
    assert drops({"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "cni0"}})
    assert not drops({"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "eth0"}})
    assert drops({"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "tcp"}})


def test_a_drop_policy_accept_rules_jumps_and_counters():
    # a base chain whose policy is drop: what no rule accepted
    d = foreign_drop(ruleset(policy="drop"), "forward", Packet(SYN))
    assert d is not None and d.handle is None
    why, fix = foreignnft.reason("t-n2", d)
    assert "its base chain fw's policy is drop" in why and fix == "ip netns exec t-n2 nft delete table inet x"
    assert foreign_drop(ruleset([_match("tcp", "dport", 8080), {"accept": None}], policy="drop"), "forward",
                        Packet(SYN)) is None
    # a jump to a regular chain that drops it
    jump = [{"jump": {"target": "sub"}}]
    d = foreign_drop(ruleset(jump, ["sub", _match("tcp", "dport", 8080), {"drop": None}]), "forward", Packet(SYN))
    assert d is not None and d.handle == 11 and d.chain == "sub"  # the chain that holds it: the fix deletes it there
    assert foreignnft.reason("t-n2", d)[1] == "ip netns exec t-n2 nft delete rule inet x sub handle 11"
    # a match trace does not read (ct state): only when its counter counted
    ct = {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": "new"}}
    assert foreign_drop(ruleset([ct, {"counter": {"packets": 0, "bytes": 0}}, {"drop": None}]), "forward",
                        Packet(SYN)) is None
    d = foreign_drop(ruleset([ct, {"counter": {"packets": 1, "bytes": 60}}, {"drop": None}]), "forward", Packet(SYN))
    assert d is not None and d.counted and "(its counter counted it)" in foreignnft.reason("n", d)[0]
    # kube-proxy's table is the lab's where it plans it
    kp = ruleset([{"drop": None}], family="ip", table="kube-proxy")
    assert foreign_drop(kp, "forward", Packet(SYN), [("ip", "kube-proxy")]) is None
    assert foreign_drop(kp, "forward", Packet(SYN)) is not None


def _hop(ns: str, dev: str, kind: str, decision: str = "", direction: str = "in") -> Hop:
    return Hop(ns, "node n2", dev, kind, decision, observe=Observe(ns, dev, direction, SYN, "request"))


class Kernel:
    def __init__(self, rules: dict):
        self.rules = rules

    def nft_ruleset(self, ns: str) -> dict:
        return self.rules


def test_blame_reads_where_the_packet_died_a_node_forwarding_it():
    hops = [_hop("t-a", "eth0", "route", "route get 10.244.1.2", "out"),
            _hop("t-n2", "flannel.1", "decap"),
            _hop("t-n2", "cni0", "route", "route get 10.244.1.2 → dev cni0 (forwarded)", "out"),
            _hop("t-n2", "cni0", "neigh", "ARP entry", "out")]
    assert foreignnft.where(hops, 3) == ("t-n2", "forward", Packet(SYN, "flannel.1", "cni0"))
    drop = [_match("tcp", "dport", 8080), {"drop": None}]
    why, fix = foreignnft.blame(Kernel(ruleset(drop)), hops, 3, {}) or ("", "")
    assert "table inet x in t-n2" in why and fix == "ip netns exec t-n2 nft delete rule inet x fw handle 10"
    assert foreignnft.blame(Kernel(ruleset(drop, hook="input")), hops, 3, {}) is None
    assert foreignnft.blame(object(), hops, 3, {}) is None  # a kernel that cannot read nftables


BEFORE = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [4:240]
[0:0] -A INPUT -p tcp -m tcp --dport 81 -j DROP
[2:120] -A OUTPUT -p tcp -m tcp --dport 9 -j DROP
COMMIT
"""


def test_a_drop_in_the_destination_pods_input_that_counted_the_packet_is_named():
    after = BEFORE.replace("[0:0] -A INPUT", "[1:60] -A INPUT").replace("[2:120] -A OUTPUT", "[3:180] -A OUTPUT")
    why, fix = inputdrop.dropped("t-api", "pod api", BEFORE, after) or ("", "")
    assert why.startswith("a rule netlab did not write in pod api's filter chain INPUT dropped the packet after it "
                          "arrived, before any socket saw it: `-A INPUT -p tcp -m tcp --dport 81 -j DROP`"), why
    assert why.endswith("`netlab status` lists it")
    assert fix == "ip netns exec t-api iptables -D INPUT -p tcp -m tcp --dport 81 -j DROP"
    assert inputdrop.dropped("t-api", "pod api", BEFORE, BEFORE) is None  # counted nothing: not this packet
    assert inputdrop.dropped("t-api", "pod api", None, after) is None
    policy = BEFORE.replace(":INPUT ACCEPT [0:0]", ":INPUT DROP [0:0]")
    why, fix = inputdrop.dropped("t-api", "pod api", policy, policy.replace(":INPUT DROP [0:0]",
                                                                            ":INPUT DROP [1:60]")) or ("", "")
    assert "filter chain INPUT has policy DROP" in why and fix == "ip netns exec t-api iptables -P INPUT ACCEPT"


def test_at_destination_marks_the_delivery_row():
    deliver = Hop("t-api", "pod api", "eth0", "deliver", "route get → local; delivered",
                  observe=Observe("t-api", "eth0", "in", SYN, "request"))
    hops = [_hop("t-n1", "cni0", "route", "(forwarded)", "out"), deliver]
    after = BEFORE.replace("[0:0] -A INPUT", "[1:60] -A INPUT")
    at, (why, _) = inputdrop.at_destination(object(), hops, {"t-api": BEFORE}, {"t-api": after}, {}, False) or \
        (None, ("", ""))
    assert at == 1 and "pod api's filter chain INPUT" in why
    assert inputdrop.at_destination(object(), hops, {"t-api": BEFORE}, {"t-api": BEFORE}, {}, False) is None
    # no rule counted it and no reply came: a foreign table's input chain that drops it
    at, (why, fix) = inputdrop.at_destination(Kernel(ruleset(policy="drop", hook="input")), hops,
                                              {"t-api": BEFORE}, {"t-api": BEFORE}, {}, False) or (None, ("", ""))
    assert at == 1 and "at the input hook" in why and fix == "ip netns exec t-api nft delete table inet x"
    assert inputdrop.at_destination(Kernel(ruleset(policy="drop", hook="input")), hops, {"t-api": BEFORE},
                                    {"t-api": BEFORE}, {}, True) is None  # a reply came: it was not dropped


def test_kube_proxys_own_base_chain_with_a_drop_policy_is_named_with_the_policy_back_as_fix():
    """`nft add chain ip kube-proxy filter-forward '{ ... policy drop ; }'`: kube-proxy's rules accept nothing, so
    the policy drops every packet through the hook (trace sent the user to iptables counters)."""
    kp = ruleset([{"jump": {"target": "sub"}}], policy="drop", family="ip", table="kube-proxy")
    d = foreign_drop(kp, "forward", Packet(SYN), [("ip", "kube-proxy")])
    assert d is not None and (d.table, d.chain, d.handle, d.planned) == ("kube-proxy", "fw", None, True)
    why, fix = foreignnft.reason("t-n1", d)
    assert why.startswith("table ip kube-proxy in t-n1, kube-proxy's, drops the packet at the forward hook: its "
                          "base chain fw's policy is drop (kube-proxy gives it none: accept)"), why
    assert fix == "ip netns exec t-n1 nft add chain ip kube-proxy fw '{ policy accept ; }'"
    assert foreign_drop(kp, "input", Packet(SYN), [("ip", "kube-proxy")]) is None  # not a hook it crossed
    assert foreign_drop(ruleset(family="ip", table="kube-proxy"), "forward", Packet(SYN), [("ip", "kube-proxy")]) \
        is None  # accept, as kube-proxy makes it
