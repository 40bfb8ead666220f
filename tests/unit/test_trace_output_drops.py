"""A DROP (REJECT) in the OUTPUT chain of the pod that sends a packet, named with its fix (no root): the source
pod's for the request, the destination pod's for the reply (inputdrop.at_source). The pod's INPUT, the
destination's concern, is not read as the sender's."""

from __future__ import annotations

from netlab.trace import inputdrop
from netlab.trace.flow import Flow
from netlab.trace.hops import Hop, Observe

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
