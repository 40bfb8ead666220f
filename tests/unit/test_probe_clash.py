"""A source port conntrack moved to keep reply tuples unique (probe/clash.py): proved from the entries, or not."""

from __future__ import annotations

import pytest

from netlab.model.lab import resolve
from netlab.model.topology import Topology
from netlab.probe import clash
from netlab.probe.judge import Result, judge
from netlab.probe.matrix import build_matrix
from netlab.probe.tasks import Observation

LAB = resolve(Topology.model_validate({
    "name": "cl", "nodes": [{"name": "n1"}],
    "pods": [{"name": "web", "node": "n1", "labels": {"app": "web"}}, {"name": "near", "node": "n1"}],
    "services": [{"name": "web", "clusterIP": "10.96.0.50", "selector": {"app": "web"},
                  "ports": [{"port": 80, "targetPort": 8080}]}]}))
PROBE = next(p for p in build_matrix(LAB, ["tcp"]) if p.key == ("near", "web", "tcp", 8080))
SERVICE = ({"src": "10.244.0.3", "dst": "10.96.0.50", "sport": "40000", "dport": "80"},
           {"src": "10.244.0.2", "dst": "10.244.0.3", "sport": "8080", "dport": "40000"})
MOVED = ({"src": "10.244.0.3", "dst": "10.244.0.2", "sport": "40000", "dport": "8080"},
         {"src": "10.244.0.2", "dst": "10.244.0.3", "sport": "8080", "dport": "37680"})


def result(seen: str = "10.244.0.3:37680") -> Result:
    obs = Observation(outcome="reply", local="10.244.0.3:40000", seen_client=seen, server="10.244.0.2:8080",
                      answered_by="web")
    return Result(PROBE, obs, 1.0, judge(PROBE, obs, 1.0, "10.244.0.3"))


@pytest.fixture
def table(monkeypatch):
    entries: list = []
    asked: list = []
    monkeypatch.setattr(clash.conntrack, "tuples", lambda ns, proto: asked.append((ns, proto)) or entries)
    return entries, asked


def test_the_clash_proved_drops_the_problem_and_says_why(table):
    entries, asked = table
    entries += [SERVICE, MOVED]
    r = result()
    assert r.problems == ["NAT: web saw the client as 10.244.0.3:37680, but near sent from 10.244.0.3:40000 "
                          "(source port translated)"]
    hint, again = clash.explain(LAB, [r, result()])
    assert r.ok and hint == again and asked == [("cl-n1", 6)]  # one dump for the namespace, for both
    assert hint.startswith("near -> web tcp/8080: conntrack in cl-n1 gave the flow source port 37680 instead of "
                           "40000: the reply tuple 10.244.0.2:8080 -> 10.244.0.3:40000 was held by the entry of "
                           "10.244.0.3:40000 -> 10.96.0.50:80 (a flow through a Service, DNATed to 10.244.0.2:8080)")


@pytest.mark.parametrize("present", [
    pytest.param([MOVED], id="no-entry-holds-the-reply-tuple"),
    pytest.param([SERVICE], id="no-entry-of-the-moved-flow"),
    pytest.param([SERVICE, ({**MOVED[0]}, {**MOVED[1], "dport": "1234"})], id="moved-elsewhere"),
    pytest.param([({**SERVICE[0], "dst": "10.244.0.2", "dport": "8080"}, SERVICE[1])], id="the-same-flow"),
])
def test_without_the_proof_the_problem_stands(table, present):
    table[0].extend(present)
    r = result()
    assert clash.explain(LAB, [r]) == [] and not r.ok


def test_another_address_seen_is_not_a_port_clash(table):
    table[0].extend([SERVICE, MOVED])
    r = result(seen="10.244.0.1:37680")  # masqueraded: a NAT rule, not conntrack's uniqueness
    assert clash.explain(LAB, [r]) == [] and not r.ok
    assert table[1] == []  # nothing read: no "source port translated" problem to explain


def test_a_table_that_cannot_be_read_proves_nothing(monkeypatch):
    def gone(ns, proto):
        raise OSError("no such namespace")
    monkeypatch.setattr(clash.conntrack, "tuples", gone)
    r = result()
    assert clash.explain(LAB, [r]) == [] and not r.ok
