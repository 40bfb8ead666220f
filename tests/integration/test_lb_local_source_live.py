"""A passthrough load balancer, with real connections and the kernel's own routes (root), in both kube-proxy modes.

The internet's gateway routes each LoadBalancer IP to the nodes (plan/internet.py, as MetalLB in BGP mode): a
multipath route via the underlay addresses of the nodes whose health check answers 200 (a plain route when that is
one node), no NAT on the way. So an internet host's connection reaches a node still addressed to the LoadBalancer
IP, where kube-proxy's "<svc> loadbalancer IP" rule (nftables: its service-ips element) DNATs it: with
externalTrafficPolicy Local the endpoint sees the internet host's own address, with Cluster the node's masquerade.
loadBalancerSourceRanges are the node's kube-proxy's to enforce, which sees the client: a host outside them is
dropped there (its counter in the node's rules), with no filter at the gateway. `status` sees the routes: a hop
changed by hand is drift, `up` puts the route back. (Before, a one-armed balancer namespace DNATed to a nodePort
and masqueraded: the endpoint saw the balancer's address also with Local.)
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from breaking import assert_as_planned
from helpers import in_netns, lab_up, netlab, unique_lab, write_topology
from netlab.model.lab import resolve
from netlab.model.load import load_topology

pytestmark = pytest.mark.root

INSIDE, OUTSIDE = "203.0.113.50", "203.0.113.160"
LOCAL_IP, CLUSTER_IP = "203.0.113.100", "203.0.113.101"

TOPO = """\
name: {name}
cluster: {{kubeProxyMode: {mode}}}
nodes: [{{name: n1}}, {{name: n2}}, {{name: n3}}]
internet:
  hosts: [{{name: inside, ip: {inside}}}, {{name: outside, ip: {outside}}}]
pods:
  - {{name: web-1, node: n1, labels: {{app: web}}}}
  - {{name: web-2, node: n2, labels: {{app: web}}}}
services:
  - name: loc
    type: LoadBalancer
    externalTrafficPolicy: Local
    selector: {{app: web}}
    loadBalancerIP: {local}
    loadBalancerSourceRanges: [203.0.113.0/26]
    ports: [{{port: 80, targetPort: 8080}}]
  - name: clu
    type: LoadBalancer
    selector: {{app: web}}
    loadBalancerIP: {cluster}
    ports: [{{port: 80, targetPort: 8080}}]
"""


def fetch(client: str, url: str, timeout: float = 3):
    return in_netns(client, "curl", "-s", "-m", str(timeout), url, timeout=timeout + 7)


def seen_from(client: str, url: str) -> tuple[str, str]:
    """(the endpoint pod, the client address its echo server reports) for one connection to ``url``."""
    got = fetch(client, url)
    assert got.returncode == 0, (url, got.returncode, got.stderr)
    answer = json.loads(got.stdout.strip().splitlines()[-1])
    return answer["pod"], answer["client"].rsplit(":", 1)[0]


def gateway_route(gw: str, ip: str) -> dict:
    routes = json.loads(in_netns(gw, "ip", "-j", "route", "show", check=True).stdout)
    (route,) = [r for r in routes if r["dst"] == ip]
    return route


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_the_gateway_routes_lb_ips_to_the_healthy_nodes_and_local_keeps_the_client(tmp_path, mode):
    name = unique_lab("lp")
    path = write_topology(tmp_path, TOPO.format(name=name, mode=mode, inside=INSIDE, outside=OUTSIDE,
                                                local=LOCAL_IP, cluster=CLUSTER_IP))
    lab = resolve(load_topology(path))
    n1, n2, n3 = (str(n.ip) for n in lab.nodes)
    gw, inside = f"{name}-gateway", f"{name}-inside"
    with lab_up(path, name, in_process=True):
        assert_as_planned(name)
        # The kernel's routes: Local's IP to the nodes whose health check answers 200 (n1, n2: n3 has no endpoint),
        # Cluster's to every node; no balancer namespace, no NAT rule of the gateway's for them.
        assert {h["gateway"] for h in gateway_route(gw, LOCAL_IP)["nexthops"]} == {n1, n2}
        assert {h["gateway"] for h in gateway_route(gw, CLUSTER_IP)["nexthops"]} == {n1, n2, n3}
        assert all(h["dev"] == "eth0" for h in gateway_route(gw, CLUSTER_IP)["nexthops"])
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
        assert f"{name}-lb" not in listed.split() and f"{name}-gateway" in listed.split()
        assert LOCAL_IP not in in_netns(gw, "iptables-save", check=True).stdout
        sysctl = in_netns(gw, "sysctl", "-n", "net.ipv4.fib_multipath_hash_policy", "net.ipv4.conf.inet0.proxy_arp",
                          check=True).stdout.split()
        assert sysctl == ["3", "1"], sysctl

        # Local: the endpoint sees the internet host's own address, on whichever node the gateway's hash picked.
        seen = {seen_from(inside, f"http://{LOCAL_IP}/") for _ in range(8)}
        assert {client for _, client in seen} == {INSIDE}, seen
        # Cluster: the node masquerades it: an address of a node's, never the host's.
        for _ in range(4):
            _, client = seen_from(inside, f"http://{CLUSTER_IP}/")
            assert client not in (INSIDE, LOCAL_IP, CLUSTER_IP) and client.startswith("10.244."), client

        # loadBalancerSourceRanges: the node's kube-proxy drops a host outside them (curl times out), and counts it.
        assert fetch(f"{name}-outside", f"http://{LOCAL_IP}/", 2).returncode == 28
        dropped = 0
        for node in ("n1", "n2"):
            if mode == "iptables":
                saved = in_netns(f"{name}-{node}", "iptables-save", "-c", "-t", "filter", check=True).stdout
                dropped += sum(int(m.group(1)) for m in re.finditer(
                    r"^\[(\d+):\d+\] -A KUBE-PROXY-FIREWALL .*default/loc.* -j DROP", saved, re.M))
            else:
                listed = in_netns(f"{name}-{node}", "nft", "list", "table", "ip", "kube-proxy", check=True).stdout
                dropped += sum(1 for line in listed.splitlines() if "ip saddr != 203.0.113.0/26 drop" in line)
        assert dropped >= 1, dropped

        # status sees the routes: a hop changed by hand is drift; up puts the route back.
        in_netns(gw, "ip", "route", "replace", f"{CLUSTER_IP}/32", "proto", "boot", "nexthop", "via", n1, "dev", "eth0",
                 "nexthop", "via", n2, "dev", "eth0", check=True)
        st = netlab("status", "--lab", name, check=False)
        assert st.returncode != 0 and f"route {CLUSTER_IP}/32 nexthop via" in st.stdout, st.stdout
        assert f"nexthops {n1}, {n2} (want {n1}, {n2}, {n3})" in st.stdout, st.stdout
        netlab("up", "-t", path)
        assert {h["gateway"] for h in gateway_route(gw, CLUSTER_IP)["nexthops"]} == {n1, n2, n3}
        assert_as_planned(name)
