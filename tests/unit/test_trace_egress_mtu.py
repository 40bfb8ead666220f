"""trace --size when a routed device's MTU drops the packet (QA im60 2).

A node forwarding a DF packet bigger than the MTU of the device it leaves by (flannel.1 or cni0 set to 1300)
drops it and answers an ICMP fragmentation needed (ip_forward: ip_exceeds_mtu against the device's MTU). trace
only compared veths and bridge ports, so it said "route, ARP and FDB answers look right, so look at the
firewall". It now names that device and its planned MTU; and an MTU fix says the plan's MTU, not the probe's size.
"""

from __future__ import annotations

from netlab.trace.verdict import explain
from netlab.trace.walk import walk
from netlab.trace.flow import Flow
from test_trace_walk import world  # noqa: F401  (the fixture)

NODE, NODE2 = "demo-minikube", "demo-minikube-m02"


def set_mtu(k, ns: str, dev: str, mtu: int) -> None:
    link = k._links[ns][dev]
    k._links[ns][dev] = type(link)(**{**link.__dict__, "mtu": mtu})


def test_a_forwarded_packet_bigger_than_flannel_s_mtu_names_flannel(world):  # noqa: F811
    lab, m, k = world
    set_mtu(k, NODE, "flannel.1", 1300)
    w = walk(k, m, "demo-fedora-1", Flow.icmp(None, "10.244.1.3", 7), size=1400)
    v = explain(w)
    lost = w.hops[v.lost_at]
    assert (lost.netns, lost.device, lost.kind) == (NODE, "flannel.1", "route"), [h.decision for h in w.hops]
    assert "firewall" not in v.reason
    assert "flannel.1 in demo-minikube" in v.reason and "MTU 1300" in v.reason and "1450" in v.reason, v.reason
    assert "fragmentation needed" in v.reason
    assert v.fix == f"ip -n {NODE} link set flannel.1 mtu 1450", v.fix


def test_a_forwarded_packet_bigger_than_cni0_s_mtu_names_cni0(world):  # noqa: F811
    lab, m, k = world
    set_mtu(k, NODE2, "cni0", 1300)
    w = walk(k, m, "demo-fedora-1", Flow.icmp(None, "10.244.1.3", 7), size=1400)
    v = explain(w)
    lost = w.hops[v.lost_at]
    assert (lost.netns, lost.device) == (NODE2, "cni0"), [h.decision for h in w.hops]
    assert "firewall" not in v.reason and "cni0" in v.reason and "MTU 1300" in v.reason, v.reason
    assert v.fix == f"ip -n {NODE2} link set cni0 mtu 1450", v.fix


def test_a_packet_the_devices_take_goes(world):  # noqa: F811
    lab, m, k = world
    set_mtu(k, NODE, "flannel.1", 1300)
    assert walk(k, m, "demo-fedora-1", Flow.icmp(None, "10.244.1.3", 7), size=1300).outcome == "delivered"


def test_a_pod_veth_mtu_break_suggests_the_plans_mtu_not_the_probes_size(world):  # noqa: F811
    lab, m, k = world
    port = lab.pod("fedora-2").host_veth
    set_mtu(k, NODE2, port, 1300)
    w = walk(k, m, "demo-fedora-1", Flow.icmp(None, "10.244.1.3", 7), size=1400)
    v = explain(w)
    assert v.fix is not None and f"link set {port} mtu 1450" in v.fix and "1400" not in v.fix, v.fix


def test_a_bridge_lowered_by_its_smallest_port_names_the_port(world):  # noqa: F811
    """The kernel gives a bridge its smallest port's MTU: a pod's veth set to 1300 makes cni0 1300 too. The port is
    the cause; its fix is the plan's MTU for the port (the bridge follows it back)."""
    lab, m, k = world
    port = lab.pod("fedora-2").host_veth
    set_mtu(k, NODE2, port, 1300)
    set_mtu(k, NODE2, "cni0", 1300)
    w = walk(k, m, "demo-fedora-1", Flow.icmp(None, "10.244.1.3", 7), size=1400)
    v = explain(w)
    assert (w.hops[v.lost_at].netns, w.hops[v.lost_at].device) == (NODE2, "cni0")
    assert f"{port} has MTU 1300 (the plan says 1450)" in v.reason, v.reason
    assert v.fix.startswith(f"ip -n {NODE2} link set {port} mtu 1450"), v.fix


def test_a_bridge_whose_mtu_was_set_by_hand_and_a_lowered_port_are_both_fixed(world):  # noqa: F811
    """`ip link set cni0 mtu 1350`, then a pod's veth to 1300: the kernel keeps a bridge's MTU once it is set by hand
    (cni0 stays 1350, not its smallest port's 1300), so setting the port back leaves cni0 dropping the packet. The
    fix set the port alone; it now names both, the port first."""
    lab, m, k = world
    port = lab.pod("fedora-2").host_veth
    set_mtu(k, NODE2, port, 1300)
    set_mtu(k, NODE2, "cni0", 1350)
    w = walk(k, m, "demo-fedora-1", Flow.icmp(None, "10.244.1.3", 7), size=1400)
    v = explain(w)
    assert (w.hops[v.lost_at].netns, w.hops[v.lost_at].device) == (NODE2, "cni0")
    assert f"its port {port} has MTU 1300 (the plan says 1450), and cni0's own MTU was set by hand" in v.reason, \
        v.reason
    assert v.fix == f"ip -n {NODE2} link set {port} mtu 1450 && ip -n {NODE2} link set cni0 mtu 1450", v.fix


def test_a_bridge_at_its_smallest_ports_mtu_is_said_to_follow_it_back_unless_set_by_hand(world):  # noqa: F811
    lab, m, k = world
    port = lab.pod("fedora-2").host_veth
    set_mtu(k, NODE2, port, 1300)
    set_mtu(k, NODE2, "cni0", 1300)
    v = explain(walk(k, m, "demo-fedora-1", Flow.icmp(None, "10.244.1.3", 7), size=1400))
    assert "(cni0 follows it back, unless its own MTU was set by hand)" in v.reason, v.reason
    assert v.fix == f"ip -n {NODE2} link set {port} mtu 1450", v.fix
