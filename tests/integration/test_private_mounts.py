"""The mounts of a test made in a namespace of its own (private_mounts.py, test_state_safety's full disks) never
show on the host, and go with the test's process when it is killed before its teardown: the filled tmpfs of a
killed run stayed mounted under /tmp/pytest-of-root."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys

import pytest

from netlab.kernel.mountinfo import read_mounts

pytestmark = pytest.mark.root

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A test's process: a tmpfs mounted as test_state_safety's fixture mounts it, then killed before any teardown.
TEST = """
import os, sys
sys.path[:0] = [sys.argv[1], os.path.join(sys.argv[1], "integration")]
from private_mounts import PrivateMounts
where = sys.argv[2]
ns = PrivateMounts(where)
os.makedirs(os.path.join(where, "state0"))
ns.run("mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", os.path.join(where, "state0"))
print(ns.holder.pid, flush=True)
sys.stdin.read()
"""


def _mounted_anywhere(path: str) -> list[int]:
    """The processes whose mount namespace has a mount at ``path`` (their mountinfo's mount point field)."""
    return [int(pid) for pid in filter(str.isdigit, os.listdir("/proc"))  # one gone meanwhile: no mounts read
            if any(m.point == path for m in read_mounts(f"/proc/{pid}/mountinfo"))]


def test_a_killed_tests_mount_is_never_the_hosts_and_goes_with_it(tmp_path):
    where = str(tmp_path)
    test = subprocess.Popen([sys.executable, "-c", TEST, TESTS, where], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, cwd=TESTS)
    try:
        holder = int(test.stdout.readline())
        pidfd = os.pidfd_open(holder)  # readable once the holder has ended
        ns = os.stat(f"/proc/{holder}/ns/mnt").st_ino
        mount = os.path.join(where, "state0")
        assert os.path.ismount(f"/proc/{holder}/root{mount}")  # the test's namespace has it ...
        assert not os.path.ismount(mount)  # ... the host's does not
        assert ns != os.stat("/proc/self/ns/mnt").st_ino
    finally:
        test.send_signal(signal.SIGKILL)  # before any teardown
        test.wait()
        test.stdin.close()
        test.stdout.close()
    try:
        assert select.select([pidfd], [], [], 120)[0] == [pidfd], "the holder outlived its test's process"
    finally:
        os.close(pidfd)
    # no process's mount namespace has the tmpfs: the kernel freed the test's namespace with it (not told by the
    # namespace's inode: the kernel gives a freed one's number to the next namespace made, another test's)
    assert _mounted_anywhere(mount) == [], "the killed test's tmpfs is still mounted in some mount namespace"
    assert not os.path.ismount(mount)
