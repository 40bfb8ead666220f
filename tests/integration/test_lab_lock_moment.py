"""A command that tries the lab's lock while `up --watch` asks whether the lab is held says nothing of it.

The watcher asks each round by taking the lab's lock shared for a moment (lab_lock.lab_lock_holder). A plain
`up` or `down` that tried the lock in that moment printed "netlab: waiting for pid N (netlab up --watch ...) to
release lab X", for a wait of microseconds. Here the test plays the watcher's question, stretched to 50 ms and
made sure to meet the command: it holds the lock shared from before the command starts until the kernel shows the
command holding the lock file open read-write (LabLock's descriptor: it is trying the lock), then 50 ms more, and
then asks again every 50 ms (holding it 50 ms each time) until the command ends.

A wait is told once it has lasted lab_lock.QUIET_FOR (from the command's first try): on a loaded machine a question
held for "50 ms" lasts as long as the scheduler lets the asker sleep, and then the command rightly tells it. So the
test measures, on the clock the command counts by (CLOCK_MONOTONIC, one for the machine), the longest the questions
can have kept the command from the lock: from the last look that did not see it trying to the first that saw it
holding the lock (or its lab gone: down). What it proves: a command told a wait only when that was at least
QUIET_FOR; a wait of a question's moment (shorter) is told of no more (it was, before the grace).
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import threading
import time

import pytest

from helpers import NETLAB, lab_namespaces
from netlab.realize.lab_lock import QUIET_FOR
from netlab.realize.state_dir import LOCK_FILE, lab_dir

pytestmark = pytest.mark.root

HOLD = 0.05  # seconds each question holds the lock


def small(lab: str) -> str:
    return f"name: {lab}\nnodes: [{{name: n1}}]\npods: [{{name: a, node: n1}}, {{name: b, node: n1}}]\n"


def trying(pid: int, st: os.stat_result) -> bool:
    """Process ``pid`` has the lock file open read-write (LabLock's descriptor; lab_lock_holder's is read-only)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for name in fds:
        try:
            now = os.stat(f"/proc/{pid}/fd/{name}")
            if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
                continue
            with open(f"/proc/{pid}/fdinfo/{name}") as fh:
                flags = next(line for line in fh if line.startswith("flags:")).split()[1]
            if int(flags, 8) & os.O_ACCMODE == os.O_RDWR:
                return True
        except (OSError, StopIteration):
            continue
    return False


def run_asked(lab: str, *args: str) -> tuple[subprocess.CompletedProcess, bool, float]:
    """Run ``netlab ARGS`` while the lab's lock is asked about as a watcher asks; whether the first question met
    the command trying the lock, and the longest the questions can have kept it waiting (seconds: from the last
    look that did not see it trying the lock to the first that saw it hold the lock, its lab gone, or it ended)."""
    path = os.path.join(lab_dir(lab), LOCK_FILE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_SH)
    st = os.fstat(fd)
    proc = subprocess.Popen([*NETLAB, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    met, done = [False], threading.Event()
    since, until = [time.monotonic()], [float("inf")]

    def looked_trying() -> bool:
        at = time.monotonic()  # before the look: a look that misses it, it began trying after this
        if trying(proc.pid, st):
            return True
        since[0] = at
        return False

    def ask() -> None:
        try:
            deadline = time.monotonic() + 60
            while proc.poll() is None and time.monotonic() < deadline and not looked_trying():
                time.sleep(0.001)
            met[0] = proc.poll() is None and trying(proc.pid, st)
            time.sleep(HOLD)
        finally:
            os.close(fd)
        while not done.is_set():  # the watcher's next rounds
            ended = proc.poll() is not None
            try:
                again = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError:
                until[0] = min(until[0], time.monotonic())  # down removed the lab's directory: it held the lock
                done.wait(HOLD)
                continue
            try:
                fcntl.flock(again, fcntl.LOCK_SH | fcntl.LOCK_NB)
                if ended:
                    until[0] = min(until[0], time.monotonic())
                done.wait(HOLD)
            except BlockingIOError:
                until[0] = min(until[0], time.monotonic())  # the command holds it
            finally:
                os.close(again)
            done.wait(HOLD)

    asker = threading.Thread(target=ask)
    asker.start()
    try:
        out, err = proc.communicate(timeout=300)
    finally:
        until[0] = min(until[0], time.monotonic())  # it ended: it had the lock before
        done.set()
        proc.kill()
        asker.join()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), met[0], until[0] - since[0]


def said_no_wait_shorter_than_the_grace(proc: subprocess.CompletedProcess, longest: float) -> bool:
    """No "waiting for" line, or one for a wait of QUIET_FOR at least: load stretched the question into a wait."""
    return proc.returncode == 0 and ("waiting for" not in proc.stderr or longest >= QUIET_FOR)


def test_up_and_down_meeting_the_watchers_question_say_no_wait(labs):
    lab = labs.name("lkm")
    path, _ = labs.up(small(lab))
    proc, met, longest = run_asked(lab, "up", "-t", path)
    assert met, "the question never met the command trying the lock"
    assert said_no_wait_shorter_than_the_grace(proc, longest), (longest, proc.stderr)
    assert {f"{lab}-n1", f"{lab}-a", f"{lab}-b"} <= set(lab_namespaces(lab)), lab_namespaces(lab)  # still up
    proc, met, longest = run_asked(lab, "down", "--lab", lab)
    assert met, "the question never met the command trying the lock"
    assert said_no_wait_shorter_than_the_grace(proc, longest), (longest, proc.stderr)
    assert lab_namespaces(lab) == []
