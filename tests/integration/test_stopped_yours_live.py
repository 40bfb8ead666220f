"""Processes a user started in a lab's namespaces (`netlab exec POD -- ...`, `nsenter --net=/run/netns/L-POD ...`)
are stopped with them, by `up` removing the pod and by `down`, and said: pid and command, in text and `-o json`.

Before, `up` said only "containers main, web stopped" and `down` "lab L is down (N namespaces removed)", while
both stopped every process in the namespaces, the user's too (QA). And a stop keyed its rounds by pid: a
process that got the pid of one stopped in an earlier round, and came into the namespace, was taken for that one
and never stopped (review); checked here with a real recycled pid (clone3's set_tid, root).

No sleep, no timing: each process says it is in its namespace (its first line) before the test goes on.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import uuid

import pytest

from helpers import NETLAB, ip_json, netlab, wait_for, write_topology
from netlab.kernel import kill, processes
from test_pod_netns_deleted_containers_live import CMD, topology

pytestmark = pytest.mark.root


def entered(argv: list[str], marker: int) -> subprocess.Popen:
    """``argv`` (a way into a namespace) running ``sh -c 'echo in; read x' mMARKER``, once it runs there (its first
    line: by then its command line is in /proc). It ends at the end of its stdin, or stopped."""
    p = subprocess.Popen([*argv, "sh", "-c", "echo in; read x", f"m{marker}"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdout.readline() == "in\n"
    return p


def command(marker: int) -> str:
    return f"sh -c echo in; read x m{marker}"


def pid_in(netns: str, marker: int) -> int:
    """The pid of :func:`entered`'s process of ``marker`` in namespace ``netns`` (one only)."""
    pids = [pid for pid in processes.find_in_namespaces([netns]) if " ".join(processes.cmdline(pid)) == command(marker)]
    assert len(pids) == 1, pids
    return pids[0]


def netns_names() -> set[str]:
    return {ns["name"] for ns in ip_json("netns", "list")}


@pytest.mark.parametrize("output", ["text", "json"])
def test_up_and_down_name_the_processes_of_yours_they_stopped(labs, tmp_path, output):
    lab = labs.name("sn")
    path, _ = labs.up(topology(lab, False, f", containers: {CMD}"))
    yours: list[subprocess.Popen] = []
    try:
        yours.append(entered(NETLAB + ["exec", "--lab", lab, "b", "--"], 3201))
        yours.append(entered(["nsenter", f"--net=/run/netns/{lab}-b"], 3202))
        yours.append(entered(["nsenter", f"--net=/run/netns/{lab}-a"], 3203))  # a stays: down stops it
        b1, b2, a1 = pid_in(f"{lab}-b", 3201), pid_in(f"{lab}-b", 3202), pid_in(f"{lab}-a", 3203)
        write_topology(tmp_path, topology(lab, False, None))
        json_out = ["-o", "json"] if output == "json" else []
        up = netlab("up", "-t", path, *json_out)
        first, second = sorted([(b1, command(3201)), (b2, command(3202))])
        if output == "json":
            assert json.loads(up.stdout)["stopped_processes"] == [
                {"netns": f"{lab}-b", "pid": pid, "command": cmd} for pid, cmd in (first, second)], up.stdout
        else:
            assert (f"removed pod default/b (network namespace {lab}-b, containers main, web stopped; also stopped 2 "
                    f"processes of yours in the pod: {first[0]} {first[1]}, {second[0]} {second[1]})\n"
                    ) in up.stdout, up.stdout
        assert "warning" not in up.stderr, up.stderr  # said as what up did, not as a warning
        assert yours[0].wait(timeout=60) != 0 and yours[1].wait(timeout=60) == -signal.SIGTERM
        assert f"{lab}-b" not in netns_names() and yours[2].poll() is None
        down = netlab("down", "--lab", lab, *json_out)
        if output == "json":
            assert json.loads(down.stdout)["stopped_processes"] == [
                {"netns": f"{lab}-a", "pid": a1, "command": command(3203)}], down.stdout
        else:
            assert down.stdout == (f"lab {lab} is down (4 namespaces removed; also stopped 1 process of yours in its "
                                   f"namespaces: {a1} {command(3203)} in {lab}-a)\n"), down.stdout
        assert yours[2].wait(timeout=60) == -signal.SIGTERM
        assert not {n for n in netns_names() if n.startswith(lab)}
        assert not any(processes.cmdline(p.pid) for p in yours)
    finally:
        for p in yours:
            if p.poll() is None:
                p.kill()
            p.communicate()


