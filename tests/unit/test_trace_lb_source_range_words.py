"""trace's words for an outside packet to a LoadBalancer IP with loadBalancerSourceRanges (trace/lbpath.py).

It said "its source X is in loadBalancerSourceRanges R, which kube-proxy checks here" whenever the Service had
ranges, without looking at the source: a packet a hand's nft goto chain carried past kube-proxy's firewall check
from outside the ranges was said to be in them. It now says which, and what a delivered outsider means.
"""

from __future__ import annotations

from netlab.trace import lbpath
from netlab.trace.flow import Flow
from netlab.trace.labmap import ServiceFacts

SVC = ServiceFacts(name="default/web", ip="10.96.0.10", port=80, protocol="tcp", svc_chain="KUBE-SVC-X",
                   ext_chain="KUBE-EXT-X", lb_ip="172.18.255.1", source_ranges=("203.0.113.0/24",),
                   fw_chain="KUBE-FW-X", pod_cidr="10.244.0.0/16")


def _words(src: str, nft: bool = False) -> str:
    f = Flow("tcp", src, "172.18.255.1", 40000, 80)
    return lbpath._outside_words(SVC, f, nft, "PREROUTING", "entry", ["KUBE-SERVICES", "KUBE-EXT-X"], [])


def test_a_source_in_the_ranges_is_said_to_be_in_them():
    text = _words("203.0.113.7")
    assert "its source 203.0.113.7 is in loadBalancerSourceRanges 203.0.113.0/24" in text, text
    assert "bypassed" not in text, text


def test_a_source_outside_the_ranges_is_not_said_to_be_in_them():
    for nft in (False, True):
        text = _words("198.51.100.9", nft)
        assert "is in loadBalancerSourceRanges" not in text, text
        assert "198.51.100.9 is not in loadBalancerSourceRanges 203.0.113.0/24" in text, text
        assert "bypassed" in text and ("firewall-ips" if nft else "KUBE-FW-X") in text, text
