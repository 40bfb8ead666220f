"""Lab.reach and `netlab policy table` of a lab another command changes while their probes run, and a probe, trace
or reach whose run raises partway while an up ran (api/lab_checks.reach, api/internals.internal_probe,
realize/interrupted.Seen), on the fake kernel's lab, its state in a private folder, as
test_probe_trace_while_changed.py does for probe's and trace's failures.

Found: Lab.reach took no look at the lab's lock before its probe, so a reach that failed while `up` repaired the
lab (its lock held) said "unreachable", blaming the lab for the up's work half done, where probe and trace raised
LabBusy naming the up (`policy table` said "16/32 flows as the policies say", MISMATCH lines, exit 1, its note
naming the up for its rules' comparison alone); and a probe (trace, reach) whose run raised partway (a namespace
the up deleted and made again, a read the up cut short) raised that error, not LabBusy, where status re-checks for
it."""

from __future__ import annotations

import contextlib
import os
import re
import types

import pytest
from cli_inprocess import run_cli
from fake_lab import make_lab, up

from netlab.api import lab_checks
from netlab.api.internals import internal_probe
from netlab.api.lab import Lab
from netlab.cli import policy as cli_policy, probe as cli_probe, trace as cli_trace
from netlab.errors import LabBusy, LabTakenDown
from netlab.kernel.fake import FakeKernel
from netlab.probe import early as early_agent, policytable, runner
from netlab.realize import lab_lock, state as state_mod
from netlab.realize.interrupted import being_taken_down
from netlab.trace import run as trace_run

lab = pytest.fixture(make_lab, name="lab")
ME = f"pid {os.getpid()} (netlab up)"


class Cut(OSError):
    """A read an up cut short (a namespace it deleted while the run was in it)."""


@pytest.fixture
def running(lab, monkeypatch):
    """The lab up on the fake kernel; its probe, trace and reach runs do ``during`` first, then ``end`` (a
    failed run, or an error raised partway)."""
    up(lab, FakeKernel())
    for cli in (cli_probe, cli_trace, cli_policy):
        monkeypatch.setattr(cli, "require_root", lambda: None)
    monkeypatch.setattr(early_agent, "begin", lambda *a, **k: None)
    monkeypatch.setattr(lab_checks, "_check_namespaces", lambda *a: None)
    failed = types.SimpleNamespace(ok=False, deleted=[], error=None, mismatches=["a -> b"])
    during = types.SimpleNamespace(do=lambda: None, end=lambda: failed)

    def run(*a, **k):
        during.do()
        return during.end()

    monkeypatch.setattr(runner, "run", run)
    monkeypatch.setattr(runner, "run_probes", lambda *a, **k: [run()])
    monkeypatch.setattr(trace_run, "run", run)
    monkeypatch.setattr(policytable, "probe", run)
    return during


def _cut():
    raise Cut("namespace fk-b went away")


def _up_runs(lab):
    with lab_lock.LabLock(lab.name, "netlab up"):
        state_mod.load_state(lab.name).save()


def test_reach_names_the_up_holding_the_lab_not_a_verdict(lab, running):
    with lab_lock.LabLock(lab.name, "netlab up"):
        with pytest.raises(LabBusy, match=re.escape(
                f"lab fk is being changed by {ME} while reach read it: what the probe met then is its work half "
                "done, not the lab's fault; run reach again once it has finished")):
            Lab.attach(lab.name).reach("a", "b")


def test_reach_names_an_up_that_began_and_ended_while_it_ran(lab, running):
    running.do = lambda: _up_runs(lab)
    with pytest.raises(LabBusy, match=re.escape(f"lab fk was being changed by {ME} while reach read it")):
        Lab.attach(lab.name).reach("a", "b")


@pytest.mark.parametrize("reader", ["probe", "trace", "reach"])
def test_a_run_that_raises_partway_while_an_up_ran_names_the_up(lab, running, reader):
    running.do, running.end = (lambda: _up_runs(lab)), _cut
    checked = Lab.attach(lab.name)
    call = {"probe": lambda: internal_probe(checked), "trace": lambda: checked.trace("a", "b"),
            "reach": lambda: checked.reach("a", "b")}[reader]
    with pytest.raises(LabBusy, match=re.escape(f"lab fk was being changed by {ME} while {reader} read it")):
        call()


