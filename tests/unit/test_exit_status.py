"""How command containers exited (kernel/pidfd.py, workload/exits.py, the echo server's held pidfds).

Real processes and a real echo server on a control socket in tmp_path; no
namespace is made. A pidfd keeps its process's exit status on Linux 6.15 and
later; on an older kernel the tests of that are skipped, and the fallback
(nothing known, nothing held) is tested with the ioctl refused.
"""

from __future__ import annotations

import errno
import os
import select
import subprocess
import time

import pytest

from netlab.kernel import pidfd, taskstats
from netlab.kernel import processes as proc
from netlab.workload import echoserver, exits, launch

needs_exit_info = pytest.mark.skipif(not pidfd.exit_info_supported(),
                                     reason="this kernel keeps no exit status with a pidfd (Linux < 6.15)")


def status_when_reaped(fd: int, timeout: float = 10.0) -> int | None:
    """The pidfd's exit status once its process is reaped (by us or by init), bounded."""
    deadline = time.monotonic() + timeout
    while (status := pidfd.exit_status(fd)) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return status


def orphan(*argv: str) -> tuple[int, int]:
    """``argv`` as init's child (its parent exits once we hold a pidfd of it, opened while it could not be
    reaped yet): as ``up`` leaves a command container."""
    out_r, out_w = os.pipe()
    go_r, go_w = os.pipe()
    middle = os.fork()
    if middle == 0:
        child = subprocess.Popen(list(argv))
        os.write(out_w, b"%d" % child.pid)
        os.read(go_r, 1)  # until the parent holds its pidfd: the child is ours, not reaped, till then
        os._exit(0)
    pid = int(os.read(out_r, 64))
    fd = os.pidfd_open(pid)
    os.write(go_w, b"x")
    os.waitpid(middle, 0)
    for end in (out_r, out_w, go_r, go_w):
        os.close(end)
    return pid, fd


@needs_exit_info
def test_a_pidfd_tells_whoever_holds_it_how_its_process_exited():
    pid, fd = orphan("sh", "-c", "sleep 0.1; exit 3")
    try:
        assert pidfd.pid_of(fd) == pid
        status = status_when_reaped(fd)
        assert status is not None and os.WIFEXITED(status) and taskstats.exit_status(status) == 3
        assert pidfd.pid_of(fd) == -1  # reaped by init, not by us
    finally:
        os.close(fd)
    sleeper = subprocess.Popen(["sleep", "30"])
    fd = os.pidfd_open(sleeper.pid)
    try:
        assert pidfd.exit_status(fd) is None  # it runs
        sleeper.kill()
        sleeper.wait()
        assert taskstats.exit_status(status_when_reaped(fd)) == 137  # 128 + SIGKILL, as the kubelet reports it
    finally:
        os.close(fd)


