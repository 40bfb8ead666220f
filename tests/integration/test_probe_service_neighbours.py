"""A Services probe counts every neighbour entry its packets make (root, real namespaces, kube-proxy's rules).

A ClusterIP connection to an endpoint on the client's own bridge makes two entries the prober did not count (qa62s):
the endpoint's for its gateway (learned from the node's ARP request) and the client's for the endpoint (learned from
the endpoint's, as it answers the client over the bridge). The run never deleted them as it went (but where a pod
pair's unit that counts them ran meanwhile): a 40-pod lab's left 137 for the sweep at its end, a 200-pod lab's
overflowed the machine's table, this 22-pod lab's left 20. Counted, each is deleted
once no running probe needs it, and the sweep at the end finds nothing: the run's own accounting, whatever else
runs on the machine.
"""

from __future__ import annotations

import json

import pytest

from helpers import netlab, probe_failures, without_turn_waits

pytestmark = pytest.mark.root

PODS = 20  # on n1's bridge: their 190 pairs outgrow the run's budget, so the pairs run in waves before the Services'


def topology(lab: str) -> str:
    """20 pods on n1 (a Service each fourth of them, NodePort for one, an externalIP of policy Local for another: its
    endpoints on n1's bridge answer n1's pods over it, rev62), 2 on n2, each Service's endpoints on both."""
    pods = [f"  - {{name: p{i}, node: n1, labels: {{svc: s{i % 4}}}}}" for i in range(PODS)]
    pods += [f"  - {{name: q{i}, node: n2, labels: {{svc: s{i}}}}}" for i in range(2)]
    extra = {0: ", type: NodePort}", 1: ", externalIPs: [198.51.100.8], externalTrafficPolicy: Local}"}
    svcs = [f"  - {{name: s{k}, selector: {{svc: s{k}}}, ports: [{{port: 80, targetPort: 8080}}]" + extra.get(k, "}")
            for k in range(4)]
    return "\n".join([f"name: {lab}", "nodes: [{name: n1}, {name: n2}]", "pods:", *pods, "services:", *svcs, ""])


def test_a_services_probe_leaves_nothing_for_its_final_sweep(labs):
    lab = labs.name("sn")
    labs.up(topology(lab))
    proc = netlab("probe", "--lab", lab, "-o", "json", check=False)
    data = json.loads(proc.stdout)
    assert proc.returncode == 0 and not without_turn_waits(proc.stderr), proc.stderr + probe_failures(data)
    assert data["summary"]["distributions"] >= 1  # the 200-connection spread ran too (its units count the same)
    # every entry the run's Service probes and distributions made was counted, and deleted as it went
    assert data["neighbour_table"]["swept"] == 0, probe_failures(data)
