"""`netlab up --watch`'s lines about a container it restarts, run as a user runs it (test_watch.py has the rest).

A line says what the watcher saw, then what it did: a container's exit (kill -9) or stop (SIGSTOP, found
by the periodic check) is said once, in the saw: part, with its code; the restart does not repeat it.
"""

from __future__ import annotations

import os
import signal

import pytest

from helpers import unique_lab, write_topology
from watching import container_pid, running, wait_until, watching

pytestmark = pytest.mark.root


def topology(name: str) -> str:
    return f"""\
name: {name}
nodes:
  - name: node-1
pods:
  - name: a
    node: node-1
    containers:
      - name: main
        command: [sleep, infinity]
"""


def restarted(lab: str, old: int) -> bool:
    pid = container_pid(lab, "a")
    return pid != old and running(pid)


def test_a_restarted_containers_exit_is_said_once(tmp_path):
    name = unique_lab("ha")
    path = write_topology(tmp_path, topology(name))
    with watching(name) as start:
        watcher = start(path, resync="1")
        mark = len(watcher.lines)
        old = container_pid(name, "a")
        os.kill(old, signal.SIGKILL)
        wait_until(lambda: restarted(name, old), 10.0)
        line = watcher.wait_for_line("did: restarted container a/main", after=mark)
        # What else the watcher saw in the same moment comes first (the lab's own links coming up, when the kill
        # followed its start closely: CI saw "link eth0 up in ...; link cni0 up in ...; container a/main ...").
        saw, _, did = line.partition("; did: ")
        assert "saw: " in saw and "container a/main exited (exit 137)" in saw, line
        assert did.startswith("restarted container a/main in "), line
        assert line.count("137") == 1, line  # it said "(it had exited with code 137)" after it too
        # Stopped, not exited: found by the periodic check, and said as it is (it was said to run outside its
        # pod's namespace), once.
        mark = len(watcher.lines)
        old = container_pid(name, "a")
        os.kill(old, signal.SIGSTOP)
        try:
            wait_until(lambda: restarted(name, old), 10.0)
        finally:
            if running(old):  # never left stopped; killed by the restart (SIGKILL reaches a stopped process)
                os.kill(old, signal.SIGKILL)
        line = watcher.wait_for_line("did: restarted container a/main", after=mark)
        assert "(container a/main was stopped); did: restarted container a/main in " in line, line