SYS_CLONE3 = 435  # x86_64 and most others (asm-generic)


class CloneArgs(ctypes.Structure):
    """struct clone_args (include/uapi/linux/sched.h), up to set_tid_size (CLONE_ARGS_SIZE_VER1)."""

    _fields_ = [(name, ctypes.c_uint64) for name in ("flags", "pidfd", "child_tid", "parent_tid", "exit_signal",
                                                     "stack", "stack_size", "tls", "set_tid", "set_tid_size")]


def spawn_at(pid: int, argv: list[str]) -> tuple[int, int]:
    """``argv`` run as a new process with this very pid (clone3's set_tid: root), its stdout a pipe; (its pid, the
    pipe's read end). PyDLL keeps the GIL across the call: the child, a copy of this one thread, holds it, and
    only sets its stdout and execs."""
    libc = ctypes.PyDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    tid = (ctypes.c_int32 * 1)(pid)
    args = CloneArgs(exit_signal=signal.SIGCHLD, set_tid=ctypes.addressof(tid), set_tid_size=1)
    r, w = os.pipe()
    got = libc.syscall(ctypes.c_long(SYS_CLONE3), ctypes.byref(args), ctypes.c_size_t(ctypes.sizeof(args)))
    if got == 0:
        try:
            os.dup2(w, 1)
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    os.close(w)
    assert got == pid, os.strerror(ctypes.get_errno())
    return got, r


def test_a_process_given_the_pid_of_one_stopped_a_round_before_is_stopped_too(monkeypatch):
    """Round one stops A (pid X); before round two's scan, A is reaped and B made with pid X, in the namespace.
    The stop keyed its rounds by pid: B was "seen" already, never signalled, not said, and kept the namespace."""
    ns = f"sn{uuid.uuid4().hex[:7]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    a = entered(["nsenter", f"--net=/run/netns/{ns}"], 3301)  # nsenter execs sh: a.pid is the process in ns
    b: list[tuple[int, int]] = []
    real = kill.find_in_namespaces

    def scan(names, uts=()):
        if len(scans) == 1:  # after round one's signals: A exited; its pid is B's now
            assert a.wait(timeout=60) == -signal.SIGTERM
            b.append(spawn_at(a.pid, ["nsenter", f"--net=/run/netns/{ns}", "sh", "-c", "echo in; exec sleep 3302"]))
            assert os.read(b[0][1], 3) == b"in\n"
        scans.append(names)
        return real(names, uts)

    scans: list[object] = []
    monkeypatch.setattr(kill, "find_in_namespaces", scan)
    try:
        assert kill.stop_namespaces([ns]) == []
        assert b and b[0][0] == a.pid
        # B was stopped by SIGTERM, not left running: the stop returns once it exited (its pidfd said so)
        assert os.waitpid(b[0][0], os.WNOHANG) == (b[0][0], signal.SIGTERM)
        assert processes.find_in_namespaces([ns]) == {}
    finally:
        if a.poll() is None:
            a.kill()
        a.communicate()
        if b:
            os.close(b[0][1])
            try:
                os.kill(b[0][0], signal.SIGKILL)
                os.waitpid(b[0][0], 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        subprocess.run(["ip", "netns", "del", ns], check=False)


def test_a_daemon_a_container_detached_is_not_said_a_process_of_yours(labs):
    """A container's command that detaches a daemon (``setsid``: a session of its own) left it carrying its run's
    ``NETLAB_CONTAINER_ID``: `down` stops it with the lab, and says no process of yours (review: it named it)."""
    lab = labs.name("sd")
    labs.up(topology(lab, False, ", containers: [{name: main, command: [sh, -c, 'setsid sleep 3003 & exec sleep "
                                 "3002']}]"))
    daemon: list[int] = []
    assert wait_for(lambda: daemon.extend(p for p in processes.find_in_namespaces([f"{lab}-b"])
                                          if processes.cmdline(p) == ["sleep", "3003"]) or daemon, timeout=30)
    assert processes.session(daemon[0]) == daemon[0]  # detached: a session of its own
    down = netlab("down", "--lab", lab)
    assert down.stdout == f"lab {lab} is down (5 namespaces removed)\n", down.stdout  # n1, n2, a, b, the underlay
    assert not processes.cmdline(daemon[0])
