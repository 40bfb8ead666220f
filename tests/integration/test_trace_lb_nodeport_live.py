"""An internet host's packet to a LoadBalancer IP on a real lab (root), in both kube-proxy modes: the lab's balancer
DNATs it to a node's nodePort, and the DNAT it meets on that node is kube-proxy's nodePort rule, not its rule for
the LoadBalancer IP.

trace's result said "svc/web-lb:80 DNATed to <endpoint>" and the node's DNAT row "Service default/web-lb picked
endpoint web (KUBE-SVC-... → KUBE-SEP-...)", as if the node had matched the LoadBalancer IP. The kernel's counters
say otherwise: on that node, kube-proxy's KUBE-NODEPORTS rule for the nodePort counts the trace's packet and the
KUBE-SERVICES rule for the LoadBalancer IP counts nothing. The row, its path and the result now say the nodePort.
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


def test_the_balancers_packet_is_dnated_by_the_nodes_nodeport_rule_and_trace_says_so(live):
    lab, mode = live
    nodes = {n: in_netns(f"{lab}-{n}", "ip", "-4", "-br", "addr", "show", "eth0", check=True).stdout.split()[2]
             .split("/")[0] for n in ("n1", "n2")}
    before = {n: _counters(f"{lab}-{n}") for n in nodes} if mode == "iptables" else {}
    rc, d = traced(lab, "client", "svc/web-lb", "--port", "80")
    assert rc == 0 and d["delivered"] and d["reply_received"], (d["lost"], d["reply_lost"])
    [lb_row, row] = [h for h in d["hops"] if h["kind"] == "dnat"]
    assert lb_row["netns"] == f"{lab}-lb", lb_row  # the balancer's DNAT: LB IP -> a node's nodePort
    node = row["netns"].removeprefix(f"{lab}-")
    to = f"{nodes[node]}:{NODE_PORT}"
    assert row["decision"].startswith(f"DNAT {to} → "), row["decision"]
    assert f": the nodePort path, {NODE_PORT} on {nodes[node]} ({node}): Service default/web-lb picked endpoint " \
           "web (" in row["decision"], row["decision"]
    ep = d["endpoint"]
    # the Service's address the packet was sent to, in probe's words (QA q43 1): not the nodePort the node saw
    assert ep["via"] == row["facts"]["via"] == "LoadBalancer" and row["facts"]["node_port"] == to, row["facts"]
    chains = (r"PREROUTING → KUBE-SERVICES → KUBE-NODEPORTS → KUBE-EXT-\w+ → KUBE-SVC-\w+ → KUBE-SEP-\w+"
              if mode == "iptables" else
              r"nat-prerouting → services → map service-nodeports → external-\S+ → service-\S+ → endpoint-\S+")
    assert re.search(rf"\({chains}\)", row["decision"]) and re.search(rf": {chains}", ep["path"]), \
        (row["decision"], ep["path"])
    assert ep["path"].startswith(f"a packet to {node}'s nodePort {to}, where the load balancer holding its "
                                 f"LoadBalancer IP {LB}:80 sends it"), ep["path"]
    # the result line (text): where the balancer sent it, and the DNAT there
    text = netlab("trace", "--lab", lab, "client", "svc/web-lb", "--port", "80", timeout=60).stdout
    result = next(line for line in text.splitlines() if line.startswith("result: "))
    assert re.search(rf"\(svc/web-lb's LoadBalancer IP {LB}:80, which the load balancer sent to n[12]'s nodePort "
                     rf"[\d.]+:{NODE_PORT}, DNATed there to {ep['endpoint_ip']}:8080\)", result), result
    assert "svc/web-lb:80 DNATed" not in result
    if mode == "iptables":
        after = _counters(f"{lab}-{node}")
        moved = {line: after[line] - n for line, n in before[node].items() if after.get(line, n) != n}
        [nodeport] = [line for line in moved if line.startswith("-A KUBE-NODEPORTS ")]
        assert f"--dport {NODE_PORT} " in nodeport and moved[nodeport] >= 1, moved
        assert not [line for line in moved if f"-d {LB}/32" in line], moved  # the LB IP's rule took nothing here
        said = re.search(rf"`{re.escape(nodeport)}` counted it \(its counter went up by (\d+) during the trace\)",
                         ep["path"])
        # trace reads the counter just around its packet, inside this test's window (which may hold more)
        assert said and 1 <= int(said.group(1)) <= moved[nodeport], (ep["path"], moved)
