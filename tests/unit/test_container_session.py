"""QA q51 2: a container runs as a session of its own (its pid), and what is left of its session when it exits is
killed, as the kernel kills every process of a container's PID namespace when its first one exits."""

from __future__ import annotations

import os
import subprocess
import time

from netlab.kernel import processes as proc
from netlab.workload.echo import EchoLoop
from netlab.workload.echoserver import EchoServer


def test_the_rest_of_an_exited_containers_session_is_killed_and_only_that(tmp_path):
    """The lab's server holds the container's pidfd: once it exits, the processes of its session get SIGKILL;
    a session whose leader's pid is another process's now (reused) is nobody's to kill."""
    flag = tmp_path / "child"
    main = subprocess.Popen(["sh", "-c", f"sleep 60 & echo $! > {flag}; exec sleep 60"], start_new_session=True,
                            env={**os.environ, "NETLAB_CONTAINER_ID": "ab" * 16})
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)  # another container's: left alone
    try:
        while not flag.exists() or not flag.read_text().strip():
            time.sleep(0.01)
        child = int(flag.read_text())
        leader = proc.ProcId(main.pid, proc.start_time(main.pid) or 0)
        assert proc.session(child) == main.pid and proc.session_members(leader) == [child]
        assert proc.session_members(proc.ProcId(main.pid, leader.start + 1)) == []  # not that process: none
        server = EchoServer(EchoLoop(), None)
        fd = os.pidfd_open(main.pid)
        assert list(server.hold([{"id": "p/main", "pid": main.pid, "start": leader.start,
                                 "mark": "NETLAB_CONTAINER_ID=" + "ab" * 16}], [fd])) == ["K p/main"]
        server.end_exited()
        assert proc.running(child)  # its container runs: its processes too
        main.kill()
        main.wait()
        server.end_exited()
        deadline = time.monotonic() + 5
        while proc.running(child) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not proc.running(child)
        assert other.poll() is None
        server.drop("p/main")
    finally:
        for p in (main, other):
            p.kill()
            p.wait()
