"""trace from a node to 127.0.0.1 and a nodePort, against curl from the same node (root; both kube-proxy modes).

iptables mode serves nodePorts on the node's loopback (route_localnet=1; nat OUTPUT's KUBE-SERVICES sends local
destinations to KUBE-NODEPORTS, which DNATs, and the packet leaves masqueraded): curl gets the endpoint's answer
and trace walks it there. nftables mode does not (its nodeport-ips are the node's addresses): curl is refused, and
trace says why, without blaming a fault. A pod's 127.0.0.1 is its own loopback. trace refused them all: "127.0.0.1
is not an address of lab L" (qa58k #3).
"""

from __future__ import annotations

import json

import pytest

from helpers import in_netns, lab_up, traced, unique_lab, write_topology

pytestmark = pytest.mark.root

TOPOLOGY = """name: {lab}
cluster: {{kubeProxyMode: {mode}}}
nodes: [{{name: n1}}, {{name: n2}}]
pods:
  - {{name: web, node: n2, labels: {{app: web}}}}
  - {{name: client, node: n1}}
services:
  - {{name: web, type: NodePort, selector: {{app: web}}, ports: [{{port: 80, targetPort: 8080, nodePort: 30080}}]}}
"""


def curl(netns: str) -> tuple[int, str]:
    got = in_netns(netns, "curl", "-s", "-m", "3", "http://127.0.0.1:30080/", timeout=10)
    return got.returncode, got.stdout


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_a_nodes_localhost_node_port(tmp_path, mode):
    lab = unique_lab("trl")
    path = write_topology(tmp_path, TOPOLOGY.format(lab=lab, mode=mode), f"{lab}.yaml")
    with lab_up(path, lab):
        n1 = f"{lab}-n1"
        rc, out = curl(n1)
        rt, d = traced(lab, "n1", "127.0.0.1", "--port", "30080")
        assert d["dst"]["name"] == "the node's own loopback" and d["dst"]["ip"] == "127.0.0.1", d["dst"]
        if mode == "iptables":
            assert rc == 0 and json.loads(out.strip().splitlines()[-1])["pod"] == "web", (rc, out)
            assert rt == 0 and d["delivered"] and d["reply_received"], d["lost"]
            assert d["hops"][-1]["netns"] == f"{lab}-web", d["hops"][-1]
            dnat = next(h for h in d["hops"] if h["kind"] == "dnat")
            assert dnat["decision"].startswith("DNAT 127.0.0.1:30080 → ") and "KUBE-NODEPORTS" in dnat["decision"]
            masq = next(h for h in d["hops"] if h["decision"].startswith("MASQUERADE: source 127.0.0.1:"))
            assert masq["netns"] == n1, masq
        else:
            assert rc == 7, (rc, out)  # curl: connection refused (nothing listens on the loopback's port)
            assert rt == 1 and d["reply"] == "connection failed: Connection refused", (d["reply"], d["lost"])
            assert d["refused"].startswith(f"no socket listens on tcp port 30080 in {n1}"), d["refused"]
            row = d["hops"][0]
            assert "kube-proxy in nftables mode serves no nodePort on 127.0.0.1" in row["decision"], row
            assert not any(h["problem"] for h in d["hops"]), [h["problem"] for h in d["hops"]]
        # a pod's 127.0.0.1 is its own loopback, where nothing listens on that port
        assert curl(f"{lab}-client")[0] == 7
        rt, d = traced(lab, "client", "127.0.0.1", "--port", "30080")
        assert d["dst"]["name"] == "the pod's own loopback" and rt == 1, d["dst"]
        assert d["refused"].startswith(f"no socket listens on tcp port 30080 in {lab}-client"), d["refused"]
