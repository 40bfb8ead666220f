"""Namespaces, NetworkPolicies and include: of Kubernetes manifests: what loads, and the
file:line:field of what does not (also inside included files)."""

from __future__ import annotations

import os

import pytest

from netlab.errors import TopologyError
from netlab.model.include import split_documents
from netlab.model.load import load_topology

TOPO = """\
name: npm
nodes: [{name: n1}]
namespaces:
  - {name: x, labels: {ns: x}}
pods:
  - {name: a, namespace: x, node: n1, labels: {pod: a}}
  - {name: b, node: n1}
networkPolicies:
  - name: deny-all-ingress
    namespace: x
    spec: {podSelector: {}, policyTypes: [Ingress]}
"""

MANIFESTS = """\
# two documents, as kubectl apply -f takes them
apiVersion: v1
kind: Namespace
metadata:
  name: y
  labels: {ns: y}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-y
  namespace: x
  uid: 8f2c  # server-set fields of a kubectl get -o yaml copy are ignored
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
    - from:
        - namespaceSelector:
            matchExpressions: [{key: ns, operator: In, values: [y]}]
      ports: [{port: 80, endPort: 81}, {port: serve-http, protocol: UDP}]
"""


def write(tmp_path, topo: str, files: dict[str, str]) -> str:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (tmp_path / "topo.yaml").write_text(topo)
    return str(tmp_path / "topo.yaml")


def errors(path: str) -> list[str]:
    with pytest.raises(TopologyError) as info:
        load_topology(path)
    return [str(p) for p in info.value.problems]


def test_inline_policies_namespaces_and_pod_namespace_default(tmp_path):
    topo = load_topology(write(tmp_path, TOPO, {}))
    assert [p.namespace for p in topo.pods] == ["x", "default"]
    pol = topo.network_policies[0]
    assert (pol.namespace, pol.name, pol.spec.types) == ("x", "deny-all-ingress", ("Ingress",))
    assert pol.spec.ingress is None  # missing stays missing (not [])


@pytest.mark.parametrize("spec, types", [
    ("{podSelector: {}}", ("Ingress",)),
    ("{podSelector: {}, egress: []}", ("Ingress",)),  # an empty list is no rule: the API adds no Egress
    ("{podSelector: {}, egress: [{}]}", ("Ingress", "Egress")),
    ("{podSelector: {}, egress: [], policyTypes: [Egress]}", ("Egress",)),  # deny-all egress is said so
    ("{podSelector: {}, policyTypes: []}", ("Ingress",)),  # an empty list is unset: defaulted
    # a repeat is taken, as the API server takes it (ValidateNetworkPolicySpec refuses only a third item)
    ("{podSelector: {}, ingress: [{}], policyTypes: [Egress, Egress]}", ("Egress",)),
    ("{podSelector: {}, policyTypes: [Ingress, Ingress]}", ("Ingress",)),
])
def test_policy_types_default_as_the_api_server_sets_them(tmp_path, spec, types):
    topo = load_topology(write(tmp_path, TOPO.replace("{podSelector: {}, policyTypes: [Ingress]}", spec), {}))
    assert topo.network_policies[0].spec.types == types


def test_include_glob_multi_document(tmp_path):
    path = write(tmp_path, TOPO + "include: [policies/*.yaml]\n", {"policies/p.yaml": MANIFESTS})
    topo = load_topology(path)
    assert [n.name for n in topo.namespaces] == ["x", "y"]
    assert [p.name for p in topo.network_policies] == ["deny-all-ingress", "allow-y"]
    rule = topo.network_policies[1].spec.ingress[0]
    assert rule.ports[0].end_port == 81 and rule.ports[1].port == "serve-http"
    assert topo.include == []  # the resolved topology stands alone


def test_error_in_included_file_names_its_file_line_and_field(tmp_path):
    bad = MANIFESTS.replace("values: [y]", "values: []").replace("endPort: 81", "endPort: 79")
    path = write(tmp_path, TOPO + "include: [policies/*.yaml]\n", {"policies/p.yaml": bad})
    errs = errors(path)
    assert any(e.endswith("policies/p.yaml:19: spec.ingress[0].from[0].namespaceSelector.matchExpressions[0]: "
                          "operator In needs a non-empty values: list") for e in errs), errs
    assert any("policies/p.yaml:20: spec.ingress[0].ports[0]: endPort 79 is below port 80" in e for e in errs), errs


