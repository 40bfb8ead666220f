"""Commands that read a running lab, then met a `netlab down` of it (no root: the fake kernel, the real lock).

QA q15: `up --lab NAME`, plain `up` and `Lab(name).repair()` read the lab's saved topology, then waited for the
lab's lock while a `down` held it, and then made the lab again from what they had read: the lab was back after
down said "is down". `break` read the lab the same way and failed with exit 4 ("broken already?"). `exec`,
`logs` and `get pods` racing a down said the lab was broken and how to repair it, where status and probe say it
is being taken down. The real commands, with a real down held halfway: tests/integration/test_down_racing_commands.py.
"""

from __future__ import annotations

import os
import sys
import threading

import pytest
from cli_inprocess import run_cli
from fake_lab import machine_holds, make_lab, up

from netlab.errors import down_command, netlab_command
from netlab import api
from netlab.api import views
from netlab.api.exec import LogWriter, open_log
from netlab.api.topology import load_running
from netlab.breaks import run as break_run
from netlab.errors import NetlabError, UsageError
from netlab.kernel.fake import FakeKernel
from netlab.lab import teardown
from netlab.lab import up as lab_up
from netlab.lab.ownership import tag_for
from netlab.realize.lab_lock import LabLock
from netlab.realize.netns_missing import lab_netns_gone
from netlab.realize import state_dir
from netlab.realize.state import load_state
from netlab.workload.containers import log_path

lab = pytest.fixture(make_lab, name="lab")


@pytest.fixture
def kernel(monkeypatch):
    """The fake kernel the API's up runs on (lifecycle.up's doctor and live kernel left out)."""
    k = FakeKernel()

    def fake_up(lab, source=None, progress=None, wait=60.0, features=None, reconfigure=False, running=None):
        kw = {} if running is None else {"running": running}  # a lab's saved topology, read before the lock
        return lab_up.up(lab, k, (), source, progress, wait, reconfigure=reconfigure, **kw)

    monkeypatch.setattr("netlab.api.lifecycle.up", fake_up)
    monkeypatch.setattr("netlab.cli.lab.require_root", lambda: None)
    monkeypatch.delenv("NETLAB_LAB", raising=False)
    machine_holds(monkeypatch, k)
    return k


def take_down(k: FakeKernel, name: str) -> None:
    """What `netlab down` does once it holds the lab's lock (lab/teardown.py): everything, the state too."""
    state = load_state(name)
    assert state is not None
    teardown.teardown(k, (), state, tag_for(state))


def test_a_repair_that_waited_for_a_down_is_refused_and_makes_nothing_again(lab, kernel):
    up(lab, kernel)
    loaded = load_running(lab.name)  # what Lab.repair, `up --lab` and plain `up` read before they take the lock
    said: list[BaseException] = []

    def repair() -> None:
        try:
            api.Lab.up_loaded(loaded, wait=30)
        except BaseException as exc:
            said.append(exc)

    with LabLock(lab.name, "netlab down"):  # a down holds the lab: the repair waits for it ...
        waiter = threading.Thread(target=repair)
        waiter.start()
        take_down(kernel, lab.name)  # ... while it takes the lab down
    waiter.join()
    assert not kernel.ns and load_state(lab.name) is None  # down's word holds: nothing was made again
    assert len(said) == 1 and isinstance(said[0], UsageError), said
    assert str(said[0]).startswith(f"lab {lab.name!r} is not up: taken down"), said[0]
    assert str(said[0]).endswith("; `Lab.up('FILE')` brings it up from a file"), said[0]  # QA q17 3: not the CLI's


@pytest.mark.parametrize("args", [("up", "--lab", "fk"), ("up",)], ids=["up --lab", "plain up"])
def test_up_of_a_running_lab_taken_down_meanwhile_says_not_up_as_serially(lab, kernel, monkeypatch, args):
    up(lab, kernel)
    real = lab_up.up

    def down_first(*a, **kw):  # the down came between up's read of the saved topology and its lock
        take_down(kernel, lab.name)
        return real(*a, **kw)

    monkeypatch.setattr(lab_up, "up", down_first)
    r = run_cli(*args)
    assert r.returncode == 2, r
    assert r.stderr.splitlines() == [
        "netlab: lab 'fk' is not up: taken down while this up waited for the lab; "
        f"`{netlab_command('up -t FILE')}` brings it up from a file"], r.stderr
    assert not kernel.ns and load_state(lab.name) is None
    serial = run_cli("up", "--lab", "fk")  # the same words, alone after the down
    assert serial.returncode == 2 and "lab 'fk' is not up" in serial.stderr, serial


def test_a_break_that_waited_for_a_down_is_refused_as_for_a_lab_not_up(lab, kernel, monkeypatch):
    up(lab, kernel)
    read = threading.Event()
    real = break_run.running_lab

    def running_lab(name: str):
        state = real(name)
        read.set()  # the break read the lab up: now the down may take it
        return state

    monkeypatch.setattr(break_run, "running_lab", running_lab)
    said: list[BaseException] = []

    def breaking() -> None:
        try:
            break_run.break_lab(lab.name, "ip-forward-off", wait=30)
        except BaseException as exc:
            said.append(exc)

    with LabLock(lab.name, "netlab down"):
        waiter = threading.Thread(target=breaking)
        waiter.start()
        read.wait()
        take_down(kernel, lab.name)
    waiter.join()
    assert len(said) == 1 and type(said[0]) is UsageError, said  # not ApplyFailed (exit 4: "broken already?")
    assert str(said[0]) == "lab 'fk' is not up: taken down while this break waited for the lab", said[0]
    assert said[0].exit_code == 2


