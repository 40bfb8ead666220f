"""include: of a kind: List (and NetworkPolicyList, NamespaceList), as kubectl apply -f takes it: every item an
object of its own, validated at its own place (file:line: items[i].field), lists in lists flattened, and a List
holding something that cannot be included refused at that item, on one line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from netlab.errors import TopologyError
from netlab.model.load import load_topology

TOPO = "name: npl\nnodes: [{name: n1}]\npods: [{name: a, namespace: x, node: n1, labels: {pod: a}}]\n"

# What `kubectl get namespace,networkpolicy -o yaml` writes: one List, server-set fields and all.
LIST = """\
apiVersion: v1
kind: List
metadata:
  resourceVersion: ""
items:
- apiVersion: v1
  kind: Namespace
  metadata:
    name: x
    labels: {team: blue}
    uid: 3a1f
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: deny-all, namespace: x, generation: 1}
  spec: {podSelector: {}, policyTypes: [Ingress]}
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicyList
  items:
  - metadata: {name: from-blue, namespace: x}
    spec:
      podSelector: {matchLabels: {pod: a}}
      ingress: [{from: [{namespaceSelector: {matchLabels: {team: blue}}}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: after-the-list, namespace: x}
spec: {podSelector: {}}
"""


def write(tmp_path, files: dict[str, str]) -> str:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "topo.yaml").write_text(TOPO + f"include: [{', '.join(files)}]\n")
    return str(tmp_path / "topo.yaml")


def errors(path: str) -> list[str]:
    with pytest.raises(TopologyError) as info:
        load_topology(path)
    return [str(p) for p in info.value.problems]


def test_a_list_is_its_items(tmp_path):
    topo = load_topology(write(tmp_path, {"all.yaml": LIST}))
    assert [(n.name, n.labels) for n in topo.namespaces] == [("x", {"team": "blue"})]
    assert [p.name for p in topo.network_policies] == ["deny-all", "from-blue", "after-the-list"]
    # the typed list's item took its kind and apiVersion from the list
    assert topo.network_policies[1].spec.ingress[0].from_[0].namespace_selector.match_labels == {"team": "blue"}


def test_an_items_problem_names_the_file_line_and_its_place_in_the_list(tmp_path):
    bad = LIST.replace("matchLabels: {team: blue}", "matchExpressions: [{key: team, operator: In}]")
    bad = bad.replace("policyTypes: [Ingress]", "policyTypes: [Ingres]")
    errs = errors(write(tmp_path, {"all.yaml": bad}))
    assert any("all.yaml:15: items[1].spec.policyTypes[0]: " in e and "'Ingress'" in e for e in errs), errs
    assert any("all.yaml:22: items[2].items[0].spec.ingress[0].from[0].namespaceSelector.matchExpressions[0]: "
               "operator In needs a non-empty values: list" in e for e in errs), errs
    assert len(errs) == 2, errs


@pytest.mark.parametrize("items,line,field,expect", [
    ("- {apiVersion: v1, kind: Service, metadata: {name: web}}\n", 4, "items[0].kind",
     "kind 'Service' cannot be included; include NetworkPolicy or Namespace manifests"),
    ("- {apiVersion: v1, kind: Namespace, metadata: {name: ok}}\n- {metadata: {name: y}}\n", 5, "items[1].kind",
     "missing; an included file needs kind: NetworkPolicy or kind: Namespace"),
    ("- just text\n", 4, "items[0]", "an item of a list is a manifest, a mapping"),
    ("- {apiVersion: v1, kind: PodList, items: []}\n", 4, "items[0].kind",
     "kind 'PodList' cannot be included; a document with items: is a list"),
])
def test_what_cannot_be_included_is_refused_at_its_item(tmp_path, items, line, field, expect):
    errs = errors(write(tmp_path, {"l.yaml": "apiVersion: v1\nkind: List\nitems:\n" + items}))
    assert len(errs) == 1 and errs[0].startswith(f"{tmp_path}/l.yaml:{line}: {field}: {expect}"), errs


@pytest.mark.parametrize("text,line,field,expect", [
    ("apiVersion: v1\nkind: ServiceList\nitems: []\n", 2, "kind",
     "kind 'ServiceList' cannot be included; a document with items: is a list"),
    ("apiVersion: networking.k8s.io/v1\nkind: List\nitems: []\n", 1, "apiVersion",
     "List is apiVersion v1, not 'networking.k8s.io/v1'"),
    ("items: []\n", 1, "kind", "missing; a document with items: is a list"),
    ("apiVersion: v1\nkind: List\nitems: {a: 1}\n", 3, "items", "must be a list of manifests, not a mapping"),
    ("apiVersion: v1\nkind: List\nspec: {}\nitems: []\n", 3, "spec", "is not a field here"),
])
def test_a_bad_list_is_refused_on_one_line(tmp_path, text, line, field, expect):
    errs = errors(write(tmp_path, {"l.yaml": text}))
    assert len(errs) == 1 and errs[0].startswith(f"{tmp_path}/l.yaml:{line}: {field}: ") and expect in errs[0], errs


def test_an_empty_list_adds_nothing(tmp_path):
    topo = load_topology(write(tmp_path, {"l.yaml": "apiVersion: v1\nkind: List\nitems: []\n---\n"
                                                    "apiVersion: v1\nkind: List\nitems:\n"}))
    assert topo.network_policies == [] and topo.namespaces == []


def test_duplicates_across_a_list_and_a_file_are_located(tmp_path):
    again = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny-all, namespace: x}\n" \
            "spec: {podSelector: {}}\n"
    errs = errors(write(tmp_path, {"all.yaml": LIST, "again.yaml": again}))
    assert errs == [f"{tmp_path}/again.yaml:3: metadata.name: NetworkPolicy x/deny-all is already defined at "
                    f"{tmp_path}/all.yaml:14; rename or remove one"], errs


def test_validate_refuses_a_list_item_on_one_line_exit_2(tmp_path):
    path = write(tmp_path, {"l.yaml": "apiVersion: v1\nkind: List\nitems:\n"
                                      "- {apiVersion: v1, kind: ConfigMap, metadata: {name: c}}\n"})
    run = subprocess.run([sys.executable, "-m", "netlab", "validate", "-t", path], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 2 and "Traceback" not in run.stderr, run
    lines = (run.stdout + run.stderr).strip().splitlines()
    assert lines == [f"{tmp_path}/l.yaml:4: items[0].kind: kind 'ConfigMap' cannot be included; include "
                     "NetworkPolicy or Namespace manifests"], lines
