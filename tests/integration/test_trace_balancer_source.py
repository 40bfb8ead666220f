"""trace of a LoadBalancer flow a NetworkPolicy refuses, on a real lab (root): the policy verdict names the source
address the endpoint's node really sees, the internet host's own.

The internet's gateway routes each LoadBalancer IP to the nodes untranslated (a passthrough balancer): no
masquerade on the way, so the node judges the packet with the client's address. (Before, a one-armed balancer
masqueraded it with one of its addresses, which the verdict had to read from the balancer's conntrack entry.)
"""

from __future__ import annotations

import json
import re

import pytest

from helpers import ip_json, netlab
from netlab.model.echo_ports import DEFAULT_ECHO_PORT

pytestmark = pytest.mark.root

WEB_PORT = DEFAULT_ECHO_PORT[0]


def topology(lab: str, services: int) -> str:
    """One node (the gateway can only route to it), web-1 admitting only role=client pods, ``services`` LBs. UDP:
    the policy's REJECT answers with an ICMP error, which leaves the node's conntrack entry to be read (a TCP
    reset would close it)."""
    lbs = "\n".join(f"  - {{name: web-lb{i}, type: LoadBalancer, selector: {{app: web}}, "
                    f"ports: [{{port: {80 + i}, protocol: UDP, targetPort: {WEB_PORT}, nodePort: {30080 + i}}}]}}"
                    for i in range(services))
    return f"""name: {lab}
nodes: [{{name: n1}}]
pods:
  - {{name: web-1, node: n1, labels: {{app: web}}}}
services:
{lbs}
internet:
  cidr: 203.0.113.0/24
  gateway: {{ip: 203.0.113.1}}
  hosts: [{{name: example, ip: 203.0.113.10}}]
networkPolicies:
  - name: web-from-clients
    spec:
      podSelector: {{matchLabels: {{app: web}}}}
      ingress: [{{from: [{{podSelector: {{matchLabels: {{role: client}}}}}}]}}]
"""


def test_the_verdict_names_the_internet_hosts_own_address(labs):
    lab = labs.name("trw")
    labs.up(topology(lab, 1))
    labs.up(topology(lab, 2), "topo.yaml", "--reconfigure")  # a Service added to a running lab: its route comes too
    routes = ip_json("route", "show", netns=f"{lab}-gateway")
    assert len([r for r in routes if r["dst"].startswith("203.0.113.") and r.get("gateway")]) == 2, routes
    for svc in ("web-lb0", "web-lb1"):
        proc = netlab("trace", "--lab", lab, "example", f"svc/{svc}", "-o", "json", check=False, timeout=60)
        assert proc.returncode == 1, proc.stderr
        d = json.loads(proc.stdout)
        # What the node saw: the packet arrived with the host's own address (its capture at n1's eth0).
        arrived = next(h for h in d["hops"] if h["netns"] == f"{lab}-n1" and h["device"] == "eth0" and h["seen"])
        assert re.search(r"IP \(ttl \d+\) 203\.0\.113\.10\.\d+ > ", arrived["evidence"]), arrived
        [verdict] = d["policy"]
        assert (verdict["pod"], verdict["allowed"], verdict["node"]) == ("default/web-1", False, "n1"), verdict
        assert "it comes from 203.0.113.10, example's own address" in verdict["text"], verdict["text"]
        assert "load balancer" not in verdict["text"], verdict["text"]