def test_a_namespace_met_gone_during_a_down_says_the_lab_is_being_taken_down(lab, kernel):
    up(lab, kernel)
    state = load_state(lab.name)
    state.phase = "deleting"  # as down marks it before it stops the lab's processes and deletes its namespaces
    state.save()
    with LabLock(lab.name, "netlab down"):
        err = lab_netns_gone("fk-a", lab.name)
        assert str(err) == "lab fk is being taken down (`netlab down`): namespace fk-a was deleted with it"
        assert err.exit_code == 2
    # a down killed halfway (nobody holds the lab): list's and status's line for it, not "being taken down" (nor
    # "was deleted while lab fk is up; `up` makes it again": `down` finishes it)
    said = str(lab_netns_gone("fk-a", lab.name))
    assert said.startswith("lab fk: the `netlab down` that was taking it down") and said.endswith(
        f"`{down_command('fk')}` finishes it (namespace fk-a is not there)"), said


def test_a_log_met_gone_with_the_lab_says_it_was_taken_down(lab, kernel):
    up(lab, kernel)
    path = log_path(lab.name, "a", "main")
    take_down(kernel, lab.name)  # its folder, logs and state, went after `logs` read the lab up
    with pytest.raises(UsageError) as info:
        open_log(path, "a", "main", lab.name, writer=LogWriter(None, True))
    assert str(info.value) == ("lab fk was taken down (`netlab down`) meanwhile: the log of a/main went with it; "
                               "it is not up")


def test_get_pods_during_a_down_says_the_lab_is_being_taken_down(lab, kernel):
    up(lab, kernel)  # the fake kernel's namespaces have no /run/netns file: every pod's sandbox reads as gone
    state = load_state(lab.name)
    assert {p.status for p in views.pods(state, lab)} == {"SandboxChanged"}  # not down: the pods' status
    state.phase = "deleting"
    state.save()
    with LabLock(lab.name, "netlab down"), pytest.raises(NetlabError) as info:
        views.pods(state, lab)
    assert str(info.value) == ("lab fk is being taken down (`netlab down`): its pods' containers and namespaces go "
                               "with it")


def test_a_lab_folder_a_down_removes_right_after_a_command_checked_it_is_made_again_not_a_traceback(lab, kernel,
                                                                                                 monkeypatch):
    """A repair (as `up --lab`) that read the lab up, then took the lab's lock while a `down` in another process
    removed the lab's folder: the folder was there when the lock's code checked it (state_dir._check_dir) and gone
    when it noted it (_remember): FileNotFoundError, a traceback (seen once under load, here at that very point).
    Now the folder is made again, as for a folder found gone, and the repair says the lab is not up."""
    up(lab, kernel)
    loaded = load_running(lab.name)
    folder = state_dir.lab_dir(lab.name, create=False)
    state_dir.uncheck(folder)  # another process: it knows nothing of the folder yet (this one made it)
    real = state_dir._check_dir
    downs: list[str] = []

    def check_then_down(path: str) -> None:
        real(path)
        if path == folder and not downs and _called_from("_own_lab_dir"):  # the lock's making of the folder
            downs.append(path)
            take_down(kernel, lab.name)  # the down, in another process: this one's memory of the folder kept
            state_dir._checked.pop(folder, None)  # (this process's, here: the down's own process forgets it)

    monkeypatch.setattr(state_dir, "_check_dir", check_then_down)
    with pytest.raises(UsageError) as info:
        api.Lab.up_loaded(loaded, wait=30)
    assert downs == [folder]
    assert str(info.value).startswith(f"lab {lab.name!r} is not up: taken down"), info.value
    assert not kernel.ns and load_state(lab.name) is None


def test_a_folder_another_thread_forgot_as_this_one_looked_at_it_is_looked_at_again(tmp_path, monkeypatch):
    """Two threads of one process (an API user's Lab.down() beside a Lab.repair()): one forgot a lab's folder (a
    down removed it) between the other's read of what it knew and its own forgetting of it: KeyError."""
    path = str(tmp_path / "fk")
    os.mkdir(path)
    state_dir._checked[path] = (0, 0)  # known, as another directory than the one there now
    real = os.lstat

    def lstat(p, *args, **kwargs):
        if p == path:
            state_dir.uncheck(path)  # the other thread, meanwhile
        return real(p, *args, **kwargs)

    monkeypatch.setattr(os, "lstat", lstat)
    assert state_dir._still_checked(path) is False


def test_a_state_folder_removed_between_its_making_and_its_check_is_made_again(tmp_path, monkeypatch):
    """ensure_dir (the state folder, a lab's cni folder): the folder made or found, then removed by another command
    (its drop_root_if_made, a down) before its check: FileNotFoundError; now it is made again."""
    path = str(tmp_path / "cni")
    real = state_dir._check_dir
    removed: list[str] = []

    def removed_then_check(p: str) -> None:
        if p == path and not removed:
            removed.append(p)
            os.rmdir(p)
        real(p)

    monkeypatch.setattr(state_dir, "_check_dir", removed_then_check)
    assert state_dir.ensure_dir(path) == path and os.path.isdir(path) and removed == [path]


def _called_from(name: str) -> bool:
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_name != name:
        frame = frame.f_back
    return frame is not None