def test_a_kernel_that_keeps_no_exit_status_gives_none(monkeypatch):
    def refused(fd, request, arg):
        raise OSError(errno.ENOTTY, "Inappropriate ioctl for device")

    monkeypatch.setattr(pidfd.fcntl, "ioctl", refused)
    pidfd.exit_info_supported.cache_clear()
    try:
        assert pidfd.exit_info_supported() is False
        child = subprocess.Popen(["true"])
        fd = os.pidfd_open(child.pid)
        child.wait()
        assert pidfd.exit_status(fd) is None
        os.close(fd)
    finally:
        pidfd.exit_info_supported.cache_clear()


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A real echo server with no echo container (as a lab of command containers gets), on tmp_path."""
    control = str(tmp_path / "echo.sock")
    monkeypatch.setattr(launch, "control_path", lambda lab, create=False: control)
    answer = launch.read_launch(launch.launch_echo([], control, str(tmp_path / "echo.log")), 0)
    assert answer.server is not None, answer
    yield answer.server
    launch.stop_server("t")


@needs_exit_info
def test_the_echo_server_holds_the_pidfds_and_says_how_each_exited(server, tmp_path):
    crash = subprocess.Popen(["sh", "-c", "exit 3"])
    done = subprocess.Popen(["true"])
    runs = subprocess.Popen(["sleep", "30"])
    kids = {"p/crash": crash, "p/done": done, "p/runs": runs}
    ids = {cid: proc.ProcId(p.pid, proc.start_time(p.pid)) for cid, p in kids.items()}
    fds = {cid: os.pidfd_open(p.pid) for cid, p in kids.items()}
    try:
        wrong = proc.ProcId(runs.pid + 1, 1)  # a pidfd that is not of the pid claimed is refused
        held = launch.hold("t", [(cid, ids[cid], fds[cid]) for cid in kids] + [("p/wrong", wrong, fds["p/runs"])])
        assert held == set(kids)
        assert sum(os.readlink(f"/proc/{server}/fd/{n}") == "anon_inode:[pidfd]"
                   for n in os.listdir(f"/proc/{server}/fd")) == 3  # the kernel's view: three pidfds kept
    finally:
        for fd in fds.values():
            os.close(fd)  # the server's own copies stay
    crash.wait()
    done.wait()
    told = launch.exits("t", sorted(kids))
    assert told == {"p/crash": (crash.pid, ids["p/crash"].start, 3 << 8),
                    "p/done": (done.pid, ids["p/done"].start, 0)}  # the running one: nothing
    records = {cid: {"pid": p.pid, "start": p.start} for cid, p in ids.items()}
    assert exits.exit_codes("t", records) == {"p/crash": 3, "p/done": 0}
    # A record of another process under that id (restarted since, the new one not held) gets nothing.
    assert exits.exit_codes("t", {"p/crash": {"pid": crash.pid, "start": ids["p/crash"].start + 1}}) == {}
    runs.kill()
    runs.wait()
    assert exits.exit_codes("t", records)["p/runs"] == 137
    # Dropped with their pods; the server, with nothing left to serve or keep, ends.
    answer = launch.ask("t", {"op": "remove", "ids": sorted(kids)})
    assert answer is not None and answer.removed == set(kids)
    deadline = time.monotonic() + 2 * echoserver.WATCH_SECONDS + 1  # one turn of its loop, and a margin
    while proc.running(server) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not proc.running(server)


def exited_unreaped(pid: int) -> None:
    """Until our child ``pid`` has exited, leaving it a zombie (WNOWAIT: not reaped)."""
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)


@needs_exit_info
def test_the_echo_server_says_how_a_zombie_exited_before_it_is_reaped(server):
    """Init reaps an exited container when it gets to it (a second and more on some machines); until then
    the server reads the zombie's status from /proc, so it tells the same from the moment the container
    dies as once it is reaped, never first "exited" without a code."""
    crash = subprocess.Popen(["sh", "-c", "exit 3"])
    ident = proc.ProcId(crash.pid, proc.start_time(crash.pid))
    fd = os.pidfd_open(crash.pid)
    try:
        assert launch.hold("t", [("p/crash", ident, fd)]) == {"p/crash"}
        exited_unreaped(crash.pid)
        assert proc.proc_state(crash.pid) == "Z" and pidfd.exit_status(fd) is None  # the pidfd alone says nothing
        assert launch.exits("t", ["p/crash"]) == {"p/crash": (crash.pid, ident.start, 3 << 8)}
        assert proc.proc_state(crash.pid) == "Z"  # asked and answered while it was still a zombie
        crash.wait()
        assert launch.exits("t", ["p/crash"]) == {"p/crash": (crash.pid, ident.start, 3 << 8)}
    finally:
        os.close(fd)
        crash.wait()
        launch.ask("t", {"op": "remove", "ids": ["p/crash"]})


def test_a_zombies_wait_status_is_read_from_proc_for_that_very_process():
    assert proc.zombie_status(proc.ProcId(os.getpid(), proc.start_time(os.getpid()))) is None  # it runs
    killed = subprocess.Popen(["sleep", "30"])
    ident = proc.ProcId(killed.pid, proc.start_time(killed.pid))
    killed.kill()
    exited_unreaped(killed.pid)
    assert proc.zombie_status(ident) == 9  # a wait status: killed by SIGKILL
    assert proc.zombie_status(proc.ProcId(ident.pid, ident.start + 1)) is None  # another process under its id
    killed.wait()
    assert proc.zombie_status(ident) is None  # reaped: /proc has no such process


def test_a_leader_that_exited_before_its_threads_is_no_exited_process():
    """pthread_exit in the main thread leaves it a zombie while the others run: the process has not exited."""
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            import ctypes
            import threading
            threading.Thread(target=lambda: (os.read(go_r, 1), os._exit(3))).start()
            ctypes.CDLL(None).pthread_exit(None)
        finally:
            os._exit(99)  # only should the above fail: never back into pytest
    os.close(go_r)
    try:
        ident = proc.ProcId(pid, proc.start_time(pid))
        deadline = time.monotonic() + 10
        while proc.proc_state(pid) != "Z" and time.monotonic() < deadline:  # the leader gone, its thread not
            time.sleep(0.01)
        assert proc.proc_state(pid) == "Z"
        assert proc.zombie_status(ident) is None
        os.write(go_w, b"x")
        exited_unreaped(pid)
        assert proc.zombie_status(ident) == 3 << 8  # the process's status, as wait tells it
    finally:
        os.close(go_w)
        os.waitpid(pid, 0)


def test_a_watcher_keeps_what_the_lab_told_of_a_zombie_when_its_pidfd_is_read(monkeypatch):
    """up --watch, started while a container of a plain `up` is a zombie init has not reaped: the lab's
    server tells its code, and the watcher's pidfd of it, readable at once, must not forget it (the
    container is init's child: waitid refuses, and no taskstats record was read)."""
    from netlab.api.watch_children import Children, _Child

    pid, fd = orphan("sh", "-c", "exit 3")
    start = 12345  # the recorded start time: the same run for the server's answer and the pidfd
    monkeypatch.setattr(exits, "exit_codes", lambda lab, records: {"p/crash": 3})
    kids = Children()
    assert kids.ask_lab("t", "p/crash", {"pid": pid, "start": start}) == 3
    kids.by_fd[fd] = child = _Child(["p/crash"], pid, fd)
    child.start = start  # as track() records it from the container's record
    assert select.select([fd], [], [], 10)[0] == [fd]  # it has exited
    assert kids.reaped([fd]) == ["p/crash"]
    run = {"pid": pid, "start": start}
    assert kids.exit_code("p/crash", run) == 3 and kids.code("p/crash", run) == kids.code("p/crash") == " (exit 3)"


