"""A wait for the lab's lock is told only once it is a wait (no root).

`netlab up --watch` asks each round whether the lab is held by taking its lock shared for a moment
(lab_lock.lab_lock_holder). A plain `up` (`break`, `impair`, `down`) that tried the lock in that moment printed
"netlab: waiting for pid N (netlab up --watch ...) to release lab X", for a wait of microseconds. The wait is now
told once it has lasted lab_lock.QUIET_FOR, and then at once, naming the holder; a quiet lock (the watcher's
own, whose line says its waits) keeps a wait once it outlasted its next try.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys
import time
import types

import pytest

from netlab import lockfile
from netlab.realize import state_dir
from netlab.realize import lab_lock

LAB = "grace"

HOLD = r"""
import fcntl, os, sys
from netlab.realize.state_dir import lab_dir, LOCK_FILE
from netlab.realize.lab_lock import LabLock
lab, how = sys.argv[1], sys.argv[2]
if how == "shared":  # as `up --watch` asks whether the lab is held
    fd = os.open(os.path.join(lab_dir(lab), LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_SH)
    print("held", flush=True)
    sys.stdin.readline()
    os.close(fd)
else:
    with LabLock(lab, how):
        print("held", flush=True)
        sys.stdin.readline()
print("released", flush=True)
sys.stdin.readline()
"""


@contextlib.contextmanager
def holder(how: str):
    """Another process holding the lab's lock until ``release`` is called: "shared", or LabLock's command."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, LAB, how], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdin is not None and proc.stdout is not None

    def release() -> None:
        if proc.poll() is None and not getattr(proc, "released", False):
            proc.stdin.write("go\n")
            proc.stdin.flush()
            assert proc.stdout.readline() == "released\n"
            proc.released = True

    try:
        assert proc.stdout.readline() == "held\n"
        yield proc, release
    finally:
        proc.kill()
        proc.wait()


def sleeps(monkeypatch, before) -> None:
    """lockfile.take's pause between tries calls ``before()`` first."""
    def sleep(seconds: float) -> None:
        before()
        time.sleep(seconds)

    monkeypatch.setattr(lockfile, "time", types.SimpleNamespace(monotonic=time.monotonic, sleep=sleep))


def test_a_lock_held_for_a_moment_is_taken_without_a_word(state_root, monkeypatch, caplog):
    """The watcher's question holds the lock shared when the command tries it, and lets go before its next try
    (20 ms later): no "waiting for ..." line, and a quiet lock (the watcher's own repair) keeps no wait."""
    caplog.set_level(logging.WARNING, logger="netlab")
    state_dir.lab_dir(LAB)
    for quiet in (False, True):
        with holder("shared") as (proc, release):
            sleeps(monkeypatch, release)  # the first try failed: the holder lets go now
            with lab_lock.LabLock(LAB, "netlab up", quiet=quiet) as lock:
                assert proc.released  # it did wait for the holder
        assert [r.getMessage() for r in caplog.records] == []
        assert lock.waited is None and lock.waited_for is None


def test_a_longer_wait_is_told_once_as_soon_as_the_grace_is_over(state_root, monkeypatch, caplog):
    caplog.set_level(logging.WARNING, logger="netlab")
    state_dir.lab_dir(LAB)
    with holder("netlab up") as (proc, release):
        sleeps(monkeypatch, lambda: caplog.records and release())  # held until the wait is told
        start = time.time()
        with lab_lock.LabLock(LAB, "netlab down", wait=20):
            pass
    said = [(r.getMessage(), r.created - start) for r in caplog.records]
    assert [text for text, _ in said] == [f"waiting for pid {proc.pid} (netlab up) to release lab {LAB}"]
    assert lab_lock.QUIET_FOR <= said[0][1] < lab_lock.QUIET_FOR + 2.0, said


def test_a_quiet_lock_keeps_a_wait_that_outlasted_its_next_try(state_root, monkeypatch, caplog):
    """The watcher's own repair: a command held the lab past its next try (20 ms on), for less than QUIET_FOR:
    the watcher's line says that wait (waited, waited_for), LabLock itself says nothing."""
    caplog.set_level(logging.WARNING, logger="netlab")
    state_dir.lab_dir(LAB)
    tries = []
    with holder("netlab up") as (proc, release):
        sleeps(monkeypatch, lambda: tries.append(1) if len(tries) < 2 else release())  # the third try gets it
        with lab_lock.LabLock(LAB, "netlab up --watch", quiet=True) as lock:
            pass
    assert not caplog.records
    assert lock.waited_for == f"pid {proc.pid} (netlab up)" and lock.waited is not None and lock.waited > 0.02


def test_a_lock_held_for_a_moment_is_no_busy_lab_even_with_no_wait(state_root, monkeypatch):
    """`--wait 0`: the watcher's question held the lock when the command tried it once; the command said the lab
    was in use by `netlab up --watch`. It tries once more after its first pause whatever the deadline."""
    state_dir.lab_dir(LAB)
    with holder("shared") as (proc, release):
        sleeps(monkeypatch, release)
        with lab_lock.LabLock(LAB, "netlab up", wait=0):
            assert proc.released
    with holder("netlab up") as (proc, release):  # held for longer: busy, after that one more try
        with pytest.raises(Exception, match=f"pid {proc.pid}"):
            with lab_lock.LabLock(LAB, "netlab down", wait=0):
                pass


def test_a_lock_taken_without_waiting_tells_no_wait_when_it_is_busy(tmp_path):
    """The one more try of a lock taken with no wait (--wait 0, a second `up --watch`'s watcher lock, whose
    waiting line is empty) is no wait to tell of: a second watcher printed an empty "netlab: " line before its
    refusal."""
    import fcntl
    import os

    path = str(tmp_path / "lock")
    held, mine = os.open(path, os.O_RDWR | os.O_CREAT), os.open(path, os.O_RDWR)
    fcntl.flock(held, fcntl.LOCK_EX)  # another open file description: its flock conflicts
    said: list[str] = []
    try:
        with pytest.raises(RuntimeError, match="busy"):
            lockfile.take(mine, time.monotonic(), waiting=lambda holder: "", busy=lambda holder: RuntimeError("busy"),
                          say=said.append)
    finally:
        os.close(held)
        os.close(mine)
    assert said == []


def test_the_time_before_the_first_try_is_no_wait(state_root, monkeypatch, caplog):
    """A command slow to reach the lock (the lab's folder made and checked on a loaded machine: a second here, on a
    clock that moves only then) that meets the watcher's question at its first try waited a moment: nothing said.
    The wait was counted from LabLock's start, so its first failed try was past the grace, and told (an integration
    test under load saw "waiting for" after a 50-ms question, test_lab_lock_moment.py)."""
    caplog.set_level(logging.WARNING, logger="netlab")
    state_dir.lab_dir(LAB)
    now = [1000.0]
    clock = types.SimpleNamespace(monotonic=lambda: now[0], sleep=time.sleep)
    monkeypatch.setattr(lab_lock, "time", clock)
    real_open = lab_lock._open_lab_file

    def slow_open(lab: str, name: str):
        now[0] += 1.0
        return real_open(lab, name)

    monkeypatch.setattr(lab_lock, "_open_lab_file", slow_open)
    with holder("shared") as (proc, release):
        def sleep(seconds: float) -> None:  # the first try failed: the question ends now
            release()
            time.sleep(seconds)

        monkeypatch.setattr(lockfile, "time", types.SimpleNamespace(monotonic=lambda: now[0], sleep=sleep))
        with lab_lock.LabLock(LAB, "netlab up"):
            assert proc.released  # it did meet the question
    assert [r.getMessage() for r in caplog.records] == []
