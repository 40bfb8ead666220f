"""A `netlab probe` run waits for the machine's probing turn once, and says so once, also when the CLI's early start
(netlab/probe/early.py) took the turn and then sent nothing of its own (the table had less room than the kept job
was cut for) or was stopped (the run made another job): the run probes in that turn. Seen before: the early start
waited and said so, left the turn, and the run waited for it again and said it again, another run having taken it
meanwhile; its report's turn_wait_s and elapsed counted only the second wait.

No root, no kernel: the lock is a file of the test's own (never the machine's), another run holds it 2 s of a
fake clock each time this process asks for it, and the agent is stood in for.
"""

from __future__ import annotations

import fcntl
import os
import re
from types import SimpleNamespace

import pytest
from test_probe_services import svc_lab

from netlab.errors import EnvironmentNotReady
from netlab.probe import early, listeners, runner, spawn, turns
from netlab.probe.matrix import PROTOS
from netlab.probe.tasks import Observation, Output
from netlab.realize import state_dir
from netlab.realize.state import state_version

OPTIONS = early.options_key(tuple(PROTOS), 1.0, "auto", True, 0)  # runner.run's defaults
HELD = 2.0  # fake seconds another run holds the turn, each time this process asks for it
LOADING = 0.25  # fake seconds the CLI loads the models, between the early start and the run
OTHER = "pid 1 (netlab probe of lab other)"


@pytest.fixture
def machine(tmp_path, monkeypatch):
    """The lab "svc" (its state file under the test's tmp dir), its namespaces all there; a fake clock that moves
    only while this process waits for the turn, or when the test moves it; every wait said, every agent sent."""
    monkeypatch.setattr(state_dir, "STATE_ROOT", str(tmp_path / "state"))
    with open(os.path.join(state_dir.lab_dir("svc"), state_dir.STATE_FILE), "w") as fh:
        fh.write("{}")
    m = SimpleNamespace(now=100.0, said=[], waits=0, sent=[], stopped=[], busy=False, room=300, lab=svc_lab())
    clock = SimpleNamespace(monotonic=lambda: m.now)
    for module in (turns, early, runner):
        monkeypatch.setattr(module, "time", clock)
    monkeypatch.setattr(turns, "LOCK_PATH", str(tmp_path / "lock"))

    def take(fd, deadline, waiting, busy, told=False, quiet_for=0.0, say=None):
        m.waits += 1
        m.now += HELD  # another run's turn, past QUIET_FOR: said
        m.said.append(waiting(OTHER))
        if m.busy:
            raise busy(OTHER)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the real flock: never this process's twice at once
        return True

    class Agent:
        def __init__(self, job):
            self.job = job
            m.sent.append(job)

        def result(self, limit):
            return Output({t.id: Observation(outcome="reply") for t in self.job.tasks}, {}, {}, {})

        def interrupt(self):
            m.stopped.append((self.job, len(m.sent)))

    monkeypatch.setattr(turns.lockfile, "take", take)
    monkeypatch.setattr(spawn, "start", Agent)
    monkeypatch.setattr(listeners, "start", lambda hosts, port, lifetime: listeners.Listeners(port))
    monkeypatch.setattr(runner, "is_netns_mount", lambda ns: True)
    monkeypatch.setattr(early.nb, "probe_budget", lambda: m.room)
    return m


def kept_then_begun(m, change=None, room=None) -> early.Early:
    """A first run that keeps its job, then the next run's early start on it (``change``: the kept job made into
    one the run will not make; ``room``: the table's room then), as early.begin starts it; the models load."""
    first = runner.run(m.lab, early=early.Early("svc", state_version("svc"), OPTIONS))
    assert first.stats["turn_wait_s"] == HELD and len(m.said) == 1
    run = early.Early("svc", state_version("svc"), OPTIONS)
    kept = early._read(run)
    assert kept is not None and kept[0] == m.sent[-1]
    if change is not None:
        change(kept[0])
    if room is not None:
        m.room = room
    m.said.clear()
    m.waits, m.sent = 0, []
    run.start(*kept)
    m.now += LOADING
    return run


def test_an_early_start_that_sends_nothing_leaves_the_run_its_turn(machine):
    """Less room in the table than the kept job was cut for: the early agent does not start, and the run makes its
    own job (its budget the room now) in the turn the early start waited for."""
    run = kept_then_begun(machine, room=299)
    assert not run.started
    report = runner.run(machine.lab, early=run)
    assert machine.said == [f"lab svc: waiting for {OTHER} to finish: one probe runs at a time on a machine (they "
                            "share its neighbour table)"] and machine.waits == 1
    assert report.stats["turn_wait_s"] == HELD  # the whole wait
    assert report.elapsed == HELD + LOADING  # from when the run began to wait
    assert [job.budget for job in machine.sent] == [299]
    assert turns.holder() is None  # the turn is left


def test_a_stopped_early_agent_leaves_the_run_its_turn(machine):
    """The kept job is not the one the run makes: the early agent is stopped (it sweeps its entries, in the turn),
    then the run's own job is sent in the same turn."""
    run = kept_then_begun(machine, change=lambda job: job.tasks.pop())
    assert run.started
    report = runner.run(machine.lab, early=run)
    assert len(machine.said) == 1 and machine.waits == 1 and not run.claimed
    assert report.stats["turn_wait_s"] == HELD and report.elapsed == HELD + LOADING
    assert len(machine.sent) == 2 and machine.stopped == [(machine.sent[0], 1)]  # stopped before the run's went
    assert turns.holder() is None


def test_a_claimed_early_agent_counts_its_wait_once(machine):
    run = kept_then_begun(machine)
    report = runner.run(machine.lab, early=run)
    assert run.claimed and len(machine.sent) == 1 and not machine.stopped
    assert len(machine.said) == 1 and machine.waits == 1
    assert report.stats["turn_wait_s"] == HELD and report.elapsed == HELD + LOADING
    assert turns.holder() is None


def test_an_early_wait_that_ran_out_is_the_runs_error_with_no_second_wait(machine):
    """Another run held the turn past turns.WAIT while the early start waited: the run says so, without waiting
    as long again (and saying it waits again)."""
    runner.run(machine.lab, early=early.Early("svc", state_version("svc"), OPTIONS))
    machine.said.clear()
    machine.waits, machine.busy = 0, True
    run = early.begin("svc", OPTIONS)
    assert run is not None and not run.started
    with pytest.raises(EnvironmentNotReady, match=re.escape(f"lab svc: {OTHER} has been probing for over 300 s")):
        runner.run(machine.lab, early=run)
    assert machine.waits == 1 and len(machine.said) == 1 and machine.sent[1:] == []
