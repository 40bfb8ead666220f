"""The state file of a lab that uses every feature at once passes the strict state schema whole (root, one lab).

A state byte for byte as this netlab wrote it is not checked again when it is read (realize/state_sum.py); one that
was edited, or written by another netlab, is checked whole, and anything the schema does not know makes it
"corrupt" (`down` exits 3). A record field added by one feature and not to the schema is only seen on that slower
path: the cluster DNS's `records` digest was. So: a lab with cluster DNS, a command container, a NetworkPolicy, a
LoadBalancer Service and a runtime impairment, its state checked whole after `up`, after `netlab impair` and after
an `up` that converges a changed file.
"""

from __future__ import annotations

import os

import pytest

from helpers import lab_up, netlab, unique_lab, write_topology
from netlab.realize.state_dir import STATE_ROOT
from netlab.realize.state_schema import check_state

pytestmark = pytest.mark.root

TOPOLOGY = """name: {lab}
nodes: [{{name: n1}}, {{name: n2}}]
pods:
  - {{name: web, node: n1, labels: {{app: web}}}}
  - name: job
    node: n2
    containers: [{{name: main, command: ["sh", "-c", "echo up; sleep 600"]}}]
{extra}
services:
  - {{name: web, selector: {{app: web}}, type: LoadBalancer, ports: [{{port: 80, targetPort: 8080}}]}}
internet: {{hosts: [{{name: client, ip: 203.0.113.50}}]}}
networkPolicies:
  - name: web-from-job
    spec:
      podSelector: {{matchLabels: {{app: web}}}}
      ingress: [{{from: [{{podSelector: {{}}}}]}}]
"""


def checked(lab: str) -> None:
    with open(os.path.join(STATE_ROOT, lab, "state.json"), "rb") as fh:
        check_state(fh.read(), lab)  # raises ValueError naming the field the schema refuses


def test_the_state_of_a_lab_with_every_feature_passes_the_schema_whole(tmp_path):
    lab = unique_lab("ssl")
    path = write_topology(tmp_path, TOPOLOGY.format(lab=lab, extra=""), f"{lab}.yaml")
    with lab_up(path, lab):
        checked(lab)
        netlab("impair", "--lab", lab, "web:eth0", "--rate", "20mbit")
        checked(lab)
        write_topology(tmp_path, TOPOLOGY.format(lab=lab, extra="  - {name: web-2, node: n2, labels: {app: web}}"),
                       f"{lab}.yaml")
        netlab("up", "-t", path)
        checked(lab)
