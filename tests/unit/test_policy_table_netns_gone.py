"""`policy table` of a lab with one pod's namespace deleted behind netlab's back, and of a lab whose `down` was
killed halfway; `trace` and `status` of a lab an up or down left halfway (fake kernel, state in a private folder).

- policy table sent the deleted pod's probes too: the agent failed ("the probe agent failed: FileNotFoundError:
  ... /run/netns/fk-a", exit 3), where probe leaves them out (probe/runner.run) and exec and trace say "namespace
  fk-a was deleted while lab fk is up; `up` makes it again". Its flows are now not probed, and a note names the
  pod with that line. An agent stopped while a namespace of the job was missing was "being taken down", also for
  a lab whose down was killed (nobody holds its lock): list's line now ("down finishes it").
- trace said list's line after its run (its progress first); status of a killed down ended with "run `up` to
  repair" below list's "`down --lab L` finishes it".
"""

from __future__ import annotations

import json
import os
import sys
import types

import pytest
from cli_inprocess import run_cli
from fake_lab import machine_holds, make_lab, up

from netlab.errors import down_command, netlab_command
from netlab.api import lifecycle
from netlab.cli import lab as cli_lab, policy as cli_policy, trace as cli_trace
from netlab.errors import EnvironmentNotReady
from netlab.kernel import netns as nsmod
from netlab.kernel.fake import FakeKernel
from netlab.lab import readahead
from netlab.lab.status import StatusResult
from netlab.probe import listeners, policytable, runner
from netlab.probe.tasks import Job, Observation, Output
from netlab.realize import state as state_mod, state_dir
from netlab.realize.interrupted import stalled
from netlab.trace import run as trace_run

lab = pytest.fixture(make_lab, name="lab")


@pytest.fixture
def sent(lab, monkeypatch):
    """The lab up on the fake kernel, pod a's namespace deleted (`ip netns delete fk-a`); the agent's job stood in
    for: the probes it was given (each reached)."""
    kernel = FakeKernel()
    up(lab, kernel)
    machine_holds(monkeypatch, kernel)
    monkeypatch.setattr(runner, "is_netns_mount", lambda ns: ns != "fk-a")
    given: list = []

    def send(model, probes, timeout, arp, *rest, **kw):
        given.extend(probes)
        obs = {i: Observation(outcome="reply") for i in range(len(probes))}
        return Output(obs, {}, {}, {}), listeners.Listeners(0)

    monkeypatch.setattr(runner, "_send", send)
    return given


def killed_down(name: str, holder: str = "netlab down") -> str:
    """The lab as a down (``holder``) killed halfway leaves it: its phase, its lock naming a pid nobody has."""
    state = state_mod.load_state(name)
    state.phase = "deleting" if holder == "netlab down" else "creating"
    state.save()
    with open(os.path.join(state_dir.lab_dir(name), state_dir.LOCK_FILE), "w") as fh:
        fh.write(f"pid 4194304 ({holder})\n")  # above pid_max's default: nobody
    said = stalled(state)
    assert said is not None
    return said


def test_policy_table_leaves_a_deleted_pod_out_and_names_it(lab, sent):
    table = policytable.probe(lab)
    assert sent and all(p.source.name != "a" for p in sent)  # nothing sent from a namespace that is not there
    assert [f.reached for f in table.flows if f.src == "a"] == [None] * 4  # not probed, not "blocked"
    assert all(f.reached for f in table.flows if f.src != "a")
    assert table.notes == ["a: its flows not probed: namespace fk-a was deleted while lab fk is up; "
                           f"`{netlab_command('up --lab fk')}` makes it again"]  # exec's and trace's line


def test_policy_table_of_a_lab_with_a_deleted_pod_exits_1_as_probe(lab, sent, monkeypatch):
    """The lab is not as planned and a's flows were not checked: no pass. It exited 0 with a note only, while
    `probe` of the same lab exits 1 and says exec's line on stderr first (-o json: its error)."""
    monkeypatch.setattr(cli_policy, "require_root", lambda: None)
    line = f"namespace fk-a was deleted while lab fk is up; `{netlab_command('up --lab fk')}` makes it again"
    got = run_cli("policy", "table", "--lab", "fk")
    assert (got.returncode, got.stderr) == (1, f"netlab: {line}\n"), got
    assert f"note: a: its flows not probed: {line}" in got.stdout.splitlines(), got
    assert got.stdout.splitlines()[-1].endswith(" (1 pod not probed: its namespace was deleted)"), got
    assert "MISMATCH" not in got.stdout  # every flow probed is as the policies say: the exit is the deletion's
    got = run_cli("policy", "table", "--lab", "fk", "-o", "json")
    doc = json.loads(got.stdout)
    assert (got.returncode, doc["error"], doc["mismatches"]) == (1, line, 0), got


