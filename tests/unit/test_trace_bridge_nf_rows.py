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
def test_every_frame_switched_port_to_port_on_a_path_says_it_the_same_way(bridge_nf):
    """A pod's packet to a pod of another node: the underlay's br0 switches it from port to port; the far node's
    cni0 only takes it out of that node's IP layer (routed in from flannel.1): br_netfilter runs nothing there."""
    lab, m, k = services_lab(False)
    k.bridge_nf = lambda netns: bridge_nf
    w = walk(k, m, "svc-client", Flow("tcp", str(lab.pod("client").ip), str(lab.pod("web-2").ip), 40000, 8080))
    rows = [h for h in w.hops if h.kind == "bridge"]
    switched = {h.facts["bridge"]: h for h in rows if "port" in h.facts}
    assert set(switched) == {"br0", "cni0"}, [h.decision for h in rows]
    br0, cni0 = switched["br0"], switched["cni0"]
    assert br0.decision.endswith(brnf.switched(bridge_nf)), br0.decision
    assert brnf.command(br0.netns) in br0.commands
    assert br0.facts["bridge_hooks"] == (brnf.PORT_TO_PORT if bridge_nf else [])
    assert cni0.decision.endswith(brnf.from_stack(True, "cni0")), cni0.decision
    assert cni0.facts["bridge_hooks"] == []
    # the row of cni0 handing the frame up says the same words (brnf.ON / brnf.OFF)
    [up] = [h for h in rows if "port" not in h.facts]
    assert (brnf.ON if bridge_nf else brnf.OFF) in up.decision, up.decision


ROUTED = ("the IP layer routed the packet out of cni0, and iptables FORWARD and POSTROUTING ran on it there, once; "
          "the frame did not come into cni0 by a port, so br_netfilter runs no iptables hook on it while it is "
          "bridged (no PREROUTING, FORWARD or POSTROUTING again)")


@pytest.mark.parametrize("bridge_nf", [True, False])
def test_a_frame_the_node_routes_or_sends_out_cni0_passes_no_iptables_hook_while_bridged(bridge_nf):
    """The kernel's br_netfilter runs the IP hooks only on a frame that came into the bridge by a port (a pod's
    veth): a packet the node routed out of cni0 (from flannel.1), or sent itself, passed FORWARD or OUTPUT and
    POSTROUTING once already; the row said br_netfilter ran PREROUTING, FORWARD and POSTROUTING on it again."""
    lab, m, k = services_lab(False)
    k.bridge_nf = lambda netns: bridge_nf
    web1 = lab.pod("web-1")
    cases = (("svc-web-2", Flow.icmp(str(lab.pod("web-2").ip), str(web1.ip), 7), ROUTED),
             ("svc-node-1", Flow.icmp(None, str(web1.ip), 7), ROUTED.replace("routed the packet", "sent its own packet")
              .replace("FORWARD and POSTROUTING ran", "OUTPUT and POSTROUTING ran")))
    for src, flow, words in cases:
        w = walk(k, m, src, flow)
        assert w.outcome == "delivered", w.reason
        [row] = [h for h in w.hops if h.kind == "bridge" and h.facts.get("port") == web1.host_veth]
        assert row.decision.endswith("; " + words), row.decision
        assert "runs iptables PREROUTING" not in row.decision
        assert row.facts["bridge_hooks"] == [] and brnf.command("svc-node-1") not in row.commands
