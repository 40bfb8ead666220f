"""A process that comes into a removed pod's namespaces after `up` looked for the pod's processes, before they were
signalled: a container's shell forking a child then, a user's `nsenter` into the pod.

`up` is held at its test hook ``processes-found`` (NETLAB_FAULT_MODE=pause), right after a scan of /proc found the
pod's processes and before any is signalled; the test then starts a process in the pod's old network namespace and
its UTS namespace (``nsenter``, the latter through the lab's pin), waits for it to say it is in, and lets `up` go on.
Before, the scan was made once: that process ran on in the pod's old, nameless network namespace (which it keeps,
with nobody left to stop it) and `up` said the pod's containers stopped. Now the scan is made again after each stop
until one finds nothing new; one still finding a newcomer after the last round is said, and the pod's line does not
say stopped.

The pod is the one test_pod_netns_taken_live takes out of the topology after its name was taken (deleted by hand,
another's namespace mounted there): its processes are found in its UTS namespace only. The test holds the pod's
old network namespace open, so its inode number is no other namespace's while the test looks for tasks in it.
No sleep, no timing.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator

import pytest

from helpers import NETLAB, wait_for, write_topology
from netlab.kernel.processes import cmdline
from netlab.workload.uts import uts_path
from test_pod_netns_deleted_containers_live import CMD, netns_inode, tasks_in, topology

pytestmark = pytest.mark.root

PAUSED = "netlab: paused at processes-found (test hook)\n"


def entered(net: str, uts: str, n: int) -> subprocess.Popen:
    """A process in the network namespace of file ``net`` and the UTS namespace of ``uts``, returned once it is in
    them (its first line)."""
    late = subprocess.Popen(["nsenter", f"--net={net}", f"--uts={uts}", "sh", "-c", f"echo in; exec sleep {3100 + n}"],
                            stdout=subprocess.PIPE, text=True)
    assert late.stdout is not None and late.stdout.readline() == "in\n"
    # its exec of sleep comes after its line: a stop's scan meanwhile named it `sh -c echo in; exec sleep ...`
    assert wait_for(lambda: cmdline(late.pid)[:1] == ["sleep"], 10), cmdline(late.pid)
    return late


def up_with_newcomers(path: str, net: str, uts: str, newcomers: int) -> tuple[subprocess.CompletedProcess, list]:
    """`up -t path` held at each ``processes-found``: at each of the first ``newcomers`` a process enters the pod's
    namespaces (:func:`entered`) before `up` goes on."""
    proc = subprocess.Popen(NETLAB + ["up", "-t", path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "NETLAB_FAULT_POINT": "processes-found", "NETLAB_FAULT_MODE": "pause"})
    assert proc.stdin is not None and proc.stderr is not None and proc.stdout is not None
    late: list[subprocess.Popen] = []
    err = []
    try:
        while line := proc.stderr.readline():
            if line != PAUSED:
                err.append(line)
                continue
            if len(late) < newcomers:
                late.append(entered(net, uts, len(late)))
            proc.stdin.write("\n")
            proc.stdin.flush()
        out = proc.stdout.read()
        proc.wait(timeout=300)
    except BaseException:
        proc.kill()
        proc.wait()
        for p in late:
            p.kill()
            p.wait()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "".join(err)), late


@contextlib.contextmanager
def pod_b_held(labs, prefix: str) -> Iterator[tuple[str, str, str, int, str]]:
    """A lab up whose pod b runs CMD, b's network namespace held open while the test looks for tasks in it (its
    inode number is no other namespace's meanwhile): (lab, its topology's path, b's namespace's name, its inode
    number, the held namespace's path)."""
    lab = labs.name(prefix)
    path, _ = labs.up(topology(lab, False, f", containers: {CMD}"))
    name = f"{lab}-b"
    old = netns_inode(f"/run/netns/{name}")
    held = os.open(f"/run/netns/{name}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        yield lab, path, name, old, f"/proc/{os.getpid()}/fd/{held}"
    finally:
        os.close(held)


def reaped(late: list[subprocess.Popen]) -> None:
    for p in late:
        p.kill()
        p.wait()


@pytest.mark.parametrize("newcomers", [1, 3], ids=["one", "every-round"])
def test_a_process_that_enters_a_removed_pod_after_up_looked_is_stopped_or_said(labs, tmp_path, newcomers):
    late: list[subprocess.Popen] = []
    with pod_b_held(labs, "nl") as (lab, path, name, old, held):
        try:
            subprocess.run(["ip", "netns", "del", name], check=True)
            subprocess.run(["ip", "netns", "add", name], check=True)  # another's: no netlab tag in it
            write_topology(tmp_path, topology(lab, False, None))
            up, late = up_with_newcomers(path, held, uts_path(lab, "b"), newcomers)
            assert up.returncode == 0, up.stdout + up.stderr
            assert len(late) == newcomers, up.stdout + up.stderr  # up scanned again after each newcomer
            left = tasks_in(old)
            said = f"removed pod default/b (containers main, web stopped; {name} now holds"
            if newcomers == 1:  # the second scan found it: stopped with the rest
                assert left == [], up.stdout + up.stderr
                assert said in up.stdout, up.stdout
                # its own line: the pod's says the name holds another's namespace now
                yours = f"\n  also stopped 1 process of yours in {name}: {late[0].pid} sleep 3100\n"
                assert yours in up.stdout, up.stdout
                assert late[0].wait(timeout=60) in (-9, -15)  # SIGTERM (SIGKILL): exited, our child to reap
            else:  # the last one came after the last round: still there, and said; the pod not said stopped
                assert left == [f"{late[-1].pid}/{late[-1].pid}"], up.stdout + up.stderr
                assert f"netlab: warning: pid {late[-1].pid} (" in up.stderr, up.stdout + up.stderr
                assert ("removed pod default/b (containers main, web not all stopped: 1 process left in the pod, "
                        f"named in a warning; {name} now holds") in up.stdout, up.stdout
                assert all(p.wait(timeout=60) in (-9, -15) for p in late[:-1])
        finally:
            reaped(late)
            subprocess.run(["ip", "netns", "del", name], check=False)


def test_a_removed_pods_line_says_its_containers_not_all_stopped_when_its_stop_left_a_process(labs, tmp_path):
    """The same for a pod taken out of the topology with its namespace the lab's own: `up` said "containers main,
    web stopped" from the lab's records before the stop (cli/removed.py), whatever the stop left; a process that
    came after the stop's last round is named in a warning, and the pod's line says its containers not all
    stopped; the two that came in earlier rounds were stopped, named as processes of yours."""
    late: list[subprocess.Popen] = []
    with pod_b_held(labs, "nm") as (lab, path, name, old, held):
        try:
            write_topology(tmp_path, topology(lab, False, None))
            up, late = up_with_newcomers(path, held, uts_path(lab, "b"), 3)
            assert up.returncode == 0 and len(late) == 3, up.stdout + up.stderr
            assert tasks_in(old) == [f"{late[-1].pid}/{late[-1].pid}"], up.stdout + up.stderr
            assert f"netlab: warning: pid {late[-1].pid} (" in up.stderr, up.stdout + up.stderr
            assert (f"removed pod default/b (network namespace {name}, containers main, web not all stopped: 1 "
                    "process left in the pod, named in a warning; also stopped 2 processes of yours in the pod: "
                    f"{late[0].pid} sleep 3100, {late[1].pid} sleep 3101)") in up.stdout, up.stdout
            assert not os.path.exists(f"/run/netns/{name}"), up.stdout  # the name goes; the survivor keeps the rest
        finally:
            reaped(late)
