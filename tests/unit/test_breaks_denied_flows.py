"""A node scenario's target is judged by the flows probe expects to pass: a flow the NetworkPolicies deny is no
flow the fault meets, without root.

breaks/flows.meets_a_flow asked whether any probe flow crossing the node meets the fault, but ignored the
policies' verdicts: a node whose only pod a policy cuts off from everything (ingress and egress) still counted
as one ip-forward-off breaks, though probe expects every flow there refused already, fault or not (symptoms.expect
keeps a flow expected unreachable as it is). It now takes the verdicts probe itself uses (probe/policy.py's
policy_judge and ServiceJudge).
"""

from __future__ import annotations

import copy

import pytest

from netlab.api.topology import load
from netlab.breaks import catalogue, run as break_run
from netlab.breaks.flows import _rows_at, meets_a_flow
from netlab.errors import UsageError

ISOLATE = {"name": "iso", "spec": {"podSelector": {"matchLabels": {"app": "web"}},
                                   "policyTypes": ["Ingress", "Egress"]}}
TWO = {"name": "d4", "nodes": [{"name": "n1"}, {"name": "n2"}],
       "pods": [{"name": "a", "node": "n1"}, {"name": "w", "node": "n2", "labels": {"app": "web"}}]}


def _lab(policies: list[dict], services: list[dict] | None = None):
    topo = copy.deepcopy(TWO)
    topo["networkPolicies"] = policies
    if services:
        topo["services"] = services
    return load(topo).lab


def test_a_node_whose_every_flow_a_policy_denies_meets_no_flow():
    assert meets_a_flow("ip-forward-off", _lab([]), _lab([]).node("n2"))  # without the policy: a's flows to w
    lab = _lab([ISOLATE])
    assert not meets_a_flow("ip-forward-off", lab, lab.node("n2"))
    assert not meets_a_flow("forward-policy-drop", lab, lab.node("n2"))
    assert meets_a_flow("ip-forward-off", lab, lab.node("n1"))  # n1 routes n2's own flows in to a
    with pytest.raises(UsageError) as err:
        break_run.check("ip-forward-off", lab, "n2")
    assert str(err.value).startswith("ip-forward-off breaks what a node sends, forwards or receives"), err.value
    # the overlay's faults still meet the nodes' own flows that no policy judges (n2 to a on n1)
    assert catalogue.target_problem(catalogue.scenario("vxlan-arp-missing"), lab, lab.node("n2")) is None


def test_a_flow_the_policies_allow_still_counts():
    allow_in = {"name": "in", "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"],
                                       "ingress": [{"from": [{"podSelector": {}}]}]}}
    lab = _lab([allow_in])
    assert meets_a_flow("ip-forward-off", lab, lab.node("n2"))


def test_a_service_flow_is_judged_as_probe_judges_it():
    """a's ClusterIP flow to w, DNATed on n1 and forwarded in by n2, is judged against its endpoint w as probe's
    ServiceJudge judges it: denied. w reaching itself by its Service is no flow a policy judges: it stays, and
    n2 routes it (a hairpin), so ip-forward-off there still meets a flow."""
    web = [{"name": "web", "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}]
    lab = _lab([ISOLATE], web)
    rows = {(r["source"], r["destination"]): r["expected"] for r in _rows_at(lab, lab.node("n2")) if r["service"]}
    assert rows[("w", "web")] == "reachable"
    rows = {(r["source"], r["destination"]): r["expected"] for r in _rows_at(lab, lab.node("n1")) if r["service"]}
    assert rows[("a", "web")] == "unreachable", rows
    assert meets_a_flow("ip-forward-off", lab, lab.node("n2"))
