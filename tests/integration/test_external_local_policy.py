"""externalTrafficPolicy Local under a NetworkPolicy: `netlab probe` judges the client's own address, as the
kernel does.

The Service's endpoint runs on n1; its policy lets in the internet host's address only. An outside client of
n1's nodePort keeps its address (no masquerade under Local), so the internet host is answered and node n2 (its
eth0 address, kept) is refused by the policy's REJECT; n2's nodePort drops outside traffic (no endpoint of its
own). These probes were left out with a note before; real connections agree with each verdict.
"""

from __future__ import annotations

import json

import pytest

from helpers import in_netns, ipv4_of, lab_up, netlab, probe_failures, unique_lab, write_topology

pytestmark = pytest.mark.root

NODE_PORT = 30082

TOPO = """\
name: {name}
nodes: [{{name: n1}}, {{name: n2}}]
internet:
  hosts: [{{name: client, ip: 203.0.113.50}}]
pods:
  - {{name: web, node: n1, labels: {{app: web}}}}
services:
  - name: web
    type: NodePort
    externalTrafficPolicy: Local
    selector: {{app: web}}
    ports: [{{port: 80, targetPort: 8080, nodePort: {np}}}]
networkPolicies:
  - name: web-from-the-client
    spec:
      podSelector: {{matchLabels: {{app: web}}}}
      ingress: [{{from: [{{ipBlock: {{cidr: 203.0.113.50/32}}}}]}}]
"""


def curl(netns: str, url: str, timeout: float = 2) -> int:
    return in_netns(netns, "curl", "-s", "-m", str(timeout), url, timeout=timeout + 5).returncode


def test_local_nodeport_probes_judge_the_clients_own_address(tmp_path):
    name = unique_lab("elp")
    with lab_up(write_topology(tmp_path, TOPO.format(name=name, np=NODE_PORT)), name):
        proc = netlab("probe", "--lab", name, "--proto", "tcp", "-o", "json", check=False)
        report = json.loads(proc.stdout)
        got = {(p["source"], p["service"]["node"]): (p["expected"], p["observed"]) for p in report["probes"]
               if p.get("service") and p["service"]["via"] == "NodePort"}
        assert got == {("client", "n1"): ("reachable", "reachable"),
                       ("n2", "n1"): ("unreachable", "unreachable"),
                       ("n1", "n1"): ("reachable", "reachable"),
                       ("client", "n2"): ("unreachable", "unreachable"),
                       ("n1", "n2"): ("unreachable", "unreachable"),
                       ("n2", "n2"): ("unreachable", "unreachable")}, got
        assert not [n for n in report["not_probed"] if str(NODE_PORT) in n], report["not_probed"]
        assert proc.returncode == 0, probe_failures(report)
        # The kernel agrees: the internet host answered, n2 refused by the policy's REJECT (curl 7), and n2's
        # nodePort drops the internet host's packet (no local endpoint: curl's timeout, 28).
        n1, n2 = ipv4_of(f"{name}-n1", "eth0"), ipv4_of(f"{name}-n2", "eth0")
        assert curl(f"{name}-client", f"http://{n1}:{NODE_PORT}/") == 0
        assert curl(f"{name}-n2", f"http://{n1}:{NODE_PORT}/") == 7
        assert curl(f"{name}-client", f"http://{n2}:{NODE_PORT}/") == 28
