"""The row of a bridge handing a frame for its own MAC up to its IP layer (hop 4 of a pod's packet to another node),
with a fake kernel (no root): true to what the kernel does with br_netfilter on and off.

With bridge-nf-call-iptables = 1, br_netfilter's br_nf_pre_routing runs iptables PREROUTING (conntrack, the nat
table's DNAT) at the bridge's own hook, on the frame still bridged (in: cni0, physdev: the port); ip_sabotage_in
then keeps the IP layer's PREROUTING from running a second time on the packet passed up. With 0, the frame goes
up untouched and PREROUTING runs in the IP layer, in on cni0. The row said "the frame goes up to the IP layer"
either way.
"""

from __future__ import annotations

import pytest

from netlab.trace.flow import Flow
from netlab.trace.walk import walk
from test_trace_missing_rules import services_lab

WEB_2 = "10.244.1.2"


@pytest.mark.parametrize("bridge_nf", [True, False])
def test_the_bridge_hands_a_frame_for_its_own_mac_up_as_the_kernel_does(bridge_nf):
    """hop 4 said "the frame goes up to the IP layer" whether br_netfilter ran PREROUTING on it while it was still
    bridged (bridge-nf-call-iptables = 1) or the IP layer did (0)."""
    lab, m, k = services_lab(False)
    k.bridge_nf = lambda netns: bridge_nf
    w = walk(k, m, "svc-client", Flow.icmp(None, WEB_2, 7))
    row = next(h for h in w.hops if h.kind == "bridge" and h.device == "cni0")
    port = lab.pod("client").host_veth
    assert "goes up to the IP layer" not in row.decision
    if bridge_nf:
        assert row.decision.endswith(
            "is cni0's own: br_netfilter (bridge-nf-call-iptables = 1) runs iptables PREROUTING (conntrack, the nat "
            f"table's DNAT) on the frame while it is still bridged at port {port}, then the bridge hands it up to "
            "cni0's IP layer for the route lookup (PREROUTING does not run there again)"), row.decision
    else:
        assert row.decision.endswith(
            "is cni0's own: the bridge hands the frame up to the IP layer on cni0, where iptables PREROUTING "
            "(conntrack, the nat table's DNAT) runs, then the route lookup (bridge-nf-call-iptables = 0: no "
            "iptables while bridged)"), row.decision
    assert "ip netns exec svc-node-1 sysctl net.bridge.bridge-nf-call-iptables" in row.commands


@pytest.mark.parametrize("bridge_nf", [True, False])
def test_in_nftables_mode_the_row_names_kube_proxys_nft_chain_not_the_iptables_nat_table(bridge_nf):
    """kube-proxy in nftables mode DNATs in nft's chain nat-prerouting of table ip kube-proxy; iptables' nat table
    holds none of its rules. The row said "iptables PREROUTING (conntrack, the nat table's DNAT)" there too."""
    lab, m, k = services_lab(True)
    k.bridge_nf = lambda netns: bridge_nf
    w = walk(k, m, "svc-client", Flow.icmp(None, WEB_2, 7))
    row = next(h for h in w.hops if h.kind == "bridge" and h.device == "cni0")
    hook = ("the PREROUTING hook (conntrack, then kube-proxy's DNAT in nft's chain nat-prerouting of table ip "
            "kube-proxy; iptables' nat PREROUTING holds none of kube-proxy's rules here)")
    assert "the nat table's DNAT" not in row.decision
    if bridge_nf:
        assert f"is cni0's own: br_netfilter (bridge-nf-call-iptables = 1) runs {hook} on the frame while it is " \
               "still bridged" in row.decision, row.decision
    else:
        assert f"is cni0's own: the bridge hands the frame up to the IP layer on cni0, where {hook} runs, then " \
               "the route lookup" in row.decision, row.decision
