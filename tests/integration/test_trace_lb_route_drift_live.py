"""The internet gateway's route for a LoadBalancer IP changed by hand (root, both kube-proxy modes): trace blames it.

The gateway routes a LoadBalancer IP to the nodes (plan/internet.py): for externalTrafficPolicy Local only to the
nodes with an endpoint of the Service's (their health check answers 200). A route replaced by hand to a node with
none sends an outside client there, whose kube-proxy drops the packet ("has no local endpoints"). trace used to blame
that node's kube-proxy, with no fix; it now marks the gateway's route row as the cause (its hops against the plan's),
with the plan's route as the fix, and the drop stays the row where the packet ended. `up` puts the route back and
trace is clean again.
"""

from __future__ import annotations

import json

import pytest

from helpers import in_netns, lab_up, netlab, traced, unique_lab, write_topology
from netlab.errors import netlab_command
from netlab.model.lab import resolve
from netlab.model.load import load_topology

pytestmark = pytest.mark.root

LB = "203.0.113.100"
TOPO = """\
name: {name}
cluster: {{kubeProxyMode: {mode}}}
nodes: [{{name: n1}}, {{name: n2}}, {{name: n3}}]
internet:
  hosts: [{{name: ext, ip: 203.0.113.50}}]
pods:
  - {{name: web-1, node: n1, labels: {{app: web}}}}
  - {{name: web-3, node: n3, labels: {{app: web}}}}
services:
  - name: clu
    type: LoadBalancer
    externalTrafficPolicy: Local
    selector: {{app: web}}
    loadBalancerIP: {lb}
    ports: [{{name: http, port: 80, targetPort: 8080}}]
"""


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_a_gateway_route_to_a_node_without_an_endpoint_is_named_with_the_plans_route(tmp_path, mode):
    name = unique_lab("lt")
    path = write_topology(tmp_path, TOPO.format(name=name, lb=LB, mode=mode))
    lab = resolve(load_topology(path))
    n1, n2, n3 = (str(n.ip) for n in lab.nodes)
    gw = f"{name}-gateway"
    with lab_up(path, name, in_process=True):
        rc, d = traced(name, "ext", "svc/clu")
        assert rc == 0 and d["delivered"], d["lost"]
        in_netns(gw, "ip", "route", "replace", LB, "nexthop", "via", n2, "dev", "eth0", check=True)
        rc, d = traced(name, "ext", "svc/clu")
        assert rc == 1 and not d["delivered"], d["lost"]
        row = next(h for h in d["hops"] if h["netns"] == gw and h["kind"] == "route")
        assert row["problem"] == (f"the gateway's route for {LB} sends it to n2, which the plan does not: the "
                                  "route's hops are n2 (want n1, n3)"), row
        assert row["fix"] == (f"ip -n {gw} route replace {LB}/32 nexthop via {n1} dev eth0 nexthop via {n3} "
                              "dev eth0"), row
        lost = d["lost"]
        assert lost["hop"] == row["index"], lost
        assert lost["fix"] == row["fix"] and "no endpoint on n2" in lost["reason"], lost
        drop = d["hops"][-1]
        # where it ended: n2's kube-proxy, which drops it (no local endpoint), and why it came there
        assert drop["netns"] == f"{name}-n2" and drop["facts"]["no_local_endpoints"], drop
        assert drop["problem"].endswith(f"; it came here because {row['problem']}"), drop
        text = netlab("trace", "--lab", name, "ext", "svc/clu", check=False)
        assert text.returncode == 1
        assert f"!! the gateway's route for {LB} sends it to n2" in text.stdout, text.stdout
        assert f"result: LOST at hop {row['index']} ({gw} eth0): the gateway's route" in text.stdout, text.stdout
        assert f"fix: ip -n {gw} route replace {LB}/32 nexthop via {n1}" in text.stdout, text.stdout
        assert netlab_command("up -t") in text.stdout, text.stdout
        # up puts the plan's route back, and trace finds nothing wrong
        netlab("up", "-t", path)
        [route] = json.loads(in_netns(gw, "ip", "-j", "route", "show", f"{LB}/32", check=True).stdout)
        assert {h["gateway"] for h in route["nexthops"]} == {n1, n3}, route
        rc, d = traced(name, "ext", "svc/clu")
        assert rc == 0 and d["delivered"] and d["lost"] is None and d["astray"] is None, d["lost"]
        assert not any(h["problem"] for h in d["hops"]), d["hops"]
