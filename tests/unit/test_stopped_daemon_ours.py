"""Which processes a pod's stop finds are the lab's own (workload/pod_teardown.containers_of), so that `up` and
`down` name only the others as processes of yours they stopped (kernel/kill.stop_namespaces' ``others``).

A container's command may start a daemon that detaches (``setsid``: a session of its own), which lives on until
the pod goes (README). It carries its container's run mark (``NETLAB_CONTAINER_ID``, which each process of the run
inherits), and a user's ``netlab exec`` has none: the daemon is the container's, not "a process of yours" (review:
up and down said it was). Real processes; no sleep: each says its pid once it runs."""

from __future__ import annotations

import os
import signal
import subprocess

from netlab.kernel import processes
from netlab.kernel.processes import ProcId
from netlab.workload.pod_teardown import containers_of
from netlab.workload.tasks import RUN_ENV


def _started(argv: list[str], env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    """``argv`` in a session of its own (as a container starts), and the pid its first line says."""
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True, start_new_session=True,
                         env={**os.environ, **env})
    assert p.stdout is not None
    return p, int(p.stdout.readline())


def _proc(pid: int) -> ProcId:
    start = processes.start_time(pid)
    assert start is not None
    return ProcId(pid, start)


def test_a_containers_detached_daemon_is_the_labs_and_a_users_process_is_not():
    run = "c0ffee01"
    # the container: its shell starts a daemon in a session of its own, which says its pid and sleeps on
    container, daemon = _started(["sh", "-c", "setsid sh -c 'echo $$; exec sleep 300' & wait"], {RUN_ENV: run})
    user, user_pid = _started(["sh", "-c", "echo $$; exec sleep 300"], {})
    try:
        leader = _proc(container.pid)
        pods = {"b": {"containers": {"main": {"pid": leader.pid, "start": leader.start, "id": run}}}}
        ours = containers_of(pods, ["b"])
        assert processes.session(daemon) == daemon != container.pid  # not of the container's session
        assert ours(leader)
        assert ours(_proc(daemon))  # its run's mark: the container's
        assert not ours(_proc(user_pid))  # no mark: a process of yours
    finally:
        for pid in (daemon, user_pid):
            os.kill(pid, signal.SIGKILL)  # both started here
        for p in (container, user):
            p.kill()
            p.communicate()
