"""Stale UDP conntrack entries: which status reports and up deletes (netlab/services/stale.py)."""

from __future__ import annotations

from netlab.kernel.conntrack import parse_tuples
from netlab.services.stale import stale_in

PORTS = {("10.96.0.10", "53"): {"10.244.0.4"}}
STALE = ("udp      17 599 src=10.244.0.3 dst=10.96.0.10 sport=40053 dport=53 [UNREPLIED] src=10.244.0.250 "
         "dst=10.244.0.3 sport=53 dport=40053 mark=0 use=1")
GOOD = ("udp      17 29 src=10.244.0.3 dst=10.96.0.10 sport=41000 dport=53 src=10.244.0.4 dst=10.244.0.3 sport=53 "
        "dport=41000 mark=0 use=1")
OTHER = ("udp      17 29 src=10.244.0.3 dst=10.244.1.2 sport=41000 dport=8080 src=10.244.1.2 dst=10.244.0.3 "
         "sport=8080 dport=41000 mark=0 use=1")


def test_parse_tuples():
    orig, reply = parse_tuples(STALE)
    assert orig == {"src": "10.244.0.3", "dst": "10.96.0.10", "sport": "40053", "dport": "53"}
    assert reply["src"] == "10.244.0.250" and reply["dport"] == "40053"
    assert parse_tuples("conntrack v1.4.7 (conntrack-tools): 3 flow entries have been shown.") is None


def test_only_entries_dnated_to_no_endpoint_are_stale():
    found = stale_in("lab-node-1", [STALE, GOOD, OTHER], PORTS)
    assert len(found) == 1
    s = found[0]
    assert s.netns == "lab-node-1" and s.to == "10.244.0.250:53"
    assert "10.244.0.3:40053 → 10.96.0.10:53" in s.describe()
    assert s.filter == ("-p", "udp", "--orig-src", "10.244.0.3", "--orig-port-src", "40053", "--orig-dst",
                        "10.96.0.10", "--orig-port-dst", "53", "--dst-nat", "10.244.0.250")
    assert stale_in("lab-node-1", [GOOD, OTHER], PORTS) == []
