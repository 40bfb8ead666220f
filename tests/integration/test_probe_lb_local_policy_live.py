"""probe of a LoadBalancer with externalTrafficPolicy Local whose endpoints a NetworkPolicy isolates, on a real lab
(root): the gateway routes its IP only to the nodes with an endpoint of their own, which keep the internet host's
address (no masquerade), so each endpoint's policy is judged with the host's own address and the probe is made
(QA qa61p 1: it was left out, its note saying a NAT decides the address the endpoints see).
"""

from __future__ import annotations

import json

import pytest

from helpers import netlab, probe_failures
from netlab.model.echo_ports import DEFAULT_ECHO_PORT

pytestmark = pytest.mark.root

WEB_PORT = DEFAULT_ECHO_PORT[0]  # the pods' echo server


def topology(lab: str, allowed: str) -> str:
    """web-1 on n1, web-2 on n2 (both app web), a LoadBalancer of them with externalTrafficPolicy Local, and a
    policy letting in only ``allowed`` (a CIDR) to them."""
    return f"""name: {lab}
nodes: [{{name: n1}}, {{name: n2}}]
pods:
  - {{name: web-1, node: n1, labels: {{app: web}}}}
  - {{name: web-2, node: n2, labels: {{app: web}}}}
services:
  - {{name: lb, type: LoadBalancer, externalTrafficPolicy: Local, selector: {{app: web}},
     ports: [{{port: 80, targetPort: {WEB_PORT}}}]}}
internet:
  cidr: 203.0.113.0/24
  gateway: {{ip: 203.0.113.1}}
  hosts: [{{name: example, ip: 203.0.113.10}}]
networkPolicies:
  - name: from-internet
    spec:
      podSelector: {{matchLabels: {{app: web}}}}
      ingress: [{{from: [{{ipBlock: {{cidr: {allowed}}}}}]}}]
"""


def lb_rows(lab: str) -> tuple[int, dict, list[str]]:
    proc = netlab("probe", "--lab", lab, "-o", "json", check=False, timeout=120)
    report = json.loads(proc.stdout)
    rows = [r for r in report["probes"] if (r.get("service") or {}).get("via") == "LoadBalancer"]
    return proc.returncode, report, rows


def test_an_isolated_load_balancer_with_external_traffic_policy_local_is_probed(labs):
    lab = labs.name("plbl")
    labs.up(topology(lab, "203.0.113.0/24"))
    rc, report, rows = lb_rows(lab)
    assert rc == 0, probe_failures(report)
    assert [(r["source"], r["expected"], r["observed"]) for r in rows] == [("example", "reachable", "reachable")], rows
    assert not [n for n in report.get("notes", []) if "LoadBalancer" in n], report.get("notes")
    # the policy now lets in another network only: the host's packets are refused at either node
    labs.up(topology(lab, "198.51.100.0/24"))
    rc, report, rows = lb_rows(lab)
    assert rc == 0, probe_failures(report)
    assert [(r["source"], r["expected"], r["observed"]) for r in rows] == [
        ("example", "unreachable", "unreachable")], rows
