"""probe names the nodes' bridge of pods as the lab has it: cni0 (netlab's own, the reference list's), a
conflist's bridge plugin's own name (qnbr0), or the pods' gateway when the conflist makes no bridge (ptp)."""

from __future__ import annotations

import pytest

from helpers import CONFLIST, resolved, write_conflist
from netlab.plan.cniadd import pod_bridge
from netlab.probe import services as svcs
from netlab.probe.judge import Report, Result
from netlab.probe.report import rule_lines
from netlab.probe.tasks import Observation

BRIDGE = {"type": "bridge", "bridge": "qnbr0", "isGateway": True,
          "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.0.0/16"}]]}}
PTP = {"type": "ptp", "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.0.0/16"}]]}}


def lab_with(tmp_path, cni: str, plugins: list | None = None):
    if plugins is not None:
        write_conflist(tmp_path, plugins)
    return resolved(tmp_path, f"""name: wdbr
network: {{cni: {cni}}}
nodes: [{{name: n1}}]
pods:
  - {{name: web, node: n1, labels: {{app: web}}}}
  - {{name: cl, node: n1}}
services:
  - {{name: web, selector: {{app: web}}, ports: [{{port: 80, targetPort: 8080}}]}}
""")


@pytest.mark.parametrize("cni, plugins, bridge", [
    ("builtin", None, "cni0"), ("reference", None, "cni0"), (CONFLIST, [BRIDGE], "qnbr0"),
    (CONFLIST, [{k: v for k, v in BRIDGE.items() if k != "bridge"}], "cni0"),  # the bridge plugin's default
    (CONFLIST, [PTP], None)])
def test_the_hairpin_rule_and_the_rules_line_name_the_labs_bridge(tmp_path, cni, plugins, bridge):
    lab = lab_with(tmp_path, cni, plugins)
    assert pod_bridge(lab) == bridge
    plan = svcs.build(lab)
    (hairpin,) = [r for p in plan.probes if p.source.name == "web" and p.svc is not None and p.rules
                  for r in p.rules if r.answerer == "web"]
    words = f"{bridge} address" if bridge else "pod gateway address"
    assert f"masqueraded to n1's {words} 10.244.0.1 (KUBE-SEP marks it)" in hairpin.why
    probe = next(p for p in plan.probes if p.rules)
    report = Report("wdbr", 1.0, [Result(probe, Observation(outcome="reply", seen_client="10.244.0.2:1",
                                                            detail="connected"))], [], bridge=plan.bridge)
    (line,) = [x for x in rule_lines(report) if x.startswith("Service and egress NAT")]
    assert f"hairpin: its node's {bridge or 'pod gateway'};" in line and ("cni0" in line) == (bridge == "cni0")
    # externalTrafficPolicy Local keeps the client's address (qa54: the line said "a node's" for every NodePort)
    assert "a node's, or the client's own with externalTrafficPolicy Local;" in line
