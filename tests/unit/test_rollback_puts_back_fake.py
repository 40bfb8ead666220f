"""A failed or stopped converge of a running lab asks each feature to put back what its start changed for the run's
topology (Feature.before_run, Feature.put_back; lab/rollback.py), against the fake kernel (no root).

The rollback undid the journal's ops, deleted the run's namespaces and put the state back, and only the CNI feature
took back what its start did: a converge stopped after the containers feature replaced a container whose command
changed (and the cluster DNS's dnsmasq, for a new Service) said "rolled back" and left them (QA qa59m 1). Here a
recording feature checks the order: the features' state is noted once, before the run changes anything; put back
once the kernel's objects are as before the run, the state holds the last good run's topology again and the run's
namespaces are gone, with the lab that topology gives and the run's own, never in the namespaces the rollback
deleted; only for a running lab, only when the run failed; every save meanwhile best effort (a full disk); what a
feature could not put back, or its failure, is said in the line, after "rolled back". The features' own put back is
tests/unit/test_put_back_workload.py's and tests/integration/test_rollback_puts_back.py's (real containers).
"""

from __future__ import annotations

import errno
import signal

import pytest
from fake_lab import TOPO, IdleFeature, make_lab, up

from netlab.errors import ApplyFailed, netlab_command
from netlab.kernel.fake import FakeKernel
from netlab.lab import rollback, up as lab_up
from netlab.lab.journal import Journal
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.realize import state as state_mod
from netlab.realize.state_dir import StateWriteFailed

lab = pytest.fixture(make_lab, name="lab")


def snapshot_all(k) -> dict:
    return {name: k.snapshot(name) for name in sorted(k.ns)}


class Recorder(IdleFeature):
    """A feature that notes what the lab is when the run asks it what it holds, and when the rollback asks it to put
    that back."""

    name = "recorder"

    def __init__(self, kernel, says: list[str] | None = None, fails: Exception | None = None, saves: bool = False,
                 fail_start: bool = False):
        self.k, self.says, self.fails, self.saves, self.fail_start = kernel, says or [], fails, saves, fail_start
        self.befores: list[dict] = []
        self.put: list[dict] = []

    def before_run(self, lab, state):
        self.befores.append({"kernel": snapshot_all(self.k), "topology": state.topology, "lab": lab})
        return len(self.befores)

    def start(self, lab, state, early=None):
        if self.fail_start:  # after the network and the other features' start: the run fails here
            raise ApplyFailed("injected: the last feature failed")
        return super().start(lab, state, early)

    def put_back(self, lab, state, ran, was, skip):
        self.put.append({"kernel": snapshot_all(self.k), "topology": state.topology, "lab": lab, "ran": ran,
                         "was": was, "skip": set(skip), "tearing_down": state.tearing_down})
        if self.saves:
            assert state.save() is False  # best effort: the full disk refuses it, and the rollback goes on
        if self.fails is not None:
            raise self.fails
        return list(self.says)


def edited(tmp_path):
    """The lab with pod c on n1 (a namespace the run makes) and pod b's node block changed (nothing else)."""
    path = tmp_path / "edited.yaml"
    path.write_text(TOPO + "  - {name: c, node: n1, ip: 10.244.0.4}\n")
    return resolve(load_topology(str(path))), str(path)


def test_a_failed_converge_puts_back_each_features_work_once_the_lab_is_as_before(lab, tmp_path):
    """A fault at every step of a run that adds pod c: before any change the recorder is asked what it holds (the
    kernel as before, the state's old topology); the rollback asks it once to put that back, with the kernel's
    objects as before the run (fk-c gone), the old topology in the state, the lab it gives (no pod c) and the run's
    (with c), fk-c among the namespaces it leaves alone. A run that succeeds puts nothing back."""
    k = FakeKernel()
    up(lab, k)
    old = state_mod.load_state(lab.name).topology
    before = snapshot_all(k)
    new, path = edited(tmp_path)
    for at in range(1, 40):
        rec = Recorder(k)
        try:
            lab_up.up(new, k, features=(rec,), source=path, reconfigure=True, journal=Journal(k, fault_at=at))
        except ApplyFailed as exc:
            assert str(exc).endswith("; rolled back"), (at, str(exc))
        else:
            assert at > 3 and rec.put == [] and len(rec.befores) == 1
            break
        assert len(rec.befores) == 1 and rec.befores[0]["kernel"] == before and rec.befores[0]["topology"] == old
        assert [p.name for p in rec.befores[0]["lab"].pods] == ["a", "b", "c"]
        assert len(rec.put) == 1, at
        put = rec.put[0]
        assert put["kernel"] == before, at  # the journal undone and fk-c deleted first
        assert put["topology"] == old and [p.name for p in put["lab"].pods] == ["a", "b"]
        assert [p.name for p in put["ran"].pods] == ["a", "b", "c"] and put["was"] == 1
        assert put["skip"] <= {"fk-c"}, put["skip"]  # the run's namespace, when it came so far
        assert put["tearing_down"] is True
        assert state_mod.load_state(lab.name).tearing_down is False
    else:
        raise AssertionError("up never got past the injected faults")


