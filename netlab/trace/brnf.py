"""Whether a frame a bridge switches passes iptables (and nft's ip tables), in the words every bridge row says it.

br_netfilter hands a bridged IPv4 frame to the IP hooks (NF_INET_PRE_ROUTING, FORWARD, POST_ROUTING: iptables and
nftables' ``table ip`` chains alike, conntrack and the nat table's DNAT and masquerade, kube-proxy's and the
NetworkPolicies' filter rules) only where ``net.bridge.bridge-nf-call-iptables`` is 1 in the bridge's namespace;
with 0 (or without the module) the bridge switches it past all of them. So a row of a frame switched from port to
port (pod to pod on one node through cni0; the underlay's br0; the internet's inet0) says which, as the row of a
bridge handing a frame for its own MAC up to its IP layer does.
"""

from __future__ import annotations

SYSCTL = "net.bridge.bridge-nf-call-iptables"
ON = "br_netfilter (bridge-nf-call-iptables = 1)"
OFF = "bridge-nf-call-iptables = 0: no iptables while bridged"


def command(ns: str) -> str:
    """The command that shows the sysctl in ``ns``."""
    return f"ip netns exec {ns} sysctl {SYSCTL}"


def switched(on: bool) -> str:
    """What a frame switched from port to port meets on the bridge, for a row's end (``on``: the sysctl is 1)."""
    if on:
        return (f"{ON} runs iptables PREROUTING, FORWARD and POSTROUTING (conntrack, the nat table's DNAT and "
                "masquerade, the filter table's rules; nft's ip tables too) on the frame while it is bridged")
    return (f"the bridge switches the frame past iptables PREROUTING, FORWARD and POSTROUTING (no conntrack, no "
            f"DNAT, no filter rule; nor nft's ip tables) ({OFF})")
