"""A watcher of a big lab holds descriptors past 1023: two netlink sockets a namespace (events.Listener) and a
pidfd a container (watch_children.Children), about 1,500 for 500 pods. select() refuses a descriptor past
FD_SETSIZE ("filedescriptor out of range in select()"): `up --watch` of a 500-pod lab failed at its first wait.
They wait with poll() now."""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess

import pytest

from netlab.kernel import events
from netlab.kernel import netns as nsmod

HIGH = 1500  # past FD_SETSIZE (1,024)


@pytest.fixture
def high_fd_room():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= HIGH:
        pytest.skip(f"the open-files hard limit ({hard}) takes no descriptor {HIGH}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, HIGH + 1), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _high(fd: int) -> int:
    """``fd`` moved to descriptor HIGH."""
    os.dup2(fd, HIGH)
    os.close(fd)
    return HIGH


def test_a_listener_waits_on_a_descriptor_past_1023(high_fd_room, tmp_path, monkeypatch):
    monkeypatch.setattr(nsmod, "NETNS_DIR", str(tmp_path))  # the names' watch, of no namespace of the machine
    r, w = os.pipe()
    high = _high(r)
    try:
        os.write(w, b"x")
        with events.Listener([]) as listener:
            assert listener.wait(5, extra=[high]) == ([], [high])
    finally:
        os.close(high)
        os.close(w)


def test_the_watchers_children_are_read_through_a_pidfd_past_1023(high_fd_room):
    from netlab.api.watch_children import Children, _Child

    proc = subprocess.Popen(["true"])
    fd = _high(os.pidfd_open(proc.pid))
    try:
        proc.wait()
        kids = Children()
        kids.by_fd[fd] = _Child(["p/c"], proc.pid, fd)
        assert kids.reaped_now() == ["p/c"]
    finally:
        with contextlib.suppress(OSError):  # reaped closes the pidfd it read
            os.close(fd)
