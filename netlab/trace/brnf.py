"""Whether a frame a bridge switches passes iptables (and nft's ip tables), in the words every bridge row says it.

br_netfilter hands a bridged IPv4 frame to the IP hooks (NF_INET_PRE_ROUTING, FORWARD, POST_ROUTING: iptables and
nftables' ``table ip`` chains alike, conntrack and the nat table's DNAT and masquerade, kube-proxy's and the
NetworkPolicies' filter rules) only where ``net.bridge.bridge-nf-call-iptables`` is 1 in the bridge's namespace;
with 0 (or without the module) the bridge switches it past all of them. So a row of a frame switched from port to
port (pod to pod on one node through cni0; the underlay's br0; the internet's inet0) says which, as the row of a
bridge handing a frame for its own MAC up to its IP layer does.

It does so only for a frame that came into the bridge through one of its ports (br_nf_pre_routing sets the
frame's nf_bridge info there). A frame the namespace's own IP layer sends out of the bridge device (a packet it
routed in from flannel.1 or eth0, or one of its own) passed the IP hooks once as a routed or local packet (FORWARD
or OUTPUT, then POSTROUTING) before the bridge got it: it never passes NF_BR_FORWARD, and br_nf_post_routing
returns at once for a frame without nf_bridge info, so no iptables hook runs on it again while it is bridged.
"""

from __future__ import annotations

SYSCTL = "net.bridge.bridge-nf-call-iptables"
ON = "br_netfilter (bridge-nf-call-iptables = 1)"
OFF = "bridge-nf-call-iptables = 0: no iptables while bridged"
# The iptables hooks br_netfilter runs on a frame while it is bridged, as a row's fact ``bridge_hooks``
PORT_TO_PORT = ["PREROUTING", "FORWARD", "POSTROUTING"]


def command(ns: str) -> str:
    """The command that shows the sysctl in ``ns``."""
    return f"ip netns exec {ns} sysctl {SYSCTL}"


def prerouting(nft: bool) -> str:
    """What runs at NF_INET_PRE_ROUTING on a packet for the bridge's own MAC, in a row's words (``nft``: kube-proxy
    is in nftables mode there: its DNAT is nft's chain nat-prerouting of ``table ip kube-proxy``, and iptables' nat
    table holds none of kube-proxy's rules)."""
    if nft:
        return ("the PREROUTING hook (conntrack, then kube-proxy's DNAT in nft's chain nat-prerouting of table ip "
                "kube-proxy; iptables' nat PREROUTING holds none of kube-proxy's rules here)")
    return "iptables PREROUTING (conntrack, the nat table's DNAT)"


def switched(on: bool) -> str:
    """What a frame switched from port to port meets on the bridge, for a row's end (``on``: the sysctl is 1)."""
    if on:
        return (f"{ON} runs iptables PREROUTING, FORWARD and POSTROUTING (conntrack, the nat table's DNAT and "
                "masquerade, the filter table's rules; nft's ip tables too) on the frame while it is bridged")
    return (f"the bridge switches the frame past iptables PREROUTING, FORWARD and POSTROUTING (no conntrack, no "
            f"DNAT, no filter rule; nor nft's ip tables) ({OFF})")


def from_stack(routed: bool, bridge: str) -> str:
    """What a frame the namespace's own IP layer sends out of ``bridge`` meets on it, for a row's end (``routed``:
    a packet it forwarded, else one of its own), whatever bridge-nf-call-iptables says."""
    hooks = "FORWARD" if routed else "OUTPUT"
    what = "routed the packet" if routed else "sent its own packet"
    return (f"the IP layer {what} out of {bridge}, and iptables {hooks} and POSTROUTING ran on it there, once; "
            f"the frame did not come into {bridge} by a port, so br_netfilter runs no iptables hook on it while it "
            f"is bridged (no PREROUTING, FORWARD or POSTROUTING again)")
