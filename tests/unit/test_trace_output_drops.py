"""A DROP (REJECT) in the OUTPUT chain of the pod, node or internet host that sends a packet, named with its fix
(no root): the source's for the request, the destination's for the reply (inputdrop.at_source); and a DROP in the
client's own INPUT that took the reply (inputdrop.judge). The pod's INPUT, the destination's concern, is not read
as the sender's."""

from __future__ import annotations

from netlab.trace import inputdrop
from netlab.trace.flow import Flow
from netlab.trace.hops import Hop, Observe, Walk
from netlab.trace.verdict import Verdict

SYN = Flow("tcp", "10.244.1.2", "10.244.0.2", 40000, 8080)
BEFORE = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [4:240]
:MINE - [0:0]
[0:0] -A INPUT -p tcp -m tcp --dport 81 -j DROP
[0:0] -A OUTPUT -j MINE
[2:120] -A OUTPUT -d 10.244.0.2/32 -p tcp -m tcp --dport 8080 -j DROP
[0:0] -A MINE -p tcp -m tcp --dport 9 -j REJECT --reject-with icmp-port-unreachable
COMMIT
"""


def _hops(ns: str) -> list[Hop]:
    return [Hop(ns, "pod c", "eth0", "route", "route get 10.244.0.2", observe=Observe(ns, "eth0", "out", SYN,
                                                                                    "request")),
            Hop("t-n1", "node n1", "cni0", "arrive", "arrives")]


def test_a_drop_in_the_sending_pods_output_that_counted_the_packet_is_named_with_its_fix():
    after = BEFORE.replace("[2:120] -A OUTPUT", "[3:180] -A OUTPUT")
    at, (why, fix) = inputdrop.at_source(_hops("t-c"), {"t-c": BEFORE}, {"t-c": after}, {}) or (None, ("", ""))
    assert at == 0 and why.startswith("a rule netlab did not write in pod c's filter chain OUTPUT dropped the "
                                      "packet on its way out"), why
    assert "`-A OUTPUT -d 10.244.0.2/32 -p tcp -m tcp --dport 8080 -j DROP`" in why
    assert fix == "ip netns exec t-c iptables -D OUTPUT -d 10.244.0.2/32 -p tcp -m tcp --dport 8080 -j DROP"
    assert inputdrop.at_source(_hops("t-c"), {"t-c": BEFORE}, {"t-c": BEFORE}, {}) is None  # counted nothing
    assert inputdrop.at_source(_hops("t-c"), {}, {"t-c": after}, {}) is None  # not read: nothing said


def test_a_reject_in_a_chain_of_the_pods_own_and_outputs_drop_policy_are_the_senders():
    after = BEFORE.replace("[0:0] -A MINE", "[1:60] -A MINE")
    _, (why, fix) = inputdrop.at_source(_hops("t-c"), {"t-c": BEFORE}, {"t-c": after}, {}) or (None, ("", ""))
    assert "filter chain MINE dropped the packet on its way out" in why and fix.endswith("-j REJECT --reject-with "
                                                                                        "icmp-port-unreachable")
    policy = BEFORE.replace(":OUTPUT ACCEPT [4:240]", ":OUTPUT DROP [4:240]")
    _, (why, fix) = inputdrop.at_source(_hops("t-c"), {"t-c": policy},
                                        {"t-c": policy.replace("DROP [4:240]", "DROP [5:300]")}, {}) or (None, ("", ""))
    assert "filter chain OUTPUT has policy DROP" in why and fix == "ip netns exec t-c iptables -P OUTPUT ACCEPT"


def test_the_pods_input_is_not_the_senders_and_its_output_not_the_receivers():
    after = BEFORE.replace("[0:0] -A INPUT", "[1:60] -A INPUT")
    assert inputdrop.at_source(_hops("t-c"), {"t-c": BEFORE}, {"t-c": after}, {}) is None
    assert inputdrop.dropped("t-c", "pod c", BEFORE, BEFORE.replace("[2:120] -A OUTPUT", "[3:180] -A OUTPUT")) is None


# -- the reply dropped by the client's own INPUT (inputdrop.judge)

ACK = SYN.reversed()


def _walks():
    fwd = Walk([Hop("t-c", "pod c", "eth0", "route", "route get 10.244.0.2"),
                Hop("t-web", "pod web", "eth0", "deliver", "delivered")], "delivered", SYN, "t-web")
    back = Walk([Hop("t-web", "pod web", "eth0", "route", "route get 10.244.1.2", direction="reply"),
                 Hop("t-c", "pod c", "eth0", "deliver", "delivered", direction="reply",
                     observe=Observe("t-c", "eth0", "in", ACK, "reply"))], "delivered", ACK, "t-c")
    return fwd, back


CLIENT = BEFORE.replace("--dport 81 -j DROP", "--sport 8080 -j DROP")


def test_a_drop_in_the_clients_own_input_that_counted_the_reply_is_named_with_its_fix():
    fwd, back = _walks()
    after = CLIENT.replace("[0:0] -A INPUT", "[1:60] -A INPUT")
    fv, back2, bv = inputdrop.judge(object(), fwd, back, Verdict(True, None, None), Verdict(True, None, None),
                                    {"t-c": CLIENT}, {"t-c": after}, {}, False, "t-web")
    assert fv.delivered and back2 is back and bv is not None and not bv.delivered and bv.lost_at == 1
    assert bv.reason.startswith("a rule netlab did not write in pod c's filter chain INPUT dropped the packet after "
                                "it arrived, before any socket saw it"), bv.reason
    assert bv.fix == "ip netns exec t-c iptables -D INPUT -p tcp -m tcp --sport 8080 -j DROP"
    assert back.hops[1].problem == bv.reason and back.hops[1].fix == bv.fix
    # counted nothing, or the reply came: nothing said
    for after, replied in ((CLIENT, False), (after, True)):
        fwd, back = _walks()
        _, _, bv = inputdrop.judge(object(), fwd, back, Verdict(True, None, None), Verdict(True, None, None),
                                   {"t-c": CLIENT}, {"t-c": after}, {}, replied, "t-web")
        assert bv == Verdict(True, None, None) and back.hops[1].problem is None


# -- a node (or an internet host) that sends: its own OUTPUT, not the lab's rules, not what it forwards

NODE = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-SERVICES - [0:0]
[0:0] -A FORWARD -j KUBE-FORWARD
[0:0] -A OUTPUT -m conntrack --ctstate NEW -j KUBE-SERVICES
[0:0] -A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
[0:0] -A KUBE-FORWARD -s 10.9.9.9/32 -j DROP
[0:0] -A KUBE-SERVICES -d 10.96.0.5/32 -p tcp -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable
[0:0] -A OUTPUT -d 10.244.0.2/32 -p tcp -m tcp --dport 8080 -j DROP
COMMIT
"""
PLANNED = {"t-n1": ("-A KUBE-SERVICES -d 10.96.0.5/32 -p tcp -m tcp --dport 80 -j REJECT --reject-with "
                    "icmp-port-unreachable", "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP")}


