"""A lab in kube-proxy's nftables mode (root): its pictures and trace's rows say where the Service DNAT really is.

kube-proxy's DNAT there is nft's chain nat-prerouting (jump services) of table ip kube-proxy; the nodes' iptables
nat table holds no rule of kube-proxy's. `graph` and trace's pictures said "kube-proxy iptables DNAT", and the row
of a packet handed up at cni0 said "iptables PREROUTING (conntrack, the nat table's DNAT)".
"""

from __future__ import annotations

import json

import pytest

from helpers import in_netns, lab_up, netlab, unique_lab, write_topology

pytestmark = pytest.mark.root

TOPOLOGY = """name: {lab}
cluster: {{kubeProxyMode: nftables}}
nodes:
  - {{name: node-1, ip: 192.168.122.2}}
  - {{name: node-2, ip: 192.168.122.3}}
pods:
  - {{name: client, node: node-1}}
  - {{name: web, node: node-2, labels: {{app: web}}}}
services:
  - {{name: web, selector: {{app: web}}, clusterIP: 10.96.0.20, ports: [{{port: 80, targetPort: 8080}}]}}
"""
TITLE = "Services (kube-proxy nftables DNAT in every node)"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    name = unique_lab("nl")
    path = write_topology(tmp_path_factory.mktemp("nftpics"), TOPOLOGY.format(lab=name), f"{name}.yaml")
    with lab_up(path, name):
        yield name, path


def test_the_kernel_dnats_in_nft_only_and_graph_says_nftables(lab):
    name, path = lab
    ns = f"{name}-node-1"
    assert "KUBE-" not in in_netns(ns, "iptables-save", "-t", "nat", check=True).stdout
    chain = json.loads(in_netns(ns, "nft", "-j", "list", "chain", "ip", "kube-proxy", "nat-prerouting",
                                check=True).stdout)["nftables"]
    assert any(r.get("rule", {}).get("expr") == [{"jump": {"target": "services"}}] for r in chain), chain
    for args in (["-t", path], ["--lab", name, "-o", "dot"]):
        out = netlab("graph", *args).stdout
        assert TITLE in out and "kube-proxy iptables" not in out, out
    dot = netlab("trace", "--lab", name, "client", "svc/web", "-o", "dot", "-w", "-", timeout=120).stdout
    assert TITLE in dot and "kube-proxy iptables" not in dot


def test_the_row_at_cni0_names_the_nft_chain_that_dnats(lab):
    name, _ = lab
    proc = netlab("trace", "--lab", name, "client", "svc/web", "-o", "json", check=False, timeout=120)
    d = json.loads(proc.stdout)
    assert proc.returncode == 0 and d["delivered"], proc.stderr  # real traffic reached web through the DNAT
    assert d["endpoint"]["service"] and d["endpoint"]["endpoint_ip"].startswith("10.244.1."), d["endpoint"]
    row = next(h for h in d["hops"] if h["kind"] == "bridge" and h["device"] == "cni0"
               and h["netns"] == f"{name}-node-1" and "own" in h["decision"])
    assert "kube-proxy's DNAT in nft's chain nat-prerouting of table ip kube-proxy" in row["decision"], row
    assert "the nat table's DNAT" not in row["decision"], row