def test_a_signal_puts_back_too_and_a_fresh_lab_has_nothing_to_put_back(lab, tmp_path):
    """SIGTERM at every step: the same put back, and the plain line. A fresh lab's failed up asks nothing (the whole
    lab goes)."""
    k = FakeKernel()
    fresh = Recorder(k)
    with pytest.raises(ApplyFailed):
        lab_up.up(lab, k, features=(fresh,), journal=Journal(k, fault_at=5))
    assert fresh.befores == [] and fresh.put == []
    up(lab, k)
    new, path = edited(tmp_path)
    for at in range(1, 40):
        rec = Recorder(k)
        try:
            lab_up.up(new, k, features=(rec,), source=path, reconfigure=True, journal=Journal(k, signal_at=at))
        except rollback.Interrupted as exc:
            assert str(exc) == "interrupted by SIGTERM; rolled back" and exc.exit_code == 128 + signal.SIGTERM
        else:
            break
        assert len(rec.befores) == 1 and len(rec.put) == 1, at


def test_what_a_feature_could_not_put_back_is_said_after_rolled_back(lab, tmp_path):
    """Its lines, with the `up` that repairs the lab; a feature that fails there is said too, and the next one still
    puts back its own."""
    k = FakeKernel()
    up(lab, k)
    new, path = edited(tmp_path)
    says = Recorder(k, says=["pod a container main: could not start: [Errno 2] No such file or directory"])
    fails = Recorder(k, fails=RuntimeError("boom"))
    fails.name = "broken"
    last = Recorder(k, fail_start=True)
    last.name = "last"
    with pytest.raises(ApplyFailed) as exc:
        lab_up.up(new, k, features=(fails, says, last), source=path, reconfigure=True)
    assert str(exc.value).startswith("injected: the last feature failed; rolled back, but for ")
    assert str(exc.value).endswith(
        "; rolled back, but for what the run changed of broken (RuntimeError: boom); pod a container main: could "
        "not start: [Errno 2] No such file or directory, as it put back what the run had changed "
        f"(`{netlab_command('up --lab fk')}` repairs it)"), str(exc.value)
    assert len(last.put) == 1


def test_a_full_disk_does_not_stop_the_put_back(lab, tmp_path, monkeypatch):
    """The state cannot be written while the features put back (a full disk): their saves are best effort, as the
    rollback's own, and the rollback ends with its line."""
    k = FakeKernel()
    up(lab, k)
    new, path = edited(tmp_path)
    rec = Recorder(k, saves=True, fail_start=True)
    real = state_mod.write_atomic

    def full(*args, **kw):
        if rec.put:  # from the put back on
            raise StateWriteFailed("/state", "No space left on device", errno.ENOSPC)
        return real(*args, **kw)

    monkeypatch.setattr(state_mod, "write_atomic", full)
    with pytest.raises(ApplyFailed, match=r"; rolled back$"):
        lab_up.up(new, k, features=(rec,), source=path, reconfigure=True)
    assert len(rec.put) == 1


class Handle:
    """A feature's before_run handle that names, once put back, the containers whose logs a restart of the run
    took (workload/put_back.py's Before.gone)."""

    def __init__(self):
        self.gone: list[str] = []


class LosesLogs(Recorder):
    name = "loses-logs"

    def before_run(self, lab, state):
        super().before_run(lab, state)
        self.handle = Handle()
        return self.handle

    def put_back(self, lab, state, ran, was, skip):
        super().put_back(lab, state, ran, was, skip)
        was.gone = ["a/main", "b/side"]
        return []


def test_the_logs_the_runs_restarts_took_are_said_after_rolled_back(lab, tmp_path):
    """They cannot come back, and no `up` repairs them: the line names the containers, without a repair."""
    k = FakeKernel()
    up(lab, k)
    new, path = edited(tmp_path)
    with pytest.raises(ApplyFailed) as exc:
        lab_up.up(new, k, features=(LosesLogs(k, fail_start=True),), source=path, reconfigure=True)
    assert str(exc.value) == ("injected: the last feature failed; rolled back, but for the logs containers a/main, "
                              "b/side had before the run, which went when the run restarted them"), str(exc.value)
