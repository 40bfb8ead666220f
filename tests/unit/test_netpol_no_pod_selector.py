"""A NetworkPolicy without ``spec.podSelector`` is the empty selector, all the pods of its namespace, as the API
server takes it (LabelSelector is no pointer there; kubernetes/kubernetes#131354 made the docs and OpenAPI say
so). netlab refused it: "spec.podSelector: required field is missing", in a topology and in an included
manifest alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_inprocess import run_cli

from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.probe.policytable import evaluate

TOPO = """\
name: nps
nodes: [{name: n1}]
namespaces: [{name: x}]
pods:
  - {name: a, namespace: x, node: n1}
  - {name: c, namespace: x, node: n1, labels: {app: c}}
  - {name: b, node: n1}
"""
INLINE = TOPO + "networkPolicies:\n  - {name: default-deny, namespace: x, spec: {policyTypes: [Ingress]}}\n"
MANIFEST = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: x}
spec:
  policyTypes: [Ingress]
"""


def written(tmp_path: Path, inline: bool) -> str:
    if not inline:
        (tmp_path / "np.yaml").write_text(MANIFEST)
    (tmp_path / "topo.yaml").write_text(INLINE if inline else TOPO + "include: [np.yaml]\n")
    return str(tmp_path / "topo.yaml")


@pytest.mark.parametrize("inline", [True, False], ids=["topology", "manifest"])
def test_a_policy_without_pod_selector_selects_every_pod_of_its_namespace(tmp_path, inline):
    topo = load_topology(written(tmp_path, inline))
    (pol,) = topo.network_policies
    assert pol.spec.pod_selector.match_labels == {} and pol.spec.pod_selector.match_expressions == []
    verdicts = {(f.src, f.dst): f.allowed for f in evaluate(resolve(topo)).flows if f.proto == "tcp"}
    assert not verdicts[("b", "a")] and not verdicts[("b", "c")] and not verdicts[("a", "c")]  # x's pods: isolated
    assert verdicts[("a", "b")] and verdicts[("c", "b")]  # default's pod: no policy selects it


@pytest.mark.parametrize("inline", [True, False], ids=["topology", "manifest"])
def test_validate_takes_it_without_a_note(tmp_path, inline):
    res = run_cli("validate", "-t", written(tmp_path, inline), "-o", "json")
    assert res.returncode == 0, res.stdout + res.stderr
    assert json.loads(res.stdout)["valid"] and res.stderr == ""


def test_the_schema_does_not_require_it():
    schema = json.loads((Path(__file__).parents[2] / "schema" / "topology.schema.json").read_text())
    spec = schema["$defs"]["NetworkPolicySpec"]
    assert "podSelector" in spec["properties"] and "podSelector" not in spec.get("required", [])
