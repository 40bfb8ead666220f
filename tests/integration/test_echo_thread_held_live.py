"""A removed pod's echo container whose thread the machine does not run in time (held here by a ptrace stop of
that one thread, as a machine 99% busy may hold it past the server's 5 s wait).

Before, the server answered that it dropped it regardless; the pod's stop then found the server's thread still in
the pod's UTS namespace and stopped the whole server, and `up` said only "container main stopped" and "restarted
container a/main (it had exited)": the other pod's echo container killed without a word of why. Now the server
says the thread is still in the pod, and `up` says the server goes with the pod."""

from __future__ import annotations

import ctypes
import subprocess

import pytest

from helpers import netlab, write_topology
from netlab.workload import launch
from test_pod_netns_deleted_containers_live import netns_inode, tasks_in, topology

pytestmark = pytest.mark.root

PTRACE_SEIZE, PTRACE_INTERRUPT, PTRACE_DETACH = 0x4206, 0x4207, 17


def test_a_removed_pods_echo_thread_held_is_gone_or_said_when_up_returns(labs, tmp_path):
    libc = ctypes.CDLL(None, use_errno=True)
    lab = labs.name("eh")
    path, _ = labs.up(topology(lab, False, ""))
    server = launch.server_pid(lab)
    old = netns_inode(f"/run/netns/{lab}-b")
    (tid,) = [int(t.split("/")[1]) for t in tasks_in(old) if t.startswith(f"{server}/")]
    subprocess.run(["ip", "netns", "del", f"{lab}-b"], check=True)
    subprocess.run(["ip", "netns", "add", f"{lab}-b"], check=True)  # another's namespace under the pod's name
    try:
        assert libc.ptrace(PTRACE_SEIZE, tid, 0, 0) == 0, ctypes.get_errno()
        assert libc.ptrace(PTRACE_INTERRUPT, tid, 0, 0) == 0, ctypes.get_errno()
        write_topology(tmp_path, topology(lab, False, None))
        up = netlab("up", "-t", path)
        said = up.stdout + up.stderr
        assert tasks_in(old) == [], said  # its thread went, with the server: the pod's stop found it there
        assert launch.server_pid(lab) != server
        assert (f"the lab's echo server (pid {server}) kept the thread of b/main in the pod: it goes with pod b, "
                "whose namespace it is in, and every pod's echo container is started again in a new one") in said, said
    finally:
        libc.ptrace(PTRACE_DETACH, tid, 0, 0)
        subprocess.run(["ip", "netns", "del", f"{lab}-b"], check=False)
