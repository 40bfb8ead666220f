"""A Service trace in a lab with NetworkPolicies reads each node's filter table once a moment (root): the texts
read before and right after the packet for the policies' REJECT counters are the ones kube-proxy's rules are
judged on. Counted on a real trace, healthy and with the policy's allow rule deleted by hand (the REJECT that
counted the packet and the missing rule are named from that one read; the printed fix brings traffic back).
"""

from __future__ import annotations

from collections import Counter

import pytest

from helpers import as_planned, in_netns, lab_up, netlab, unique_lab, write_topology
from netlab import api
from netlab.errors import netlab_command, netlab_words
from netlab.kernel import iptables

pytestmark = pytest.mark.root

TOPOLOGY = """name: {lab}
nodes: [{{name: n1}}, {{name: n2}}]
pods:
  - {{name: web, node: n1, labels: {{app: web}}}}
  - {{name: c, node: n2, labels: {{role: client}}}}
services:
  - {{name: web, selector: {{app: web}}, clusterIP: 10.96.0.20, ports: [{{port: 80, targetPort: 8080}}]}}
networkPolicies:
  - name: allow-client
    spec:
      podSelector: {{matchLabels: {{app: web}}}}
      ingress:
        - from: [{{podSelector: {{matchLabels: {{role: client}}}}}}]
"""


def traced_counting(monkeypatch, lab: str) -> tuple[object, Counter]:
    """The trace, in this process, and how often each (namespace, table) was read with its counters (the moments
    before and after the packet; a lost packet's FORWARD policy is read on its own, without them)."""
    reads: Counter = Counter()
    save = iptables.save

    def counting(netns, table=None, backend=None, counters=False):
        reads[(netns, table)] += bool(counters)
        return save(netns, table, backend, counters)

    monkeypatch.setattr(iptables, "save", counting)
    try:
        return api.Lab.attach(lab).trace("c", "svc/web"), reads
    finally:
        monkeypatch.undo()


def curl(lab: str) -> int:
    return in_netns(f"{lab}-c", "curl", "-s", "-m", "2", "http://10.96.0.20/", timeout=10).returncode


def test_each_nodes_filter_table_is_read_once_before_and_once_after_the_packet(tmp_path, monkeypatch):
    lab = unique_lab("trf")
    path = write_topology(tmp_path, TOPOLOGY.format(lab=lab), f"{lab}.yaml")
    with lab_up(path, lab):
        t, reads = traced_counting(monkeypatch, lab)
        assert t.delivered and t.reply_received, t.lost
        for node in (f"{lab}-n1", f"{lab}-n2"):
            assert reads[(node, "filter")] == 2 and reads[(node, "nat")] == 2, reads
        # The policy's allow rule deleted by hand: the REJECT counts the packet, read from the same tables.
        rule = next(line for line in in_netns(f"{lab}-n1", "iptables-save", "-t", "filter", check=True)
                    .stdout.splitlines() if line.startswith("-A NETPOL-ING-") and "-j MARK" in line)
        in_netns(f"{lab}-n1", "iptables", "-D", *rule.split()[1:4], "-m", "comment", "--comment",
                 "default/allow-client ingress rule 1 peer 1", "-j", "MARK", "--set-xmark", "0x10000/0x10000",
                 check=True)
        assert curl(lab) != 0
        t, reads = traced_counting(monkeypatch, lab)
        assert not t.delivered and t.lost is not None and t.lost.netns == f"{lab}-n1", t.lost
        assert "REFUSED in node n1" in t.lost.reason and rule in t.lost.reason, t.lost.reason
        assert reads[(f"{lab}-n1", "filter")] == 2 and reads[(f"{lab}-n2", "filter")] == 2, reads
        assert t.lost.fix == netlab_command(f"up -t {path}"), t.lost.fix
        netlab(*netlab_words(t.lost.fix) or [])  # `up -t PATH`, as root already
        assert as_planned(lab) and curl(lab) == 0
