"""`netlab probe` and `netlab trace` (and Lab.probe / Lab.trace) of a lab another command changes while they run
(api/internals.internal_probe, api/lab_checks.trace, realize/interrupted.Seen), on the fake kernel's lab, its state in
a private folder: the probes (the packet) fail while the test holds the lab's lock as `up` holds it.

QA: with `netlab up --lab L` repairing a broken lab (a pod CIDR route missing) in one shell, `netlab probe --lab L`
in another said "6/18 probes as expected", exit 1, and `netlab trace --lab L a b` "LOST at hop 9 ... route
missing", exit 1, naming neither the up at work, where `status` said "lab L is being changed by pid N (netlab up)
... run status again once it has finished", exit 3.
"""

from __future__ import annotations

import os
import re
import types

import pytest
from cli_inprocess import run_cli
from fake_lab import make_lab, up

from netlab.api import lab_checks
from netlab.api.internals import internal_probe
from netlab.api.lab import Lab
from netlab.cli import probe as cli_probe, trace as cli_trace
from netlab.errors import LabBusy, UsageError
from netlab.kernel.fake import FakeKernel
from netlab.probe import early as early_agent, runner
from netlab.realize import lab_lock, state as state_mod
from netlab.trace import run as trace_run

lab = pytest.fixture(make_lab, name="lab")
ME = f"pid {os.getpid()} (netlab up)"
FAILED = types.SimpleNamespace(ok=False, deleted=[], error=None)  # a run whose probes (packet) met the up's work


@pytest.fixture
def running(lab, monkeypatch):
    """The lab up on the fake kernel; its probe run and its trace run ``during`` first, then fail (FAILED)."""
    up(lab, FakeKernel())
    for cli in (cli_probe, cli_trace):
        monkeypatch.setattr(cli, "require_root", lambda: None)
    monkeypatch.setattr(early_agent, "begin", lambda *a, **k: None)
    monkeypatch.setattr(lab_checks, "_check_namespaces", lambda *a: None)
    during = types.SimpleNamespace(do=lambda: None)

    def failed(*a, **k):
        during.do()
        return FAILED

    monkeypatch.setattr(runner, "run", failed)
    monkeypatch.setattr(trace_run, "run", failed)
    return during


def test_probe_and_trace_name_the_up_holding_the_lab_not_a_verdict(lab, running):
    with lab_lock.LabLock(lab.name, "netlab up"):
        probed = run_cli("probe", "--lab", lab.name)
        traced = run_cli("trace", "--lab", lab.name, "a", "b")
    assert (probed.returncode, probed.stdout) == (3, ""), probed
    assert probed.stderr == (f"netlab: lab fk is being changed by {ME} while probe read it: what the probes met "
                             "then is its work half done, not the lab's fault; run probe again once it has "
                             "finished\n"), probed
    assert (traced.returncode, traced.stdout) == (3, ""), traced
    assert traced.stderr.endswith(f"netlab: lab fk is being changed by {ME} while trace read it: what the packet "
                                  "met then is its work half done, not the lab's fault; run trace again once it "
                                  "has finished\n"), traced


def test_the_api_raises_lab_busy_as_the_cli_says_it(lab, running):
    with lab_lock.LabLock(lab.name, "netlab up"):
        with pytest.raises(LabBusy, match=re.escape(f"is being changed by {ME} while probe read it")):
            Lab.attach(lab.name).probe()
        with pytest.raises(LabBusy, match=re.escape(f"is being changed by {ME} while trace read it")):
            Lab.attach(lab.name).trace("a", "b")


def test_an_up_that_began_and_ended_while_the_probes_ran_is_named(lab, running):
    def up_runs():
        with lab_lock.LabLock(lab.name, "netlab up"):
            state_mod.load_state(lab.name).save()

    running.do = up_runs
    with pytest.raises(LabBusy, match=re.escape(f"lab fk was being changed by {ME} while probe read it")):
        internal_probe(Lab.attach(lab.name))
    with pytest.raises(LabBusy, match=re.escape(f"lab fk was being changed by {ME} while trace read it")):
        Lab.attach(lab.name).trace("a", "b")


def test_failures_with_nobody_at_work_are_the_verdict(lab, running):
    assert internal_probe(Lab.attach(lab.name)) is FAILED


def test_a_name_the_lab_has_not_is_the_users_mistake_while_an_up_holds_it(lab, running):
    """QA: beside an up at work, `trace --lab L a zzz`, `trace zz a`, `trace a svc/nosuch` and Lab.reach("a",
    "zzz") said the lab was being changed (exit 3, LabBusy: "what the packet met then is its work half done"),
    though no packet was sent: a name the lab does not have is the user's mistake, said as when nobody is at work
    (exit 2), before anything of the lab is read."""
    sent = []
    running.do = lambda: sent.append(1)
    idle = [run_cli("trace", "--lab", lab.name, *args) for args in (("a", "zzz"), ("zz", "a"), ("a", "svc/nosuch"))]
    with lab_lock.LabLock(lab.name, "netlab up"):
        held = [run_cli("trace", "--lab", lab.name, *args) for args in (("a", "zzz"), ("zz", "a"), ("a", "svc/nosuch"))]
        with pytest.raises(UsageError, match=re.escape("lab fk has no pod, node or internet host 'zzz'")):
            Lab.attach(lab.name).reach("a", "zzz")
        with pytest.raises(UsageError, match=re.escape("lab fk has no pod, node, internet host or Service 'zzz'")):
            Lab.attach(lab.name).trace("a", "zzz")
        with pytest.raises(UsageError, match=re.escape("lab fk has no pod, node or internet host 'zz' to send")):
            Lab.attach(lab.name).trace("zz", "a")
    assert [(r.returncode, r.stdout, r.stderr) for r in held] == [(r.returncode, r.stdout, r.stderr) for r in idle]
    assert [r.returncode for r in held] == [2, 2, 2], held
    assert "lab fk has no pod, node, internet host or Service 'zzz'" in held[0].stderr, held[0]
    assert "lab fk has no pod, node or internet host 'zz' to send from" in held[1].stderr, held[1]
    assert "nosuch" in held[2].stderr and "being changed" not in held[2].stderr, held[2]
    assert sent == []  # no packet, no probe