def test_policy_table_marks_a_deleted_pod_s_flows_not_probed_and_counts_them_apart(lab, sent):
    """a's row was never sent: it showed `.` ("allowed by the policies, and reached") and the count read "4/4 flows
    as the policies say", as if a's flows were checked (QA q29 #3). They are `-` now, the mark of what is not sent
    (a terminal pod's row and column), the legend says so, and the count leaves them out and says how many."""
    table = policytable.probe(lab)
    text = table.render()
    blocks = text.split("\n\n")
    for block in blocks[:2]:  # tcp/8080 and udp/8080: a's row not probed, b's reached
        rows = {line.split()[0]: line.split()[1:] for line in block.splitlines()[1:]}
        assert rows == {"a": ["-", "-"], "b": [".", "."]}, text
    legend, *rest = blocks[2].splitlines()
    assert legend.endswith(", - not served or not probed (a note says why)"), text
    count, took = rest[-1].split(" in ")
    assert count == "4/4 probed flows as the policies say, 4 not probed", text  # b's 4, not a's
    assert took.endswith(" s (1 pod not probed: its namespace was deleted)"), text
    doc = table.to_json()
    assert doc["probed"] is True and doc["mismatches"] == 0
    assert [(f["source"], f["reached"], f["mismatch"]) for f in doc["flows"] if f["source"] == "a"] == [
        ("a", None, False)] * 4


def test_a_table_with_every_flow_probed_says_its_count_as_before(lab, sent, monkeypatch):
    monkeypatch.setattr(runner, "is_netns_mount", lambda ns: True)
    text = policytable.probe(lab).render()
    assert "-" not in "".join(text.split("\n\n")[:2]).replace("tcp/", "").replace("udp/", ""), text
    legend, count = text.splitlines()[-2:]
    assert legend == ". allowed and reached, X denied and blocked, ! allowed but BLOCKED, ? denied but REACHED, " \
        "- not served", text
    assert count.startswith("8/8 flows as the policies say in "), text


def test_policy_table_of_a_killed_down_names_it_in_lists_words(lab, sent):
    said = killed_down("fk")
    (note,) = policytable.probe(lab).notes
    assert note == f"a: its flows not probed: {said} (namespace fk-a is not there)"


def test_an_agent_stopped_in_a_lab_a_killed_down_left_says_lists_line(lab, monkeypatch):
    """It said the lab "is being taken down" (a missing namespace was taken for a down at work)."""
    kernel = FakeKernel()
    up(lab, kernel)
    machine_holds(monkeypatch, kernel)
    monkeypatch.setattr(runner, "is_netns_mount", lambda ns: ns != "fk-a")

    def fails(job, limit, child=None):
        raise EnvironmentNotReady("the probe agent died without a result")

    monkeypatch.setattr(runner, "_fork_agent", fails)
    job = Job(tasks=[], units=[], home="fk-underlay", sweep=["fk-n1", "fk-a"])
    with pytest.raises(EnvironmentNotReady) as plain:  # a lab that is up: the agent's own error
        runner._agent_output(lab, job)
    assert str(plain.value) == "the probe agent died without a result"
    said = killed_down("fk")
    with pytest.raises(Exception) as info:
        runner._agent_output(lab, job)
    assert (str(info.value), info.value.exit_code) == (f"{said} (no namespace fk-a)", 2)


def test_trace_says_lists_line_before_its_progress(lab, monkeypatch):
    up(lab, FakeKernel())
    monkeypatch.setattr(cli_trace, "require_root", lambda: None)
    monkeypatch.setattr(nsmod, "is_netns_mount", lambda ns: True)

    def walk(model, src, dst, **kw):
        print("netlab: tracing a → b", file=sys.stderr)  # what the run says (a progress bar on a terminal)
        raise EnvironmentNotReady("stood in")

    monkeypatch.setattr(trace_run, "run", walk)
    said = killed_down("fk", "netlab up")
    got = run_cli("trace", "--lab", "fk", "a", "b")
    assert got.stderr.splitlines()[:2] == [f"netlab: {said}", "netlab: tracing a → b"], got


@pytest.mark.parametrize("holder", ["netlab down", "netlab up"])
def test_status_of_a_killed_down_ends_with_down_not_up(lab, monkeypatch, holder):
    up(lab, FakeKernel())
    monkeypatch.setattr(cli_lab, "require_root", lambda: None)
    monkeypatch.setattr(readahead, "start", lambda *a: types.SimpleNamespace(close=lambda: None))
    monkeypatch.setattr(lifecycle, "status", lambda state, _: StatusResult(lab=state.lab, drift=["missing netns fk-a"]))
    said = killed_down("fk", holder)
    got = run_cli("status", "--lab", "fk")
    lines = got.stderr.splitlines() + got.stdout.splitlines()
    assert got.returncode == 1 and lines[0] == f"netlab: {said}", got
    if holder == "netlab down":
        assert said.endswith(f"`{down_command('fk')}` finishes it")
        # or the lab's repair, which makes again what that down took (QA q32 3: "no `up` repairs" it was untrue)
        assert lines[-1] == (f"run `{down_command('fk')}` to finish taking it down, or "
                             f"`{netlab_command('up --lab fk')}` to bring it back as planned"), got
    else:  # an up killed halfway: up makes the rest, as before
        assert lines[-1].startswith(f"run `{netlab_command('up ')}") and lines[-1].endswith("` to repair"), got

