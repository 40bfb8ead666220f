"""The lab of the nodePort refusal tests, on the fake kernel (tests/unit/test_trace_nodeport_refusals.py) and on a
real one (tests/integration/test_trace_nodeport_refusals_live.py): n2 has no endpoint of web (externalTrafficPolicy
Local: kube-proxy drops an outside client's packet to its nodePort, 30081) and Service empty has none at all (its
nodePort 30082 is refused); the internet host client sends to them. ``TOPOLOGY.format(lab=..., mode=...)``."""

from __future__ import annotations

TOPOLOGY = """name: {lab}
cluster: {{kubeProxyMode: {mode}}}
nodes: [{{name: n1}}, {{name: n2}}]
internet:
  hosts: [{{name: client, ip: 203.0.113.50}}]
pods:
  - {{name: web, node: n1, labels: {{app: web}}}}
  - {{name: other, node: n2}}
services:
  - {{name: web, type: NodePort, externalTrafficPolicy: Local, selector: {{app: web}},
     ports: [{{port: 80, targetPort: 8080, nodePort: 30081}}]}}
  - {{name: empty, type: NodePort, selector: {{app: none}}, ports: [{{port: 80, nodePort: 30082}}]}}
"""
