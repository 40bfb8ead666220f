"""`netlab up --watch` while another command changes its lab, run as a user runs them.

A watcher of w1.yaml went on guarding the topology another `up -t w2.yaml --reconfigure` (same lab name) made,
repairing pods only w2.yaml has, its log never saying the desired state had changed ("did: nothing to change"),
and, w1.yaml touched, "apply failed: lab X is up from w2.yaml". It now says the lab was reconfigured from w2.yaml
by that up, and stops: its file no longer describes the lab. And while another command holds the lab's lock,
what the kernel says is that command's work half done: the watcher listed it as drift ("extra: namespace ...")
and then did "nothing to change"; it now waits for the command, then checks the lab whole.
"""

from __future__ import annotations

import fcntl
import os
import re
import signal
import subprocess
import time

import pytest

from helpers import NETLAB, ip_json, lab_namespaces, netlab, unique_lab, write_topology
from netlab import Lab
from netlab.api.topology import load
from netlab.errors import netlab_command
from netlab.features import default_features
from netlab.kernel.live import LiveKernel
from netlab.lab import up as lab_up
from netlab.realize.state import load_state
from netlab.realize.state_dir import LOCK_FILE, lab_dir
from netlab.realize.lab_lock import LabLock, lab_lock_holder
from watching import topology, wait_until, watching

pytestmark = pytest.mark.root

ROUTE = "10.244.1.0/24"


def test_a_watcher_of_a_file_stops_when_another_up_reconfigures_its_lab_from_another_file(tmp_path):
    name = unique_lab("im")
    w1 = write_topology(tmp_path, topology(name), "w1.yaml")  # pods a, b
    w2 = write_topology(tmp_path, topology(name).replace("  - name: b\n", "  - name: c\n"), "w2.yaml")  # a, c
    with watching(name) as start:
        watcher = start(w1)
        other = subprocess.Popen([*NETLAB, "up", "-t", w2, "--reconfigure"], stdout=subprocess.DEVNULL)
        assert other.wait(120) == 0
        assert watcher.proc.wait(20) == 0  # it ends, as a daemon whose work is over: exit 0
        lines = [line.split(" ", 1)[1] for line in watcher.drained()]
        assert lines[-2:] == [
            f"saw: lab {name} reconfigured from {w2} by pid {other.pid} (netlab up); did: stop watching ({w1} no "
            "longer describes it)",
            f"stopped watching lab {name}: it is up from {w2} now, and stays up "
            f"(`{netlab_command(f'up -t {w2}')} --watch` watches it)"], lines
        assert not any("nothing to change" in line or "extra: " in line for line in lines), lines
        # The lab stays as w2.yaml made it, and nobody keeps it so any more.
        assert f"{name}-c" in lab_namespaces(name) and f"{name}-b" not in lab_namespaces(name)
        assert Lab(name).status(w2).ok  # `status -t w2.yaml`, in this process


def test_a_watcher_says_nothing_of_what_another_up_does_while_it_holds_the_lab(tmp_path):
    """The other command here is the test itself, holding the lab's lock as `up` does: what it undoes before it
    lets go is no drift (no line at all), what it leaves is, named as its work, and repaired."""
    name = unique_lab("im")
    path = write_topology(tmp_path, topology(name))
    node = f"{name}-node-1"
    with watching(name) as start:
        watcher = start(path)
        mark = len(watcher.lines)
        planned = ip_json("route", "show", ROUTE, netns=node)[0]
        with LabLock(name, "netlab up"):  # a half-applied change, put right before the lock is released
            subprocess.run(["ip", "-n", node, "route", "del", ROUTE], check=True)
            time.sleep(1.0)  # the watcher heard it
            subprocess.run(["ip", "-n", node, "route", "add", ROUTE, "via", planned["gateway"], "dev",
                            planned["dev"], "onlink"], check=True)
        time.sleep(3.0)  # a periodic check (--resync 2) too
        assert watcher.lines[mark:] == [], watcher.lines[mark:]
        with LabLock(name, "netlab up"):  # one it leaves
            subprocess.run(["ip", "-n", node, "route", "del", ROUTE], check=True)
            time.sleep(1.0)
            assert watcher.lines[mark:] == [], watcher.lines[mark:]  # not while the lab is held
        line = watcher.wait_for_line("did: replace route", after=mark)
        assert re.search(rf"saw: pid {os.getpid()} \(netlab up\) changed the lab \(missing: route {ROUTE} ", line), line
        wait_until(lambda: ip_json("route", "show", ROUTE, netns=node) != [], 10.0)


def _waiting_for_lock(pid: int, path: str) -> bool:
    """Whether process ``pid`` has ``path`` open for writing: a LabLock being taken (it polls the flock, and holds
    the file open meanwhile); the question of who holds it opens the file read-only."""
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != path:
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as fh:
                flags = int(next(line for line in fh if line.startswith("flags:")).split()[1], 8)
        except (OSError, StopIteration):
            continue
        if flags & os.O_ACCMODE == os.O_RDWR:
            return True
    return False