def test_included_kind_must_be_policy_or_namespace(tmp_path):
    path = write(tmp_path, TOPO + "include: [p.yaml]\n", {"p.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n"})
    assert any("p.yaml:2: kind: kind 'Secret' cannot be included" in e for e in errors(path))


@pytest.mark.parametrize("pattern, why", [
    ("/etc/*.yaml", "must be relative to the topology's folder"),
    ("../*.yaml", "'..' is not allowed"),
    ("sub/../../x.yaml", "'..' is not allowed"),
    ("nothing/*.yaml", "matches no file"),
])
def test_include_patterns_never_leave_the_folder(tmp_path, pattern, why):
    inner = tmp_path / "lab"
    inner.mkdir()
    (tmp_path / "x.yaml").write_text(MANIFESTS)
    path = write(inner, TOPO + f"include: [{pattern!r}]\n", {})
    assert any(f"include[0]: {pattern!r}" in e and why in e for e in errors(path))


def test_include_symlink_out_of_the_folder_is_refused(tmp_path):
    inner = tmp_path / "lab"
    inner.mkdir()
    (tmp_path / "secret.yaml").write_text(MANIFESTS)
    os.symlink(tmp_path / "secret.yaml", inner / "p.yaml")
    path = write(inner, TOPO + "include: ['*.yaml']\n", {})
    errs = errors(path)
    assert any("p.yaml leads outside the topology's folder" in e for e in errs), errs


def test_duplicate_policy_across_files_is_located(tmp_path):
    dup = MANIFESTS.split("---\n")[1]
    path = write(tmp_path, TOPO + "include: [a.yaml, b.yaml]\n", {"a.yaml": dup, "b.yaml": dup})
    errs = errors(path)
    assert any("b.yaml:4: metadata.name: NetworkPolicy x/allow-y is already defined at" in e and "a.yaml:4" in e
               for e in errs), errs


@pytest.mark.parametrize("spec, message", [
    ("{podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}]}]}",
     "ipBlock cannot be combined"),
    ("{podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8, except: [11.0.0.0/24]}}]}]}",
     "except 11.0.0.0/24 is not inside cidr 10.0.0.0/8"),
    ("{podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 10.244.0.0/24, except: [10.244.0.0/24]}}]}]}",
     "except 10.244.0.0/24 is cidr itself; every except must be a smaller block inside it"),
    ("{podSelector: {}, ingress: [{ports: [{port: http, endPort: 90}]}]}",
     "endPort 90 needs a numeric port, the start of the range (not the named port 'http')"),
    ("{podSelector: {}, ingress: [{ports: [{endPort: 90}]}]}",
     "endPort 90 needs a numeric port, the start of the range (none is given)"),
    ("{podSelector: {matchExpressions: [{key: a, operator: Exists, values: [b]}]}}",
     "operator Exists takes no values; remove values:"),
    ("{podSelector: {matchExpressions: [{key: a, operator: DoesNotExist, values: [b]}]}}",
     "operator DoesNotExist takes no values; remove values:"),
    ("{podSelector: {}, ingress: [{ports: [{port: 'Not_A_Name'}]}]}", "is not a port name"),
    ("{podSelector: {}, ingress: [{from: [{}]}]}", "a peer needs podSelector, namespaceSelector or ipBlock"),
    ("{podSelector: {}, egress: [{too: []}]}", "too"),
])
def test_bad_inline_policy_is_located(tmp_path, spec, message):
    topo = TOPO.replace("spec: {podSelector: {}, policyTypes: [Ingress]}", f"spec: {spec}")
    errs = errors(write(tmp_path, topo, {}))
    assert any(e.startswith(f"{tmp_path}/topo.yaml:11: networkPolicies[0].spec") and message in e for e in errs), errs


def test_third_policy_type_is_refused_on_its_own_line(tmp_path):
    """More than two policyTypes is refused, as the API server refuses it, at the third item's line (not spec's)."""
    spec = "\n".join(("", "      podSelector: {}", "      policyTypes:", "        - Ingress", "        - Ingress",
                       "        - Egress"))
    errs = errors(write(tmp_path, TOPO.replace(" {podSelector: {}, policyTypes: [Ingress]}", spec), {}))
    assert errs == [f"{tmp_path}/topo.yaml:16: networkPolicies[0].spec.policyTypes[2]: "
                    "may not specify more than two policyTypes (Ingress, Egress)"], errs


def test_split_documents_keeps_line_offsets():
    docs = split_documents("a: 1\n---\n\n# only a comment\n---\nb: 2\n...\n")
    assert [(o, d.strip()) for o, d in docs] == [(0, "a: 1"), (5, "b: 2")]
