"""trace of a LoadBalancer flow a NetworkPolicy refuses, on a real lab (root): the policy verdict names the source
address the balancer's MASQUERADE really gave the packet, as the balancer's own conntrack entry says.

The balancer holds every LoadBalancer IP on its eth0, all in the internet's subnet: the first one added is the
primary, later ones secondaries, and MASQUERADE takes the primary. A Service added to a running lab adds its IP
as a secondary, so the plan's first address (the lowest) is not the one the kernel uses: the verdict named it.
"""

from __future__ import annotations

import json
import re

import pytest

from helpers import in_netns, ip_json, netlab
from netlab.model.echo_ports import DEFAULT_ECHO_PORT

pytestmark = pytest.mark.root

WEB_PORT = DEFAULT_ECHO_PORT[0]


def topology(lab: str, services: int) -> str:
    """One node (the balancer can only pick it), web-1 admitting only role=client pods, ``services`` LBs. UDP: the
    policy's REJECT answers with an ICMP error, which leaves the balancer's conntrack entry to be read (a TCP
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


def test_the_verdict_names_the_balancers_masquerade_source(labs):
    lab = labs.name("trw")
    labs.up(topology(lab, 1))
    labs.up(topology(lab, 2), "topo.yaml", "--reconfigure")  # the second Service's IP comes second
    lb = f"{lab}-lb"
    # The kernel's view: two addresses on the balancer's eth0, the first Service's primary, the second's secondary
    # (and lower: the plan lists it first).
    [eth0] = ip_json("-4", "addr", "show", "eth0", netns=lb)
    addrs = {a["local"]: a.get("secondary", False) for a in eth0["addr_info"]}
    assert len(addrs) == 2, addrs
    [primary] = [a for a, secondary in addrs.items() if not secondary]
    [other] = [a for a, secondary in addrs.items() if secondary]
    assert tuple(map(int, other.split("."))) < tuple(map(int, primary.split("."))), addrs
    for svc in ("web-lb0", "web-lb1"):
        proc = netlab("trace", "--lab", lab, "example", f"svc/{svc}", "-o", "json", check=False, timeout=60)
        assert proc.returncode == 1, proc.stderr
        d = json.loads(proc.stdout)
        sport = d["hops"][0]["observe"]["flow"].split(" → ")[0].rsplit(":", 1)[1]
        # The balancer's conntrack entry: the reply tuple's (the second) destination is the source its MASQUERADE
        # wrote.
        [entry] = [line for line in in_netns(lb, "conntrack", "-L", "-p", "udp", "--orig-port-src", sport,
                                             check=True).stdout.splitlines() if line.strip()]
        masq = re.findall(r"dst=(\S+)", entry)[1]
        assert masq == primary, entry
        [verdict] = d["policy"]
        assert (verdict["pod"], verdict["allowed"], verdict["node"]) == ("default/web-1", False, "n1"), verdict
        assert f"it comes from {masq}, the load balancer's address after its masquerade" in verdict["text"], \
            verdict["text"]
