"""The per-lab lock: "one proceeds, the other waits" for every pair, even across ``down``'s cleanup.

``down`` deletes the lab's state directory, lock file included, while it
holds the lock. A command that was waiting holds an fd of that deleted file:
locking it proves nothing. These tests play both sides with real processes
and a private state directory.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time

import pytest

from netlab.errors import LabBusy
from netlab.realize import lab_list, lab_lock

LAB = "iblock"

WAITER = r"""
import logging, os, sys, time
logging.basicConfig(format="netlab: %(message)s")  # a library caller's program: waits are logged
from netlab.realize.state import LabState
from netlab.realize.lab_lock import LabLock
marker = sys.argv[1]
with LabLock("iblock", sys.argv[2], wait=30):
    fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)   # fails if another is inside
    os.close(fd)
    LabState(lab="iblock").save()      # the lab's directory exists again for the one that proceeds
    time.sleep(0.3)
    os.unlink(marker)
print("done")
"""


@pytest.fixture
def root(state_root):
    return state_root


def start_waiter(root, marker, name) -> subprocess.Popen:
    env = dict(os.environ, NETLAB_STATE_DIR=str(root))
    return subprocess.Popen([sys.executable, "-c", WAITER, str(marker), name], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_until_waiting(proc: subprocess.Popen, within: float = 10.0) -> None:
    """The child printed "waiting for ..." (it holds an fd of the lock file and polls flock)."""
    fd = proc.stderr.fileno()
    seen = b""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if select.select([fd], [], [], 0.05)[0]:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            seen += chunk
        if b"waiting for" in seen:
            return
    raise AssertionError(f"the child never waited: {seen!r}")


def test_a_waiter_survives_the_holder_deleting_the_lab(root, tmp_path):
    """up waiting for down: down forgets the lab (lock file and all); up must proceed, not crash."""
    marker = tmp_path / "inside"
    with lab_lock.LabLock(LAB, "netlab down"):
        waiter = start_waiter(root, marker, "netlab up")
        wait_until_waiting(waiter)
        lab_list.forget(LAB)
        assert not (root / LAB).exists()
    out, err = waiter.communicate(timeout=30)
    assert waiter.returncode == 0, err.decode()
    assert out.strip() == b"done"
    assert (root / LAB / "state.json").is_file()


def test_one_proceeds_the_other_waits_after_the_lock_file_was_deleted(root, tmp_path):
    """A waiter on the deleted lock file and a newcomer on the new one are never inside together."""
    marker = tmp_path / "inside"
    with lab_lock.LabLock(LAB, "netlab down"):
        first = start_waiter(root, marker, "first")
        wait_until_waiting(first)
        lab_list.forget(LAB)
    second = start_waiter(root, marker, "second")
    results = [p.communicate(timeout=30) + (p.returncode,) for p in (first, second)]
    for out, err, code in results:
        assert code == 0, err.decode()  # FileExistsError on the marker: both were inside at once
        assert out.strip() == b"done"


def test_the_lock_file_is_the_one_at_the_path(root):
    with lab_lock.LabLock(LAB, "test") as lock:
        held = os.fstat(lock.fd)
        now = os.stat(root / LAB / "lock")
        assert (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino)


def test_one_watcher_per_lab_and_it_leaves_no_directory_behind(root):
    with lab_lock.WatcherLock(LAB):
        with pytest.raises(LabBusy, match=rf"lab {LAB} is already watched by pid {os.getpid()} "
                                                    r"\(netlab up --watch\); one watcher per lab"):
            with lab_lock.WatcherLock(LAB):
                pass
        with lab_lock.LabLock(LAB, "test"):  # the lab's own lock is another: commands still run beside it
            pass
        assert sorted(os.listdir(root / LAB)) == ["lock", "netlab-lab", "watcher"]
    assert not (root / LAB).exists()  # a lab that never came up: its directory goes with its watcher
    with lab_lock.WatcherLock(LAB):  # and the next may watch
        pass


def test_a_watcher_of_a_lab_taken_down_leaves_the_next_ones_file_alone(root):
    first = lab_lock.WatcherLock(LAB).__enter__()
    with lab_lock.LabLock(LAB, "down"):
        lab_list.forget(LAB)  # `down` removes the directory, the first watcher's file with it
    with lab_lock.WatcherLock(LAB):  # the lab up again, watched by another: not refused
        first.__exit__(None, None, None)  # the first ends (it saw the lab go)
        assert (root / LAB / "watcher").exists()  # the second's file: not the first's to remove
        with pytest.raises(LabBusy, match="already watched"):
            lab_lock.WatcherLock(LAB).__enter__()


def test_lab_lock_holder_says_who_holds_the_lab_now_and_who_held_it_last(state_root):
    """`up --watch` asks it each round: who is changing the lab now (its lines then wait for it), and who did last
    (the `up` that replaced the lab from another file). It never makes a lab's directory: the lab may be down."""
    assert lab_lock.lab_lock_holder(LAB) is None and lab_lock.lab_lock_holder(LAB, now=False) is None
    assert not os.path.exists(os.path.join(state_root, LAB))
    with lab_lock.LabLock(LAB, "netlab up"):  # another open file: its flock conflicts, as another process's does
        assert lab_lock.lab_lock_holder(LAB) == f"pid {os.getpid()} (netlab up)"
        (state_root / LAB / "state.json").write_text("{}")  # a lab, whose directory outlives the lock
    assert lab_lock.lab_lock_holder(LAB) is None
    assert lab_lock.lab_lock_holder(LAB, now=False) == f"pid {os.getpid()} (netlab up)"
