"""`expect:` entries to a node's nodePort pass `netlab probe` as the Service connections they are.

The node DNATs each connection to the Service's endpoint and masquerades it (KUBE-EXT) to its own address
towards that endpoint: cni0's when the endpoint is its own pod, flannel.1's when it is on another node. Judged
as connections to the node itself, all of them failed with "NAT: ... (rule 1, pod to pod: no NAT)" and
"(rule 3: ...)". The addresses the echo server saw are checked against the nodes' own (`ip -j addr`).
"""

from __future__ import annotations

import json

import pytest

from helpers import ipv4_of, lab_up, netlab, unique_lab, write_topology

pytestmark = pytest.mark.root

TOPO = """\
name: {name}
nodes: [{{name: n1}}, {{name: n2}}]
pods:
  - {{name: a, node: n1, labels: {{app: web}}}}
  - {{name: b, node: n2}}
  - {{name: c, node: n1}}
services:
  - name: web
    type: NodePort
    selector: {{app: web}}
    ports: [{{port: 80, targetPort: 8080, nodePort: 30080}}]
expect:
  - {{from: b, to: n1, proto: tcp, port: 30080}}
  - {{from: b, to: n2, proto: tcp, port: 30080}}
  - {{from: c, to: n1, proto: tcp, port: 30080}}
  - {{from: a, to: n1, proto: tcp, port: 30080}}
  - {{from: n2, to: n1, proto: tcp, port: 30080}}
"""


def test_expect_entries_to_a_nodeport_pass_with_the_nodes_masquerade(tmp_path):
    name = unique_lab("enp")
    path = write_topology(tmp_path, TOPO.format(name=name))
    with lab_up(path, name):
        proc = netlab("probe", "--lab", name, "--proto", "tcp", "-o", "json", check=False)
        data = json.loads(proc.stdout)
        entries = {(p["source"], p["destination"]): p for p in data["probes"] if p["reason"].startswith("expect[")}
        assert len(entries) == 5, sorted(entries)
        for key, p in entries.items():
            assert p["as_expected"] and p["observed"] == "reachable", (key, p["problems"], p["detail"])
            assert p["answered_by"] == "a" and p["server_address"].endswith(":8080"), (key, p)
            assert p["service"]["via"] == "NodePort" and p["service"]["node"] == key[1], (key, p)
        cni0_n1, vtep_n2 = ipv4_of(f"{name}-n1", "cni0"), ipv4_of(f"{name}-n2", "flannel.1")
        seen = {key: p["seen_client_address"].rsplit(":", 1)[0] for key, p in entries.items()}
        assert seen == {("b", "n1"): cni0_n1, ("c", "n1"): cni0_n1, ("a", "n1"): cni0_n1, ("n2", "n1"): cni0_n1,
                        ("b", "n2"): vtep_n2}, seen
        assert proc.returncode == 0, proc.stdout[-2000:]
