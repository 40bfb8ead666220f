"""An internet host's packet to a LoadBalancer IP on a real lab (root), in both kube-proxy modes: the internet's
gateway routes it to a node untranslated (a passthrough balancer, its multipath route's hop picked by a hash), and
the DNAT it meets on that node is kube-proxy's rule for the LoadBalancer IP, not a nodePort's.

Before, the lab's one-armed balancer DNATed the packet to a node's nodePort and masqueraded it. Now the kernel's
counters say: on the node the gateway picked, the KUBE-SERVICES rule for the LoadBalancer IP counts the trace's
packet and the KUBE-NODEPORTS rule counts nothing; the gateway's route row names the node the trace's packet went
to, and the row, its path and the result name the LoadBalancer IP's rule.
"""

from __future__ import annotations

import re

import pytest

from helpers import in_netns, lab_up, netlab, traced, unique_lab, write_topology

pytestmark = pytest.mark.root

LB, NODE_PORT = "203.0.113.254", 30082
TOPOLOGY = """name: {lab}
cluster: {{kubeProxyMode: {mode}}}
nodes: [{{name: n1}}, {{name: n2}}]
pods:
  - {{name: web, node: n1, labels: {{app: web}}}}
services:
  - {{name: web-lb, type: LoadBalancer, selector: {{app: web}}, loadBalancerIP: {lb},
     ports: [{{port: 80, targetPort: 8080, nodePort: {np}}}]}}
internet:
  cidr: 203.0.113.0/24
  gateway: {{ip: 203.0.113.1}}
  hosts: [{{name: client, ip: 203.0.113.50}}]
"""


@pytest.fixture(scope="module", params=["iptables", "nftables"])
def live(request, tmp_path_factory):
    lab = unique_lab("tc")
    text = TOPOLOGY.format(lab=lab, mode=request.param, lb=LB, np=NODE_PORT)
    path = write_topology(tmp_path_factory.mktemp("lbnp"), text, f"{lab}.yaml")
    with lab_up(path, lab):
        yield lab, request.param


def _counters(netns: str) -> dict[str, int]:
    """Each nat rule of kube-proxy's dispatch (KUBE-SERVICES, KUBE-NODEPORTS) -> its packets (iptables-save -c)."""
    out = {}
    for row in in_netns(netns, "iptables-save", "-c", "-t", "nat", check=True).stdout.splitlines():
        m = re.match(r"^\[(\d+):\d+\] (-A KUBE-(?:SERVICES|NODEPORTS) .*)$", row)
        if m:
            out[m.group(2)] = int(m.group(1))
    return out


def test_the_gateway_routes_the_packet_to_a_node_whose_lb_ip_rule_dnats_it_and_trace_says_so(live):
    lab, mode = live
    nodes = {n: in_netns(f"{lab}-{n}", "ip", "-4", "-br", "addr", "show", "eth0", check=True).stdout.split()[2]
             .split("/")[0] for n in ("n1", "n2")}
    before = {n: _counters(f"{lab}-{n}") for n in nodes} if mode == "iptables" else {}
    rc, d = traced(lab, "client", "svc/web-lb", "--port", "80")
    assert rc == 0 and d["delivered"] and d["reply_received"], (d["lost"], d["reply_lost"])
    [row] = [h for h in d["hops"] if h["kind"] == "dnat"]  # the node's alone: nothing translated it on the way
    node = row["netns"].removeprefix(f"{lab}-")
    # The gateway's route row: its multipath route to both nodes (Cluster: no health check) and the hop its hash
    # picked, the node that DNATed the packet.
    [route] = [h for h in d["hops"] if h["kind"] == "route" and h["netns"] == f"{lab}-gateway"]
    assert sorted(route["facts"]["hops"]) == sorted(nodes.values()) and route["facts"]["gateway"] == nodes[node], \
        route
    assert f"picked {nodes[node]} ({node})" in route["decision"], route["decision"]
    assert route["commands"][0].endswith(" dport 80") and " ipproto tcp sport " in route["commands"][0], route
    assert row["decision"].startswith(f"DNAT {LB}:80 → "), row["decision"]
    assert "Service default/web-lb picked endpoint web (" in row["decision"], row["decision"]
    ep = d["endpoint"]
    assert ep["via"] == row["facts"]["via"] == "LoadBalancer" and "node_port" not in row["facts"], row["facts"]
    chains = (r"PREROUTING → KUBE-SERVICES → KUBE-EXT-\w+ → KUBE-SVC-\w+ → KUBE-SEP-\w+"
              if mode == "iptables" else r"nat-prerouting → services → external-\S+ → service-\S+ → endpoint-\S+")
    assert re.search(rf": {chains}", ep["path"]), ep["path"]
    assert ep["path"].startswith(f"a packet from outside the cluster to the LoadBalancer IP {LB}:80, which the "
                                 "gateway routed to this node untranslated (a passthrough balancer)"), ep["path"]
    text = netlab("trace", "--lab", lab, "client", "svc/web-lb", "--port", "80", timeout=60).stdout
    result = next(line for line in text.splitlines() if line.startswith("result: "))
    assert f"(svc/web-lb's LoadBalancer IP {LB}:80 DNATed to {ep['endpoint_ip']}:8080)" in result, result
    if mode == "iptables":
        after = _counters(f"{lab}-{node}")
        moved = {line: after[line] - n for line, n in before[node].items() if after.get(line, n) != n}
        [lb_rule] = [line for line in moved if line.startswith("-A KUBE-SERVICES ") and f"-d {LB}/32 " in line]
        assert "loadbalancer IP" in lb_rule and moved[lb_rule] >= 1, moved
        assert not [line for line in moved if line.startswith("-A KUBE-NODEPORTS ")], moved
