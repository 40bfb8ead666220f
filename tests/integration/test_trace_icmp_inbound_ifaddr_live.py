"""The source of a REJECT's ICMP port unreachable with net.ipv4.icmp_errors_use_inbound_ifaddr 0 and 1: trace's
reply rows against tcpdump in the client (root; iptables and nftables modes).

The kernel's __icmp_send answers a request it routed in (an input route) from an address of the device the request
came in by when the sysctl is 1, and lets the route back to the client pick the source when it is 0; a node's own
request (an output route) is answered from the route's pick either way. Those picks are the same address on a lab
as planned; each case adds one route that makes them differ, as a host route with a source or an asymmetric route
would. trace took the address of the device the request was to go out by (cni0 for a policy's REJECT of a
datagram that came in on flannel.1), and the sysctl for a node's own request.
"""

from __future__ import annotations

import re
from contextlib import contextmanager

import pytest

from helpers import in_netns, ipv4_of, lab_up, traced, unique_lab, write_topology
from test_trace_kernel_ways_live import tcpdump

pytestmark = pytest.mark.root

TOPOLOGY = """name: {lab}
cluster: {{kubeProxyMode: {mode}}}
nodes: [{{name: n1}}, {{name: n2}}]
pods:
  - {{name: client, node: n1}}
  - {{name: web, node: n2, labels: {{app: web}}}}
services:
  - {{name: empty, clusterIP: 10.96.0.40, selector: {{app: nothing}}, ports: [{{port: 80, targetPort: 8080}}]}}
networkPolicies:
  - {{name: deny-web, spec: {{podSelector: {{matchLabels: {{app: web}}}}, policyTypes: [Ingress]}}}}
"""
SYSCTL = "net.ipv4.icmp_errors_use_inbound_ifaddr"
# tcpdump's line of a port unreachable: "IP 10.244.0.1 > 10.244.0.2: ICMP 10.96.0.40 tcp port 80 unreachable"
SEEN = re.compile(r"IP (\S+) > (\S+): ICMP \S+ (?:tcp|udp) port \d+ unreachable")
# trace's ICMP error flow: "10.244.0.1 → 10.244.0.2 icmp port unreachable quoting ..."
WALKED = re.compile(r"^(\S+) → (\S+) icmp port unreachable quoting ")


@pytest.fixture(scope="module", params=["iptables", "nftables"])
def lab(request, tmp_path_factory):
    name = unique_lab("tri")
    path = write_topology(tmp_path_factory.mktemp(name), TOPOLOGY.format(lab=name, mode=request.param),
                          f"{name}.yaml")
    with lab_up(path, name):
        yield name


@contextmanager
def changed(netns: str, route: list[str], inbound: str):
    """``ip route add ROUTE`` and the sysctl in ``netns`` for the body, both put back after it."""
    in_netns(netns, "ip", "route", "add", *route, check=True)
    try:
        in_netns(netns, "sysctl", "-qw", f"{SYSCTL}={inbound}", check=True)
        yield
    finally:
        in_netns(netns, "sysctl", "-qw", f"{SYSCTL}=0", check=True)
        in_netns(netns, "ip", "route", "del", *route, check=True)


def answered_from(lab: str, watch: tuple[str, str], *args: str) -> tuple[str, str, dict]:
    """trace LAB ARGS with tcpdump on ``watch`` (netns, device): the source of the one port unreachable tcpdump saw,
    the source of the ICMP error trace's last reply row walked, and the report."""
    with tcpdump(*watch, "icmp") as seen:
        rc, d = traced(lab, *args)
    got = [m.group(1) for m in map(SEEN.search, seen) if m]
    assert rc == 1 and len(got) == 1, (seen, d["lost"])
    rows = d["reply_hops"]
    assert rows and rows[0]["kind"] == "reject" and rows[-1]["seen"], [(h["kind"], h["seen"]) for h in rows]
    walked = WALKED.match(rows[-1]["observe"]["flow"])
    assert walked is not None, rows[-1]["observe"]
    return got[0], walked.group(1), d


@pytest.mark.parametrize("inbound", ["0", "1"])
def test_a_policy_reject_of_a_datagram_from_across_the_overlay(lab, inbound):
    """n2 routes the client back by the underlay (a /32 via n1's address, out of eth0) though its datagram came in
    on flannel.1: the answer comes from eth0's address with the sysctl 0, from flannel.1's with 1."""
    n2, client = f"{lab}-n2", ipv4_of(f"{lab}-client", "eth0")
    expected = ipv4_of(n2, "flannel.1" if inbound == "1" else "eth0")
    with changed(n2, [f"{client}/32", "via", ipv4_of(f"{lab}-n1", "eth0"), "dev", "eth0"], inbound):
        seen, walked, d = answered_from(lab, (f"{lab}-client", "eth0"), "client", "web", "--proto", "udp", "--port",
                                        "5353")
    assert seen == walked == expected, (seen, walked, expected)
    said = "an address of flannel.1, the device the request came in by" if inbound == "1" else \
        "the address its route to the client picks"
    assert f"from {expected}, {said}" in d["reply_hops"][0]["decision"], d["reply_hops"][0]["decision"]


@pytest.mark.parametrize("inbound", ["0", "1"])
def test_kube_proxys_reject_of_a_pods_request_to_a_cluster_ip_without_endpoints(lab, inbound):
    """n1's route back to the client picks n1's underlay address (a host route with that source): the answer comes
    from it with the sysctl 0, from cni0's address (the device the request came in by) with 1."""
    n1, client = f"{lab}-n1", ipv4_of(f"{lab}-client", "eth0")
    expected = ipv4_of(n1, "cni0" if inbound == "1" else "eth0")
    with changed(n1, [f"{client}/32", "dev", "cni0", "src", ipv4_of(n1, "eth0")], inbound):
        seen, walked, d = answered_from(lab, (f"{lab}-client", "eth0"), "client", "svc/empty", "--port", "80")
    assert seen == walked == expected, (seen, walked, expected)
    assert d["refused"] and "has no endpoints" in d["refused"], d["refused"]


def test_a_nodes_own_request_is_answered_from_its_own_source_whatever_the_sysctl_says(lab):
    """n1 sends to the ClusterIP from cni0's address (the route to it says so) out of eth0; with the sysctl 1 the
    answer still comes from that source, to itself, through lo: an output route is no inbound device's."""
    n1 = f"{lab}-n1"
    gw = ipv4_of(n1, "cni0")
    underlay_gw = in_netns(n1, "ip", "-4", "route", "show", "default", check=True).stdout.split()[2]
    with changed(n1, ["10.96.0.40/32", "via", underlay_gw, "dev", "eth0", "src", gw], "1"):
        seen, walked, d = answered_from(lab, (n1, "lo"), "n1", "svc/empty", "--port", "80")
    assert seen == walked == gw, (seen, walked, gw)
    assert d["reply_hops"][-1]["device"] == "lo" and d["reply_hops"][-1]["netns"] == n1