def test_a_repair_waiting_for_the_lab_converges_to_what_the_command_that_held_it_made(tmp_path):
    """Another `up` that takes the lab's lock after the watcher checked the lab, before its repair takes it: the
    repair applied the lab as read before that up, undoing it (here: pod b, which the edited file no longer has,
    made again). It now reads the lab again once it holds it, and has nothing left to do: it says nothing.

    The test is that other `up`. Its lock is a shared flock on the lab's lock file: the watcher's question "does
    another command hold the lab?" (a shared flock, not waiting) is answered no, so it checks the lab, and its
    repair then waits for the exclusive lock, for certain, as it does for an `up` that took the lock in between."""
    name = unique_lab("im")
    path = write_topology(tmp_path, topology(name))  # pods a, b
    node = f"{name}-node-1"
    assert netlab("up", "-t", path).returncode == 0
    with watching(name) as start:
        watcher = start(None, lab=name)  # the saved topology's: no file to follow, what another up makes is kept
        mark = len(watcher.lines)
        planned = ip_json("route", "show", ROUTE, netns=node)[0]
        lock = os.path.join(lab_dir(name, create=False), LOCK_FILE)
        fd = os.open(lock, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            subprocess.run(["ip", "-n", node, "route", "del", ROUTE], check=True)  # the drift the watcher repairs
            wait_until(lambda: _waiting_for_lock(watcher.proc.pid, lock), 10.0)
            # The file edited (pod b gone) and applied, as `up -t FILE` does once it holds the lab
            write_topology(tmp_path, topology(name).split("  - name: b\n")[0])
            kernel = LiveKernel()
            try:
                lab_up.up_held(load(path).lab, kernel, default_features(), path)
            finally:
                kernel.close()
        finally:
            os.close(fd)  # the lock released: the watcher's repair goes on
        time.sleep(3.0)  # its repair, and a periodic check (--resync 2)
        assert watcher.proc.poll() is None, watcher.lines
        netns = [n["name"] for n in ip_json("netns", "list") if n["name"].startswith(f"{name}-")]
        assert f"{name}-a" in netns and f"{name}-b" not in netns, netns  # not made again
        assert ip_json("route", "show", ROUTE, netns=node)[0]["gateway"] == planned["gateway"]
        state = load_state(name)
        assert state is not None and [p["name"] for p in state.topology["pods"]] == ["a"]
        # Nothing was left to do: no line. LabLock's own "netlab: waiting for pid N (netlab up) ..." came here, outside
        # the watcher's form, naming the pid the lock file named: the watcher itself (its first apply took the
        # lock last), not the test, whose shared flock writes no name.
        assert watcher.lines[mark:] == [], watcher.lines


def _stopped_holding(name: str, argv: list[str]) -> subprocess.Popen:
    """A real `netlab` command (``argv``), stopped (SIGSTOP) once it holds the lab's lock and has named itself in
    the lock file (stopped between its flock and that, the others name it by its command line, "netlab up --lab
    L", not "netlab up": seen once): polled for as the kernel shows the holder (a command that finished first fails
    the test, saying so)."""
    proc = subprocess.Popen([*NETLAB, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = os.path.join(lab_dir(name, create=False), LOCK_FILE)
    while proc.poll() is None:
        holder = lab_lock_holder(name)
        with open(lock) as fh:
            named = fh.read().startswith(f"pid {proc.pid} ")
        if holder is not None and holder.startswith(f"pid {proc.pid} ") and named:
            os.kill(proc.pid, signal.SIGSTOP)
            assert (lab_lock_holder(name) or "").startswith(f"pid {proc.pid} "), "it let go before it was stopped"
            return proc
    raise AssertionError(f"{argv} ended before the test could stop it while it held the lab: {proc.communicate()}")


def test_a_watcher_applies_the_file_as_it_is_once_it_holds_the_lab_and_says_whom_it_waited_for(tmp_path):
    """A real `netlab up` holds the lab (stopped there) when the watcher sees its file changed: the watcher waits
    for it, and the file is edited again meanwhile. It read the file before it took the lock, applied that stale
    reading (pod c) and the newer one only at its next look, and LabLock's own "netlab: waiting for ..." landed in
    its log. It now reads the file once it holds the lab (pod d at once, c never made), and says the wait in its
    own line, naming the `netlab up` that held the lab."""
    name = unique_lab("im")
    text = topology(name)
    path = write_topology(tmp_path, text)  # pods a, b
    with watching(name) as start:
        watcher = start(path, resync="60")  # no periodic check: the file's look alone wakes it
        mark = len(watcher.lines)
        other = _stopped_holding(name, ["up", "--lab", name])
        try:
            write_topology(tmp_path, text.replace("  - name: b\n", "  - name: c\n"))
            lock = os.path.join(lab_dir(name, create=False), LOCK_FILE)
            wait_until(lambda: _waiting_for_lock(watcher.proc.pid, lock), 10.0)
            time.sleep(0.05)
            write_topology(tmp_path, text.replace("  - name: b\n", "  - name: d\n"))  # edited again meanwhile
        finally:
            os.kill(other.pid, signal.SIGCONT)
        assert other.wait(60) == 0, other.communicate()
        line = watcher.wait_for_line(f"saw: {path} changed", after=mark, timeout=30)
        time.sleep(2.0)  # a second look at the file (every 0.5 s) would apply anything left
        assert watcher.lines[mark:] == [line], watcher.lines[mark:]
        assert re.fullmatch(rf"\S+ saw: {re.escape(path)} changed; waited \d+\.\ds for pid {other.pid} \(netlab up\) "
                            rf"to release the lab; did: created 1 namespace; removed {name}-b\b.*", line), line
        assert f"{name}-d" in lab_namespaces(name) and f"{name}-c" not in lab_namespaces(name)
        assert Lab(name).status(path).ok  # `status -t FILE`, in this process
