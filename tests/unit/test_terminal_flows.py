"""A terminal pod (every container exited for good: Completed or Error) serves and sends nothing: Kubernetes tears
its sandbox down. probe and `policy table` expected its declared containerPort to answer ("nothing listens on tcp
port 8080", `job -> job allowed but BLOCKED`, exit 1) while status said all as planned (QA qr3 #2). Flows to and
from it are left out, with a note, and `reach` of it is refused in one line. No root: the kernel's part is faked."""

from __future__ import annotations

import pytest

from netlab.api import reach as reach_mod
from netlab.errors import UsageError
from netlab.model.lab import resolve
from netlab.model.topology import Topology
from netlab.probe import policytable, runner
from netlab.probe.judge import Result
from netlab.probe.listeners import Listeners
from netlab.probe.tasks import Output

JOB = {"name": "job", "node": "n1", "restartPolicy": "Never",
       "containers": [{"name": "main", "command": ["true"], "ports": [{"containerPort": 8080}]}]}
TOPO = {"name": "tf", "nodes": [{"name": "n1"}, {"name": "n2"}],
        "pods": [{"name": "cl", "node": "n1"}, {"name": "web", "node": "n2"}, JOB],
        "networkPolicies": [{"name": "web-in", "spec": {"podSelector": {}, "policyTypes": ["Ingress"],
                                                          "ingress": [{}]}}],
        "expect": [{"from": "cl", "to": "job", "proto": "tcp", "port": 8080}]}
NOTE = ("pod job has terminated (its containers exited for good: Completed or Error): no flow to or from it is "
        "probed")


def lab_of(terminal: frozenset[str] = frozenset({"job"})):
    return resolve(Topology.model_validate(TOPO)).with_terminal(terminal)


def ends(probes) -> set[str]:
    return {e.name for p in probes for e in (p.source, p.destination)}


@pytest.fixture
def sent(monkeypatch):
    """What the agent would have been sent (it hears nothing: every probe comes back unanswered)."""
    out: list = []
    monkeypatch.setattr(runner, "is_netns_mount", lambda path: True)

    def send(lab, probes, timeout, arp, budget=None, dists=(), workers=0, early=None):
        out.extend(probes)
        return Output({}, {}, {}, {}), Listeners([], [])
    monkeypatch.setattr(runner, "_send", send)
    monkeypatch.setattr(runner, "run_probes", lambda lab, probes, timeout=1.0: (
        out.extend(probes), [Result(p, runner.Observation(outcome="timeout")) for p in probes])[1])
    return out


def test_probe_sends_nothing_to_or_from_a_terminal_pod_and_notes_it(sent):
    report = runner.run(lab_of())
    assert sent and "job" not in ends(sent), sorted(p.label for p in sent if "job" in ends([p]))
    assert {"cl", "web", "n1", "n2"} <= ends(sent)
    assert report.notes[0] == NOTE
    assert "job" not in ends(r.probe for r in report.results)


def test_a_running_pod_of_the_same_spec_is_probed_on_its_declared_port(sent):
    report = runner.run(lab_of(frozenset()))  # its containers have not exited (or up starts them again)
    assert ("cl", "job", "tcp", 8080) in {r.probe.key for r in report.results}
    assert NOTE not in report.notes


def test_policy_table_leaves_a_terminal_pod_out_and_says_so(sent):
    table = policytable.evaluate(lab_of())
    assert table.pods == ["cl", "web", "job"] and table.flows
    assert not [f for f in table.flows if "job" in (f.src, f.dst)]
    assert table.notes == [NOTE] and table.to_json()["notes"] == [NOTE]
    text = table.render()
    rows = {line.split()[0]: line.split()[1:] for line in text.split("\n\n")[0].splitlines()[1:]}
    assert rows == {"cl": [".", ".", "-"], "web": [".", ".", "-"], "job": ["-", "-", "-"]}, text
    assert f"note: {NOTE}" in text
    probed = policytable.probe(lab_of())
    assert sent and "job" not in ends(sent) and len(sent) == len(probed.flows)
    assert "job" in {f.src for f in policytable.evaluate(lab_of(frozenset())).flows}


@pytest.mark.parametrize("src,dst", [("cl", "job"), ("job", "web"), ("job", "svc/nosuch")])
def test_reach_of_a_terminal_pod_is_refused_in_one_line(src, dst):
    with pytest.raises(UsageError) as err:
        reach_mod.reach(lab_of(), src, dst)
    assert str(err.value) == f"lab tf: {NOTE}"