def _node_hops() -> list[Hop]:
    return [Hop("t-n1", "node n1", "flannel.1", "route", "route get 10.244.0.2")]


def test_a_drop_in_a_sending_nodes_output_is_named_and_the_labs_rules_and_forward_are_not():
    after = NODE.replace("[0:0] -A OUTPUT -d", "[1:60] -A OUTPUT -d")
    at, (why, fix) = inputdrop.at_source(_node_hops(), {"t-n1": NODE}, {"t-n1": after}, PLANNED) or (None, ("", ""))
    assert at == 0 and why.startswith("a rule netlab did not write in node n1's filter chain OUTPUT dropped the "
                                      "packet on its way out"), why
    assert fix == "ip netns exec t-n1 iptables -D OUTPUT -d 10.244.0.2/32 -p tcp -m tcp --dport 8080 -j DROP"
    # kube-proxy's REJECT (told where the trace meets the Service, never undone with -D); a rule of FORWARD's
    # chains that counted a packet the node forwarded meanwhile
    others = NODE.replace("[0:0] -A KUBE-SERVICES", "[1:60] -A KUBE-SERVICES").replace(
        "[0:0] -A KUBE-FORWARD -s", "[1:60] -A KUBE-FORWARD -s")
    assert inputdrop.at_source(_node_hops(), {"t-n1": NODE}, {"t-n1": others}, PLANNED) is None
