"""The pytest plugin's labs and their pytest process (realize/owner.py, netlab/pytest_owners.py). The root side,
a real pytest killed with SIGKILL, is tests/integration/test_plugin_killed.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from fake_lab import make_lab, up

from netlab import pytest_owners
from netlab.kernel.fake import FakeKernel
from netlab.realize import owner
from netlab.realize import state as state_mod
from netlab.realize.state_schema import check_state

lab = pytest.fixture(make_lab, name="lab")


# --- the owner record --------------------------------------------------------------------------


def _start(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[19])


def test_a_running_process_is_not_gone_and_its_record_is_its_own():
    me = owner.identity(os.getpid())
    assert me is not None and me["pid"] == os.getpid() and me["start"] == _start(os.getpid())
    assert me["by"] == "pytest" and me["boot"] and me["pidns"] == os.stat("/proc/self/ns/pid").st_ino
    assert owner.gone(me) is False


def test_an_ended_process_is_gone_whether_reaped_or_a_zombie():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    record = owner.identity(proc.pid)
    assert record is not None and owner.gone(record) is False
    proc.send_signal(signal.SIGKILL)
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # dead, not reaped: a zombie
    assert owner.gone(record) is True
    proc.wait()
    assert owner.gone(record) is True


def test_a_pid_reused_by_another_process_is_gone():
    """The same pid, another start time: another process (the pid was reused)."""
    me = owner.identity(os.getpid())
    assert me is not None
    assert owner.gone({**me, "start": me["start"] + 1}) is True


@pytest.mark.parametrize("field, value", [("boot", "another-boot"), ("boot", ""), ("pidns", 1)])
def test_a_record_of_another_boot_or_pid_namespace_is_never_judged_gone(field, value):
    """A pid counted in another pid namespace (a run in a container sharing the state directory) or a record
    of another boot proves nothing here: such a lab is never named nor taken down."""
    dead = owner.identity(os.getpid())
    assert dead is not None
    dead = {**dead, "pid": 2 ** 22 + 7, field: value}  # beyond pid_max: no such process here
    assert owner.gone(dead) is False


def test_a_lab_brought_up_fresh_under_a_claim_records_this_process(lab):
    k = FakeKernel()
    with owner.claimed():
        up(lab, k)
    st = state_mod.load_state(lab.name)
    assert st is not None
    assert owner.of(st.extra) == owner.identity(os.getpid())
    data, _ = check_state(open(st.path, "rb").read(), lab.name)  # the strict schema takes it
    assert data["extra"]["owner"]["pid"] == os.getpid()


def test_a_lab_brought_up_without_a_claim_or_up_already_records_no_owner(lab):
    """A lab made by hand (the CLI, Lab.up) has no owner; a claim does not take over a lab that was up."""
    k = FakeKernel()
    up(lab, k)
    with owner.claimed():
        up(lab, k)
    st = state_mod.load_state(lab.name)
    assert st is not None and owner.of(st.extra) is None


@pytest.mark.parametrize("edit", [{"by": "someone"}, {"pid": "12"}, {"pid": 0}, {"start": -1}, {"boot": 3},
                                  {"extra_key": 1}])
def test_the_schema_refuses_a_wrong_owner_record(lab, edit):
    k = FakeKernel()
    with owner.claimed():
        up(lab, k)
    st = state_mod.load_state(lab.name)
    assert st is not None
    data = json.loads(open(st.path, "rb").read())
    data["extra"]["owner"].update(edit)
    with pytest.raises(ValueError, match="owner"):
        check_state(json.dumps(data).encode(), lab.name)


# --- which labs the plugin names or takes down ------------------------------------------------------


def _records():
    me = owner.identity(os.getpid())
    assert me is not None
    gone = {**me, "pid": 2 ** 22 + 7}  # beyond pid_max: no such process
    gone_too = {**me, "start": me["start"] + 1}  # this pid, another process
    return me, gone, gone_too


def test_left_up_names_only_the_labs_whose_process_is_gone(monkeypatch):
    me, gone, gone_too = _records()
    monkeypatch.setattr(pytest_owners, "plugin_labs", lambda: [("live-1", me), ("dead-1", gone),
                                                               ("dead-2", gone_too)])
    assert [lab for lab, _ in pytest_owners.left_up()] == ["dead-1", "dead-2"]
    line = pytest_owners.left_up_line("dead-1", gone)
    assert f"pytest (pid {gone['pid']})" in line and line.endswith("netlab down --lab dead-1")


def test_a_crashed_workers_labs_go_down_and_no_other(monkeypatch):
    from netlab.api import Lab

    me, gone, gone_too = _records()
    downed = []
    monkeypatch.setattr(Lab, "down", lambda self, **kw: downed.append(self.name))
    monkeypatch.setattr(pytest_owners, "plugin_labs", lambda: [("live-1", me), ("w0-a", gone), ("other", gone_too),
                                                               ("w0-b", dict(gone))])
    assert pytest_owners.take_down_workers_labs(gone) == ["lab w0-a: taken down", "lab w0-b: taken down"]
    assert downed == ["w0-a", "w0-b"]


def test_a_worker_still_running_keeps_its_labs(monkeypatch):
    from netlab.api import Lab

    me, _, _ = _records()
    monkeypatch.setattr(Lab, "down", lambda self, **kw: pytest.fail("taken down under a live worker"))
    monkeypatch.setattr(pytest_owners, "plugin_labs", lambda: [("live-1", me)])
    assert pytest_owners.take_down_workers_labs(me) == []


def test_plugin_labs_reads_the_owner_records_and_skips_other_labs(lab, monkeypatch):
    """Of the labs up, only those the plugin's claim recorded; a corrupt state is passed over."""
    k = FakeKernel()
    with owner.claimed():
        up(lab, k)
    assert pytest_owners.plugin_labs() == [(lab.name, owner.identity(os.getpid()))]
    broken = os.path.join(os.path.dirname(os.path.dirname(state_mod.load_state(lab.name).path)), "zz")
    os.makedirs(broken)
    with open(os.path.join(broken, "state.json"), "w") as fh:
        fh.write("[]")
    assert [name for name, _ in pytest_owners.plugin_labs()] == [lab.name]
