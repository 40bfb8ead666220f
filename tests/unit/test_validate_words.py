"""Problems said in netlab's words wherever they were found (an included manifest, a dict given to the library),
each at a field the user wrote.

Each case is the exact stderr of ``netlab validate -t FILE`` (paths relative to the test's folder)."""

from __future__ import annotations

import pytest
from test_validate_every_problem import UNCHECKED, validate

from netlab.api.topology import load
from netlab.errors import TopologyError

POLICIES = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a}
spec:
  podSelector: {}
  policyTypes: [Inbound]
---
apiVersion: extensions/v1beta1
kind: NetworkPolicy
metadata: {name: b}
spec: {podSelector: {}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicyList
items:
  - metadata: {name: c}
    spec: {podSelector: {}}
  - kind: Namespace
    metadata: {name: d}
"""


def test_an_included_manifest_is_said_in_the_words_of_an_inline_one(tmp_path):
    text = "name: qx3f\nnodes: [{name: n1}]\ninclude: [pol/bad.yaml]\n"
    assert validate(tmp_path, text, {"pol/bad.yaml": POLICIES}) == [
        "pol/bad.yaml:6: spec.policyTypes[0]: 'Inbound' is not allowed; use 'Ingress' or 'Egress'",
        "pol/bad.yaml:8: apiVersion: a NetworkPolicy is apiVersion networking.k8s.io/v1, not 'extensions/v1beta1'",
        "pol/bad.yaml:18: items[1].kind: kind 'Namespace' in a NetworkPolicyList, whose items are NetworkPolicy: "
        "move it to a List (apiVersion: v1, kind: List) or a file of its own"]
    inline = ("networkPolicies:\n  - name: a\n    spec:\n      podSelector: {}\n      policyTypes: [Inbound]\n")
    assert validate(tmp_path, "name: qx3f\nnodes: [{name: n1}]\n" + inline) == [
        "t.yaml:7: networkPolicies[0].spec.policyTypes[0]: 'Inbound' is not allowed; use 'Ingress' or 'Egress'"]


def test_a_dict_key_that_is_not_a_string_is_said_in_netlabs_words():
    with pytest.raises(TopologyError) as info:
        load({"name": "qx3x", "nodes": [{"name": "n1", 5: 6}]})
    # one problem is one line, as the CLI says it (qa54: a Python caller's exception added the note as a second
    # line); the note is the exception's own field (QA q22: without the CLI's "netlab: " prefix)
    assert str(info.value).splitlines() == [
        "<dict>: nodes[0][5]: key 5 is a number, not a string; keys are text: write '5'"]
    assert info.value.note == UNCHECKED


def test_two_problems_say_what_they_left_unchecked_last():
    with pytest.raises(TopologyError) as info:
        load({"name": "qx3y", "nodes": [{"name": "n1", 5: 6, 7: 8}]})
    assert str(info.value).splitlines()[-1] == UNCHECKED and len(info.value.problems) == 2


@pytest.mark.parametrize("text, line", [
    ("name: qx3e\ncluster: {podCIDR: 192.168.122.0/24}\nnodes: [{name: n1}]\n",
     "t.yaml:2: cluster.podCIDR: 192.168.122.0/24 overlaps the default network.underlay.cidr 192.168.122.0/24; "
     "the pod, service, underlay and internet ranges must be disjoint: pick another or set network.underlay.cidr"),
    ("name: qx3e\nnodes: [{name: n1}]\ninternet: {cidr: 203.0.113.0/31, hosts: [{name: ex, ip: 203.0.113.1}]}\n",
     "t.yaml:3: internet.cidr: 203.0.113.0/31 is too small; the internet needs at least a /30 (its gateway and "
     "a host)"),
    ("name: qx3e\nnodes: [{name: n1}]\ninternet: {cidr: 198.51.100.0/24}\n",
     "t.yaml:3: internet.cidr: 198.51.100.0/24 does not hold the gateway's default address 203.0.113.1; set "
     "internet.gateway.ip to a host address of it"),
])
def test_a_problem_is_said_at_a_field_the_user_wrote(tmp_path, text, line):
    assert validate(tmp_path, text) == [line]
