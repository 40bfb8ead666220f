"""`policy table`'s MISMATCH lines said the probe's outcome word alone: "denied but REACHED (...); reply" (QA
polfix 4). They say what the probe saw in probe's words ("got a reply in 0.3 ms", "no reply in 0.5 s",
"connection refused"), and when the nodes' policy rules are not as planned (a rule deleted by hand), a hint
names `status`, the `trace` of a mismatched flow and the repair."""

from __future__ import annotations

import pytest

from netlab.api.topology import load
from netlab.errors import netlab_command
from netlab.probe import bypass, policytable, runner
from netlab.probe.judge import Result
from netlab.probe.tasks import Observation

TOPO = {"name": "pfm", "nodes": [{"name": "n1"}],
        "pods": [{"name": "a", "node": "n1", "labels": {"app": "a"}}, {"name": "b", "node": "n1"}],
        "networkPolicies": [{"name": "deny-a", "spec": {"podSelector": {"matchLabels": {"app": "a"}}}}]}


@pytest.fixture
def answered(monkeypatch):
    """policytable.probe with the agent stood in for: every flow answered as ``seen(probe)`` says."""
    lab = load(TOPO, running=False).lab
    said: dict = {}

    def run_probes(model, probes, timeout):
        return [Result(p, said["seen"](p), timeout) for p in probes]

    monkeypatch.setattr(runner, "run_probes", run_probes)
    monkeypatch.setattr(runner, "missing_namespaces", lambda model, probes: set())
    monkeypatch.setattr(runner, "deleted_namespaces", lambda model, missing: [])
    monkeypatch.setattr(bypass, "unfiltered_nodes", lambda model: set())
    return lab, said


def test_a_denied_flow_that_reached_says_the_reply_not_a_bare_word(answered):
    lab, said = answered
    said["seen"] = lambda p: Observation(outcome="reply", rtt=0.0003, answered_by=p.destination.name)
    text = policytable.probe(lab, drift=lambda model: []).render()
    line = next(x for x in text.splitlines() if x.startswith("MISMATCH b -> a tcp/"))
    assert line.endswith("); got a reply in 0.3 ms"), line
    assert "hint:" not in text  # no drift: nothing to name


def test_an_allowed_flow_blocked_says_the_timeout_and_with_drift_names_status_and_trace(answered):
    lab, said = answered
    said["seen"] = lambda p: Observation(outcome="timeout" if p.destination.name == "b" else "reply")
    said["drift"] = ["n1: missing rule: -A NETPOL-ING-X -s 10.244.0.2/32 -j MARK --set-xmark 0x10000/0x10000",
                     "n1: missing rule: -A NETPOL-ING-X -j RETURN"]
    table = policytable.probe(lab, timeout=0.5, drift=lambda model: said["drift"])
    line = next(x for x in table.render().splitlines() if x.startswith("MISMATCH a -> b tcp/"))
    assert line.startswith("MISMATCH a -> b tcp/") and line.endswith("); no reply in 0.5 s"), line
    [hint] = table.hints
    port = next(f.port for f in table.mismatches if f.proto == "tcp")
    assert hint == ("the nodes' policy rules are not as planned (drift: n1: missing rule: -A NETPOL-ING-X -s "
                    "10.244.0.2/32 -j MARK --set-xmark 0x10000/0x10000 (and 1 more)), which explains a flow allowed "
                    f"but blocked: `{netlab_command('status --lab pfm')}` lists what differs, "
                    f"`{netlab_command(f'trace --lab pfm a b --proto tcp --port {port}')}` names the rule the flow "
                    f"met; {netlab_command('up --lab pfm')} writes them back"), hint
    assert f"hint: {hint}" in table.render()


def test_a_drift_not_read_while_the_lab_is_busy_is_a_note_not_a_hint(answered):
    lab, said = answered
    said["seen"] = lambda p: Observation(outcome="timeout" if p.destination.name == "b" else "reply")
    busy = "the nodes' policy rules were not compared with the plan: pid 1 (netlab up) is changing lab pfm; ..."
    table = policytable.probe(lab, timeout=0.5, drift=lambda model: busy)
    assert table.mismatches and table.hints == [] and busy in table.notes
    assert f"note: {busy}" in table.render()
