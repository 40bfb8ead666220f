"""trace names a ptp pod's node route that is gone (trace/faults.pod_host_route_gone): the node reaches a pod whose
veth is on no bridge by its own route through that veth alone (``10.244.0.5 dev vethX scope host``); deleted, the
pod's packets go down the node's default route and die at the underlay, which trace blamed ("as the lab plans
it"). The real plugin and kernel are tests/integration/test_cni_ptp_route_trace_live.py's."""

from __future__ import annotations

import types

from netlab.plan.build import build_plan
from netlab.trace import faults
from netlab.trace.labmap import LabMap
from test_trace_ptp_bypass import PTP, QNBR, lab_of


class Kernel:
    """The node's main table as trace lists it, and its links."""

    def __init__(self, routes, up=True):
        self._routes, self.up = routes, up

    def routes(self, netns):
        return self._routes

    def links(self, netns):
        return {dev: types.SimpleNamespace(up=self.up) for dev in ("eth0", "veth00000000", "veth00000001")}


def _map(tmp_path, plugin):
    lab = lab_of(tmp_path, plugin, running=True)
    return lab, LabMap.from_lab(lab, build_plan(lab))


def test_a_ptp_pods_gone_node_route_is_named_with_its_ip_route(tmp_path):
    lab, m = _map(tmp_path, PTP)
    pod = lab.pods[0]
    n1, ip, veth = lab.node(pod.node).netns, str(pod.ip), lab.attached[pod.name].host_veth
    default = "default via 192.168.122.1 dev eth0"
    why, fix = faults.pod_host_route_gone(m, n1, ip, "eth0", default, Kernel([])) or ("", "")
    assert why.startswith(f"no route to pod {pod.name}'s {ip} in {n1} through its veth {veth}: the node reaches the "
                          f"pod by that route alone (`{ip} dev {veth} scope host`"), why
    assert f"and it is gone; the default route sends {ip} to the underlay's gateway" in why, why
    assert why.endswith(f"`{fix}` puts it back; up re-attaches pod {pod.name}, which makes it again"), why
    assert fix == f"ip -n {n1} route add {ip}/32 dev {veth} scope host"
    # its veth set down took the route with it: the link first
    why, fix = faults.pod_host_route_gone(m, n1, ip, "eth0", default, Kernel([], up=False)) or ("", "")
    assert f"it went with the link: {veth} is down" in why and fix.startswith(f"ip -n {n1} link set {veth} up && ")
    # there (another route or rule wins: strayroutes names it), or the packet goes through the veth: nothing
    there = [{"dst": f"{ip}/32", "dev": veth}]
    assert faults.pod_host_route_gone(m, n1, ip, "eth0", default, Kernel(there)) is None
    assert faults.pod_host_route_gone(m, n1, ip, veth, f"{ip} dev {veth} scope host", Kernel([])) is None


def test_a_pod_on_a_bridge_has_no_route_of_its_own_to_lose(tmp_path):
    lab, m = _map(tmp_path, QNBR)
    pod = lab.pods[0]
    assert m.host_routes == {}
    assert faults.pod_host_route_gone(m, lab.node(pod.node).netns, str(pod.ip), "eth0", "default", Kernel([])) is None
