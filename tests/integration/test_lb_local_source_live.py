"""The client address a LoadBalancer's endpoint sees, as README.md says it, with real connections (root), in both
kube-proxy modes.

The lab's balancer (<lab>-lb) is one-armed: it DNATs to a node's nodePort and masquerades with its eth0's primary
address, so through the LoadBalancer IP the endpoint sees that address with externalTrafficPolicy Local (the node
keeps the source it got) and the node's masquerade with Cluster; only a nodePort of the endpoint's node keeps the
internet host's own address with Local. (A passthrough balancer, MetalLB's or a cloud's, would keep it through the
LoadBalancer IP too: the README says where the lab parts from it.)
"""

from __future__ import annotations

import json

import pytest

from helpers import in_netns, lab_up, unique_lab, write_topology
from netlab.model.lab import resolve
from netlab.model.load import load_topology

pytestmark = pytest.mark.root

HOST = "203.0.113.50"
LOCAL_IP, CLUSTER_IP = "203.0.113.100", "203.0.113.101"

TOPO = """\
name: {name}
cluster: {{kubeProxyMode: {mode}}}
nodes: [{{name: n1}}, {{name: n2}}]
internet:
  hosts: [{{name: client, ip: {host}}}]
pods:
  - {{name: web, node: n2, labels: {{app: web}}}}
services:
  - name: loc
    type: LoadBalancer
    externalTrafficPolicy: Local
    selector: {{app: web}}
    loadBalancerIP: {local}
    ports: [{{port: 80, targetPort: 8080}}]
  - name: clu
    type: LoadBalancer
    selector: {{app: web}}
    loadBalancerIP: {cluster}
    ports: [{{port: 80, targetPort: 8080}}]
"""


def seen_from(client: str, url: str) -> str:
    """The client address the endpoint's echo server reports for one connection to ``url``."""
    got = in_netns(client, "curl", "-s", "-m", "3", url, timeout=10)
    assert got.returncode == 0, (url, got.returncode, got.stderr)
    answer = json.loads(got.stdout.strip().splitlines()[-1])
    assert answer["pod"] == "web", answer
    return answer["client"].rsplit(":", 1)[0]


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_local_keeps_the_source_the_node_got(tmp_path, mode):
    name = unique_lab("lp")
    path = write_topology(tmp_path, TOPO.format(name=name, mode=mode, host=HOST, local=LOCAL_IP, cluster=CLUSTER_IP))
    lab = resolve(load_topology(path))
    n2 = str(lab.node("n2").ip)
    node_ports = {svc: lab.addressing.node_port[("default", svc, 80, "TCP")] for svc in ("loc", "clu")}
    client = f"{name}-client"
    with lab_up(path, name, in_process=True):
        # The balancer's primary address: the first of its eth0's addresses, which MASQUERADE takes.
        addrs = json.loads(in_netns(f"{name}-lb", "ip", "-j", "-4", "addr", "show", "dev", "eth0", check=True).stdout)
        primary = addrs[0]["addr_info"][0]["local"]
        assert primary in (LOCAL_IP, CLUSTER_IP), addrs

        # externalTrafficPolicy Local: through the LoadBalancer IP, the balancer's address; through the
        # endpoint node's nodePort, the internet host's own.
        assert {seen_from(client, f"http://{LOCAL_IP}/") for _ in range(4)} == {primary}
        assert seen_from(client, f"http://{n2}:{node_ports['loc']}/") == HOST

        # Cluster: the node masquerades again, through either way: neither the host's nor the balancer's address.
        for url in (f"http://{CLUSTER_IP}/", f"http://{n2}:{node_ports['clu']}/"):
            seen = seen_from(client, url)
            assert seen not in (HOST, LOCAL_IP, CLUSTER_IP), (url, seen)
