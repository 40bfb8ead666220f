"""A lab whose iptables rules are written with port options another way than iptables-save prints them is as
planned (root). The plan's rules here are patched to say ``--destination-port`` for ``--dport`` and to put
``--dport`` before a ``--sport`` (as a user's rule may be written); `up` restores them so in the node's namespace
(iptables-restore --noflush), iptables-save prints them back canonically, and status must see the same rules, not
every such rule missing and its printed form extra (plan/iptables_save.saved_rule kept the written order and names)."""

from __future__ import annotations

import pytest

from helpers import as_planned_here, in_netns, lab_up, unique_lab, write_topology
from netlab.plan import iptables

pytestmark = pytest.mark.root

TOPOLOGY = """name: {lab}
nodes:
  - {{name: n1, ip: 192.168.122.2}}
pods:
  - {{name: web, node: n1, labels: {{app: web}}}}
services:
  - {{name: web, selector: {{app: web}}, clusterIP: 10.96.0.20, ports: [{{port: 80, targetPort: 8080}}]}}
"""


def test_rules_written_with_long_port_options_out_of_order_are_as_planned(tmp_path, monkeypatch):
    written: list[str] = []
    add = iptables.Ruleset.add

    def add_written_otherwise(self, chain: str, spec: str) -> None:
        if " --dport " in spec:  # kube-proxy's "-m tcp -p tcp -d IP --dport 80": the long name, a source port after
            spec = spec.replace(" --dport ", " --destination-port ", 1).replace(" -j ", " --sport 1:65535 -j ", 1)
            written.append(f"-A {chain} {spec}")
        add(self, chain, spec)

    monkeypatch.setattr(iptables.Ruleset, "add", add_written_otherwise)
    lab = unique_lab("sm")
    path = write_topology(tmp_path, TOPOLOGY.format(lab=lab), f"{lab}.yaml")
    with lab_up(path, lab, in_process=True):
        assert written, "no planned rule has a --dport to write otherwise"
        saved = in_netns(f"{lab}-n1", "iptables-save", "-t", "nat", check=True).stdout
        held = [line for line in saved.splitlines() if "--sport 1:65535 --dport 80 " in line]
        assert held and "--destination-port" not in saved, saved  # restored as written, printed canonically
        assert as_planned_here(lab, path), drift_of(lab)


def drift_of(lab: str) -> str:
    from netlab import Lab

    return "\n".join(Lab(lab).status().drift)
