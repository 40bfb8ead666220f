"""The bridge row of a frame switched between two pods of a node judges the FDB as the frame found it: a MAC the
bridge had not learned before the packet is flooded (the answer teaches it afterwards), unless the packet's own
who-has was answered from that MAC through the bridge first (l2steps._bridge_forward, kernel.fdb_state_before).
The root test with tcpdump on a third pod: tests/integration/test_trace_fdb_flood_live.py."""

from __future__ import annotations

import pytest
from test_trace_walk import FakeKernel, lab_from, ping

from helpers import two_node_topology
from netlab.plan.build import build_plan
from netlab.trace.facts import CtEntry
from netlab.trace.flow import Flow
from netlab.trace.labmap import LabMap
from netlab.trace.walk import walk


class Before(FakeKernel):
    """The fake kernel, with what it held before the packet: fedora-1's ARP entry for fedora-3 and cni0's FDB entry
    for fedora-3's MAC (the walk reads the entries now from the plan: there, both)."""

    neigh_then = "REACHABLE"
    fdb_then = "learned"

    def neigh_state_before(self, netns, dev, ip):
        return self.neigh_then if (netns, ip) == ("demo-fedora-1", "10.244.0.3") else "REACHABLE"

    def fdb_state_before(self, netns, bridge, mac):
        return self.fdb_then if mac == self.lab.pod("fedora-3").mac else "learned"


@pytest.fixture
def kernel():
    lab = lab_from(two_node_topology("demo"))
    plan = build_plan(lab)
    return LabMap.from_lab(lab, plan), Before(lab, plan)


def _bridge(k, m):
    w = ping(k, m, dst="10.244.0.3")
    assert w.outcome == "delivered" and w.end_netns == "demo-fedora-3"
    return next(h for h in w.hops if h.kind == "bridge")


def test_a_mac_learned_before_the_packet_is_switched_by_its_entry(kernel):
    m, k = kernel
    row = _bridge(k, m)
    mac = k.lab.pod("fedora-3").mac
    assert row.decision.startswith(f"bridge cni0: FDB: {mac} is behind port {k.lab.pod('fedora-3').host_veth} "
                                   "(learned)"), row.decision
    assert row.facts["fdb_before"] == "learned"


def test_a_mac_the_bridge_learned_only_since_was_flooded(kernel):
    m, k = kernel
    k.fdb_then = "no entry"  # aged out; the ARP entry sent the packet at once: nothing from fedora-3 came first
    row = _bridge(k, m)
    mac = k.lab.pod("fedora-3").mac
    assert f"{mac} is not in the FDB yet: the bridge floods the frame; it reaches port " in row.decision, row.decision
    assert row.facts["fdb_before"] == "no entry"


def test_the_packets_own_arp_answer_teaches_the_bridge_first(kernel):
    m, k = kernel
    k.fdb_then, k.neigh_then = "no entry", "no entry"  # fedora-1 asked who-has: fedora-3's answer crossed cni0
    row = _bridge(k, m)
    assert "(learned, from its ARP answer to this packet's who-has, which crossed cni0 first)" in \
        row.decision, row.decision
    assert "floods" not in row.decision


def test_a_hairpin_frame_goes_back_by_the_entry_its_own_way_in_taught():
    """fedora-1 reaches its own Service: the node DNATs the SYN back to fedora-1, and cni0 sends it back out the
    port it came in by (hairpin). cni0 held no entry for fedora-1's MAC before the packet, but learned it from the
    SYN itself as it came in by that port (source learning on ingress, before any forwarding): the frame is
    switched, not flooded."""
    text = two_node_topology("hp").replace("{name: fedora-1, node: minikube, ip: 10.244.0.2}",
                                           "{name: fedora-1, node: minikube, ip: 10.244.0.2, labels: {app: web}}")
    text += "services:\n  - {name: web, selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}\n"
    lab = lab_from(text)
    plan = build_plan(lab)
    m, k = LabMap.from_lab(lab, plan), Before(lab, plan)
    mac, port = k.lab.pod("fedora-1").mac, k.lab.pod("fedora-1").host_veth
    k.fdb_state_before = lambda netns, bridge, mac_: "no entry" if mac_ == mac else "learned"
    cip = str(lab.addressing.service_ip[("default", "web")])
    fwd = Flow("tcp", "10.244.0.2", cip, 40000, 80)
    k.ct["hp-minikube"] = [CtEntry(fwd, Flow("tcp", "10.244.0.2", "10.244.0.1", 8080, 40000), "SYN_RECV")]
    w = walk(k, m, "hp-fedora-1", fwd)
    assert w.outcome == "delivered" and w.end_netns == "hp-fedora-1", w.reason
    [row] = [h for h in w.hops if h.kind == "bridge" and h.facts.get("hairpin")]
    assert row.decision.startswith(f"bridge cni0: FDB: {mac} is behind port {port} (learned, from this packet's own "
                                   f"frame, which came into cni0 from {mac} by port {port}"), row.decision
    assert "floods" not in row.decision and row.facts["fdb_before"] == "no entry"