def test_an_exits_question_to_a_stopped_server_is_not_asked(server):
    os.kill(server, 19)  # SIGSTOP: it would keep the asker waiting for its timeout
    try:
        deadline = time.monotonic() + 10
        while proc.proc_state(server) != "T" and time.monotonic() < deadline:
            time.sleep(0.01)
        started = time.monotonic()
        assert launch.exits("t", ["p/crash"]) == {}
        assert time.monotonic() - started < launch.CONTROL_TIMEOUT
    finally:
        os.kill(server, 18)


def test_malformed_requests_are_answered_and_the_server_stays(server, tmp_path):
    for _ in range(3):  # a peer that only looks who listens (it closes at once) is not answered: no error logged
        assert launch.server_pid("t") == server
    child = subprocess.Popen(["sleep", "30"])
    fd = os.pidfd_open(child.pid)
    try:
        for request, fds in (({"op": "hold", "items": 5}, [fd]), ({"op": "exits", "ids": "p/x"}, []),
                             ({"op": "remove", "ids": {"a": 1}}, []), ({"op": "hold", "items": ["x"]}, [fd])):
            answer = launch.ask("t", request, fds=fds)
            assert answer is not None and answer.complete and not answer.held, request
        assert proc.running(server)
        assert not any(os.readlink(f"/proc/{server}/fd/{n}") == "anon_inode:[pidfd]"
                       for n in os.listdir(f"/proc/{server}/fd"))  # every fd it was sent and did not keep: closed
        assert "control request failed" not in (tmp_path / "echo.log").read_text()
    finally:
        os.close(fd)
        child.kill()
        child.wait()


def test_more_pidfds_than_one_message_carries_are_all_held(server):
    """A message carries at most SCM_MAX_FD (253) descriptors: 300 containers' go in two, in order."""
    child = subprocess.Popen(["sleep", "30"])
    p = proc.ProcId(child.pid, proc.start_time(child.pid))
    fds = [os.pidfd_open(child.pid) for _ in range(300)]
    try:
        held = launch.hold("t", [(f"p{i}/main", p, fd) for i, fd in enumerate(fds)])
        assert held == {f"p{i}/main" for i in range(300)}
        assert sum(os.readlink(f"/proc/{server}/fd/{n}") == "anon_inode:[pidfd]"
                   for n in os.listdir(f"/proc/{server}/fd")) == 300
    finally:
        for fd in fds:
            os.close(fd)
        child.kill()
        child.wait()
