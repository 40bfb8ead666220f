"""Every row of a frame a bridge switches from port to port says whether br_netfilter hands it to iptables there
(bridge-nf-call-iptables in that bridge's namespace), in the words the row of a bridge handing a frame up to its
IP layer says it (test_trace_bridge_handed_up): with a fake kernel (no root).

Only that row (hop 4 of a pod's packet to another node) said it; a pod's packet to a pod of its own node, switched
by cni0 from one veth to the other, said nothing of it, although with 0 no NetworkPolicy rule nor conntrack of the
node sees that frame at all.
"""

from __future__ import annotations

import pytest

from netlab.trace import brnf
from netlab.trace.flow import Flow
from netlab.trace.walk import walk
from test_trace_missing_rules import services_lab


@pytest.mark.parametrize("bridge_nf", [True, False])
def test_a_frame_switched_pod_to_pod_on_cni0_says_whether_iptables_sees_it(bridge_nf):
    lab, m, k = services_lab(False)
    k.bridge_nf = lambda netns: bridge_nf
    web1 = lab.pod("web-1")
    w = walk(k, m, "svc-client", Flow("tcp", str(lab.pod("client").ip), str(web1.ip), 40000, 8080))
    [row] = [h for h in w.hops if h.kind == "bridge" and h.facts.get("bridge") == "cni0"]
    assert row.device == web1.host_veth, row
    word = ("br_netfilter (bridge-nf-call-iptables = 1) runs iptables PREROUTING, FORWARD and POSTROUTING"
            if bridge_nf else "(bridge-nf-call-iptables = 0: no iptables while bridged)")
    assert word in row.decision, row.decision
    assert row.decision.endswith(brnf.switched(bridge_nf)), row.decision
    assert "ip netns exec svc-node-1 sysctl net.bridge.bridge-nf-call-iptables" in row.commands


@pytest.mark.parametrize("bridge_nf", [True, False])
def test_every_switched_frame_row_of_a_path_says_it_the_same_way(bridge_nf):
    """A pod's packet to a pod of another node: the underlay's br0 and the far node's cni0 switch it."""
    lab, m, k = services_lab(False)
    k.bridge_nf = lambda netns: bridge_nf
    w = walk(k, m, "svc-client", Flow("tcp", str(lab.pod("client").ip), str(lab.pod("web-2").ip), 40000, 8080))
    rows = [h for h in w.hops if h.kind == "bridge"]
    switched = [h for h in rows if "port" in h.facts]
    assert {h.facts["bridge"] for h in switched} >= {"br0", "cni0"}, [h.decision for h in rows]
    for h in switched:
        assert h.decision.endswith(brnf.switched(bridge_nf)), h.decision
        assert brnf.command(h.netns) in h.commands
    # the row of cni0 handing the frame up says the same words (brnf.ON / brnf.OFF)
    [up] = [h for h in rows if "port" not in h.facts]
    assert (brnf.ON if bridge_nf else brnf.OFF) in up.decision, up.decision
