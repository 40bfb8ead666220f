"""A NetworkPolicy with no ``spec``, or an empty one (``spec:``, null), is what the API server takes: spec is
optional there (a struct, not a pointer), so left out it is the zero spec, whose defaults make it podSelector {}
and policyTypes [Ingress]: every pod of the policy's namespace isolated for ingress, all of it denied. netlab
refused both ("spec: required field is missing" / "has no value (null)"), inline and in an included manifest
alike (QA polfix 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_inprocess import run_cli

from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.probe.policytable import evaluate
from test_netpol_no_pod_selector import TOPO  # x's pods a and c (app: c), default's b, on one node

SPECS = {"missing": "", "null": "spec:\n", "tilde": "spec: ~\n", "empty": "spec: {}\n"}
HEAD = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny-all, namespace: x}\n"


def written(tmp_path: Path, inline: bool, spec: str) -> str:
    if inline:
        body = "".join("    " + line + "\n" for line in SPECS[spec].splitlines())
        text = TOPO + "networkPolicies:\n  - name: deny-all\n    namespace: x\n" + body
    else:
        (tmp_path / "np.yaml").write_text(HEAD + SPECS[spec])
        text = TOPO + "include: [np.yaml]\n"
    (tmp_path / "topo.yaml").write_text(text)
    return str(tmp_path / "topo.yaml")


@pytest.mark.parametrize("spec", sorted(SPECS))
@pytest.mark.parametrize("inline", [True, False], ids=["topology", "manifest"])
def test_a_policy_without_a_spec_denies_all_ingress_of_its_namespace(tmp_path, inline, spec):
    topo = load_topology(written(tmp_path, inline, spec))
    (pol,) = topo.network_policies
    assert pol.spec.pod_selector.match_labels == {} and pol.spec.pod_selector.match_expressions == []
    assert pol.spec.types == ("Ingress",) and pol.spec.ingress is None and pol.spec.egress is None
    verdicts = {(f.src, f.dst): f.allowed for f in evaluate(resolve(topo)).flows if f.proto == "tcp"}
    assert not verdicts[("b", "a")] and not verdicts[("b", "c")] and not verdicts[("c", "a")]  # x: no ingress
    assert verdicts[("a", "b")] and verdicts[("c", "b")]  # x's egress is not isolated; b no policy selects


@pytest.mark.parametrize("inline", [True, False], ids=["topology", "manifest"])
def test_validate_takes_it_without_a_note(tmp_path, inline):
    res = run_cli("validate", "-t", written(tmp_path, inline, "null"), "-o", "json")
    assert res.returncode == 0, res.stdout + res.stderr
    assert json.loads(res.stdout)["valid"] and res.stderr == ""


def test_a_spec_that_is_no_mapping_is_still_refused(tmp_path):
    (tmp_path / "topo.yaml").write_text(TOPO + "networkPolicies:\n  - {name: p, namespace: x, spec: [1]}\n")
    res = run_cli("validate", "-t", str(tmp_path / "topo.yaml"))
    assert res.returncode == 2 and "networkPolicies[0].spec" in res.stderr, res.stderr


def test_the_schema_does_not_require_it():
    schema = json.loads((Path(__file__).parents[2] / "schema" / "topology.schema.json").read_text())
    pol = schema["$defs"]["NetworkPolicy"]
    assert "spec" in pol["properties"] and "spec" not in pol.get("required", [])
