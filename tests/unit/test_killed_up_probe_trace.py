"""`netlab probe` and `netlab trace` of a lab whose `up` was killed halfway (phase creating, nobody holds its lock),
on the fake kernel's lab, its state in a private folder; the probe run and the trace's walk are stood in for.

QA q17 (7): both reported the half-made network as failures and rule-3 violations without the line `list` and
`status` give first, that the up ended before it finished and `netlab down` takes away what it made. They say that
line first on stderr (realize/interrupted.stalled, as status says it) and carry it as `error` in their JSON
(docs/json.md), as status -o json and Status.error do; null for a lab nobody left halfway.
"""

from __future__ import annotations

import json
import os

import pytest
from cli_inprocess import run_cli
from fake_lab import make_lab, up

from netlab.errors import down_command, netlab_command
from netlab.errors import python_words
from netlab.api.lab import Lab
from netlab.api.running import labs
from netlab.cli import probe as cli_probe, trace as cli_trace
from netlab.kernel import netns as nsmod
from netlab.kernel.fake import FakeKernel
from netlab.probe import early, runner
from netlab.probe.judge import Report
from netlab.realize import state as state_mod, state_dir
from netlab.realize.interrupted import stalled
from netlab.trace import run as trace_run
from netlab.trace.hops import Hop, Walk
from netlab.trace.render import TraceResult
from netlab.trace.later import Later
from netlab.trace.verdict import Verdict

lab = pytest.fixture(make_lab, name="lab")


@pytest.fixture
def stood_in(lab, monkeypatch):
    """The lab up on the fake kernel; probe's run gives an empty report and trace's walk a lost packet."""
    up(lab, FakeKernel())
    for mod in (cli_probe, cli_trace):
        monkeypatch.setattr(mod, "require_root", lambda: None)
    monkeypatch.setattr(early, "begin", lambda *a, **k: None)
    monkeypatch.setattr(runner, "run", lambda model, **kw: Report(model.name, kw["timeout"], [], []))
    monkeypatch.setattr(nsmod, "is_netns_mount", lambda ns: True)

    def walk(model, src, dst, **kw):
        hop = Hop(netns=f"{model.name}-{src}", where=f"pod {src}", device="eth0", kind="route", decision="dropped")
        return TraceResult(lab=model.name, src={"name": src, "kind": "pod", "ip": "10.244.0.2"},
                           dst={"name": dst, "kind": "pod", "ip": "10.244.1.3"}, proto="icmp", port=None, marker="m",
                           forward=Walk(hops=[hop], outcome="stopped"), reply=None,
                           verdict=Verdict(False, 0, "no route"), reply_verdict=None, reply_received=False,
                           repair_later=Later(kw["repair"]))

    monkeypatch.setattr(trace_run, "run", walk)
    return lab.name


def killed_halfway(name: str) -> str:
    """The lab as an up killed after its write-ahead leaves it: phase creating, its lock naming a pid nobody has;
    list's line for it."""
    state = state_mod.load_state(name)
    state.phase = "creating"
    state.save()
    with open(os.path.join(state_dir.lab_dir(name), state_dir.LOCK_FILE), "w") as fh:
        fh.write("pid 4194304 (netlab up)\n")  # above pid_max's default: nobody
    said = stalled(state)
    with python_words(False):  # list's line, as the command says it
        assert said is not None and said == next(row.error for row in labs() if row.lab == name)
    return said


def in_python(said: str, lab: str) -> str:
    """The line as the API says it: its way out a Python call (errors.down_way)."""
    return said.replace(f"`{down_command(lab)}`", f"`Lab('{lab}').down()`").replace(
        f"`{netlab_command(f'up --lab {lab}')}`", f"`Lab('{lab}').repair()`")


def test_probe_of_a_lab_whose_up_was_killed_says_lists_line_first_and_carries_it_as_error(stood_in):
    clean = run_cli("probe", "--lab", stood_in, "-o", "json")
    assert clean.returncode == 0 and json.loads(clean.stdout)["error"] is None and not clean.stderr, clean
    said = killed_halfway(stood_in)
    for output in ("text", "json"):
        got = run_cli("probe", "--lab", stood_in, "-o", output)
        assert got.stderr.splitlines()[0] == f"netlab: {said}", got
    assert json.loads(got.stdout)["error"] == said, got
    assert Lab(stood_in).probe().error == in_python(said, stood_in)


def test_trace_of_a_lab_whose_up_was_killed_says_lists_line_first_and_carries_it_as_error(stood_in):
    clean = run_cli("trace", "--lab", stood_in, "a", "b", "-o", "json")
    assert clean.returncode == 1 and json.loads(clean.stdout)["error"] is None, clean
    assert not clean.stderr.startswith("netlab: lab "), clean
    said = killed_halfway(stood_in)
    for output in ("text", "json"):
        got = run_cli("trace", "--lab", stood_in, "a", "b", "-o", output)
        assert got.returncode == 1 and got.stderr.splitlines()[0] == f"netlab: {said}", got
    assert json.loads(got.stdout)["error"] == said, got
    assert Lab(stood_in).trace("a", "b").error == in_python(said, stood_in)


def test_probe_says_the_line_before_what_its_run_says(stood_in, monkeypatch):
    """It said it after its run: a turn-wait line (probe/turns.py) came above it."""
    import sys

    def waited(model, **kw):
        print("netlab: waiting for probe run pid 1 to finish (probe runs take turns)", file=sys.stderr)
        return Report(model.name, kw["timeout"], [], [])

    monkeypatch.setattr(runner, "run", waited)
    said = killed_halfway(stood_in)
    got = run_cli("probe", "--lab", stood_in)
    assert got.stderr.splitlines()[:2] == [f"netlab: {said}", "netlab: waiting for probe run pid 1 to finish "
                                           "(probe runs take turns)"], got


def test_policy_table_of_a_lab_whose_up_was_killed_says_lists_line_first_and_carries_it_as_error(stood_in,
                                                                                              monkeypatch):
    """It said nothing of it (QA q17 7's probe and trace, the last pass's Left for policy table)."""
    from netlab.cli import policy as cli_policy
    from netlab.probe import policytable

    monkeypatch.setattr(cli_policy, "require_root", lambda: None)
    monkeypatch.setattr(policytable, "probe", lambda model, timeout, **kw: policytable.evaluate(model))
    clean = run_cli("policy", "table", "--lab", stood_in, "-o", "json")
    assert json.loads(clean.stdout)["error"] is None and not clean.stderr, clean
    said = killed_halfway(stood_in)
    for args in ((), ("--no-probe",)):
        for output in ("text", "json"):
            got = run_cli("policy", "table", "--lab", stood_in, "-o", output, *args)
            assert got.returncode == 0 and got.stderr.splitlines()[0] == f"netlab: {said}", got
        assert json.loads(got.stdout)["error"] == said, got
