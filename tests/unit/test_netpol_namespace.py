"""A policy in a namespace the cluster does not have is refused, as the API server refuses it (``namespaces "x"
not found``), at the field where the namespace was written, inline or in an included file (model/include.py). A
cluster has its own namespaces, those namespaces: declares (or an included Namespace), and those its pods and
Services are in (dnsrecords.existing_namespaces)."""

from __future__ import annotations

import json

import pytest
from cli_inprocess import run_cli
from helpers import located_problems
import yaml

from netlab.api.topology import load
from netlab.errors import TopologyError

HEAD = """name: pnm
nodes: [{name: n1}, {name: n2}]
pods:
  - {name: web, node: n1, namespace: x, labels: {app: web}}
  - {name: cli, node: n2, namespace: y, labels: {app: cli}}
"""


def test_a_policy_in_a_namespace_nobody_has_is_one_line_at_its_namespace_field_exit_2(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(HEAD + "networkPolicies:\n  - name: deny\n    namespace: xx\n    spec: {podSelector: {}}\n")
    proc = run_cli("validate", "-t", str(path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc
    assert proc.stderr.splitlines() == [
        f"{path}:8: networkPolicies[0].namespace: NetworkPolicy xx/deny: namespace 'xx' does not exist (no pod or "
        "Service is in it and namespaces: does not list it), so the API server refuses the policy (namespaces "
        "\"xx\" not found); did you mean 'x'? Else declare the namespace under namespaces: (or include its "
        "Namespace manifest)"]
    got = json.loads(run_cli("validate", "-t", str(path), "-o", "json").stdout)
    assert [(p["line"], p["field"]) for p in got["problems"]] == [(8, "networkPolicies[0].namespace")]


def test_an_included_policy_in_a_namespace_nobody_has_is_refused_at_its_own_files_line(tmp_path):
    (tmp_path / "pol").mkdir()
    (tmp_path / "pol" / "p.yaml").write_text(
        "apiVersion: v1\nkind: List\nitems:\n  - apiVersion: networking.k8s.io/v1\n    kind: NetworkPolicy\n"
        "    metadata:\n      name: deny\n      namespace: staging\n    spec: {podSelector: {}}\n")
    (tmp_path / "t.yaml").write_text(HEAD + "include: [pol/*.yaml]\n")
    proc = run_cli("validate", "-t", str(tmp_path / "t.yaml"))
    assert proc.returncode == 2, proc
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"{tmp_path / 'pol' / 'p.yaml'}:8: items[0].metadata.namespace: NetworkPolicy "
                           "staging/deny: namespace 'staging' does not exist"), line


@pytest.mark.parametrize("where", [
    "namespaces: [{name: staging}]\n",  # declared
    "services: [{name: s, namespace: staging, selector: {app: web}, ports: [{port: 80}]}]\n",  # a Service's
    "include: [ns.yaml]\n",  # an included Namespace manifest
])
def test_a_namespace_the_cluster_has_takes_the_policy(tmp_path, where):
    (tmp_path / "ns.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: staging}\n")
    text = HEAD + where + "networkPolicies:\n  - {name: p, namespace: staging, spec: {podSelector: {}}}\n"
    assert located_problems(text, tmp_path) == []


@pytest.mark.parametrize("ns", ["default", "kube-system", "kube-public", "kube-node-lease"])
def test_every_clusters_own_namespaces_exist(tmp_path, ns):
    text = HEAD + f"networkPolicies:\n  - {{name: p, namespace: {ns}, spec: {{podSelector: {{}}}}}}\n"
    assert located_problems(text, tmp_path) == []


def test_a_dict_topology_names_the_namespace_field():
    data = yaml.safe_load(HEAD + "networkPolicies: [{name: p, namespace: nope, spec: {podSelector: {}}}]\n")
    with pytest.raises(TopologyError) as err:
        load(data)
    (problem,) = err.value.problems
    assert problem.field == "networkPolicies[0].namespace" and "namespace 'nope' does not exist" in problem.message