def test_the_cli_says_a_probe_cut_short_by_an_up_as_lab_busy(lab, running):
    running.do, running.end = (lambda: _up_runs(lab)), _cut
    probed = run_cli("probe", "--lab", lab.name)
    assert (probed.returncode, probed.stdout) == (3, ""), probed
    assert probed.stderr == (f"netlab: lab fk was being changed by {ME} while probe read it: what the probes met "
                             "then is its work half done, not the lab's fault; run probe again once it has "
                             "finished\n"), probed


@pytest.mark.parametrize("reader", ["probe", "trace", "reach"])
def test_an_error_with_nobody_at_work_is_its_own(lab, running, reader):
    running.end = _cut
    checked = Lab.attach(lab.name)
    call = {"probe": lambda: internal_probe(checked), "trace": lambda: checked.trace("a", "b"),
            "reach": lambda: checked.reach("a", "b")}[reader]
    with pytest.raises(Cut):
        call()


def test_policy_table_names_the_up_holding_the_lab_not_a_mismatch(lab, running):
    with lab_lock.LabLock(lab.name, "netlab up"):
        tabled = run_cli("policy", "table", "--lab", lab.name)
    assert (tabled.returncode, tabled.stdout) == (3, ""), tabled
    assert tabled.stderr == (f"netlab: lab fk is being changed by {ME} while policy table read it: what the probes "
                             "met then is its work half done, not the lab's fault; run policy table again once it "
                             "has finished\n"), tabled


def test_policy_table_cut_short_while_an_up_ran_names_it(lab, running):
    running.do, running.end = (lambda: _up_runs(lab)), _cut
    tabled = run_cli("policy", "table", "--lab", lab.name)
    assert tabled.returncode == 3 and f"lab fk was being changed by {ME} while policy table read it" in \
        tabled.stderr, tabled


def test_a_trace_whose_namespace_check_meets_an_up_at_work_names_it(lab, running, monkeypatch):
    """The trace's look for the namespaces it captures in (NetnsGone for one deleted) comes after its look at the
    lab's lock: a namespace an up deleted and is making again is its work half done."""
    def gone(*a):
        running.do()
        raise Cut("namespace fk-b was deleted")

    running.do = lambda: _up_runs(lab)
    monkeypatch.setattr(lab_checks, "_check_namespaces", gone)
    with pytest.raises(LabBusy, match=re.escape(f"lab fk was being changed by {ME} while trace read it")):
        Lab.attach(lab.name).trace("a", "b")


@pytest.mark.parametrize("reader", ["probe", "trace", "reach"])
def test_a_run_a_down_cut_short_raises_the_downs_own_line(lab, running, reader):
    """A run whose error already says a `netlab down` took its part away ("the probe's agent was stopped with the
    lab's other processes", runner._taken_down) is raised as itself: the re-check's LabGoingDown ("what probe read
    of it is its work half done") says less (test_reliability's down during a probe, exit 2 either way). The down
    begins while the run is at work (a probe that begins once it holds the lab refuses it up front)."""
    said = being_taken_down(lab.name, "the probe's agent was stopped with the lab's other processes")

    def end():
        raise said

    checked = Lab.attach(lab.name)
    call = {"probe": lambda: internal_probe(checked), "trace": lambda: checked.trace("a", "b"),
            "reach": lambda: checked.reach("a", "b")}[reader]
    with contextlib.ExitStack() as down:
        def down_begins():
            st = state_mod.load_state(lab.name)
            st.phase = "deleting"
            st.save()
            down.enter_context(lab_lock.LabLock(lab.name, "netlab down"))

        running.do, running.end = down_begins, end
        with pytest.raises(LabTakenDown) as got:
            call()
    assert got.value is said


def test_a_probe_that_begins_while_a_down_holds_the_lab_refuses_it(lab, running):
    """A probe of a lab a `netlab down` is at work on (phase deleting, its lock held) sends nothing: the lab is
    being taken down, its namespaces going, as once they are gone (not a probe of a lab on its way out)."""
    st = state_mod.load_state(lab.name)
    st.phase = "deleting"
    st.save()
    running.do = lambda: pytest.fail("probed a lab being taken down")
    with lab_lock.LabLock(lab.name, "netlab down"):
        with pytest.raises(LabTakenDown, match=re.escape(
                "lab fk is being taken down (`netlab down`): its namespaces go with it")):
            internal_probe(Lab.attach(lab.name))
