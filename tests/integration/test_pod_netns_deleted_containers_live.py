"""A pod whose network namespace was deleted by hand (`ip netns del`): what ran in it must not keep it alive.

A deleted namespace lives on, nameless, while a socket or a task is in it, and with it the pod's veth (the node's
end stands in the node's namespace). Before, an `up` that took such a pod out of the topology stopped nothing: it
said only ``removed /etc/netns/L-b/hosts``, the lab's echo server kept the pod's two sockets, and so the old
namespace and the node's veth (`status`: ``extra: link vethX in L-n2``) until `down`; its containers were stopped
only per namespace `up` itself deleted. Now they are stopped from the lab's records whatever the namespace, and said.

Checked with the kernel: each of the echo server's sockets asked for its namespace (pidfd_getfd, then the
socket's SIOCGSKNS), every task's /proc/PID/task/TID/ns/net, the node's ports with `ip -j`; and `status`.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import subprocess
from typing import Iterator

import pytest

from helpers import ip_json, netlab, write_topology
from netlab.workload import launch

pytestmark = pytest.mark.root

SIOCGSKNS = 0x894C  # linux/sockios.h: a socket's network namespace, as a new fd
SYS_PIDFD_GETFD = 438
CMD = "[{name: main, command: [sh, -c, 'sleep 3001 & exec sleep 3002']}, {name: web}]"
CONFLIST = {"cniVersion": "1.0.0", "name": "rpn", "plugins": [
    {"type": "bridge", "bridge": "rpbr0", "isGateway": True, "isDefaultGateway": True, "hairpinMode": True,
     "mtu": 1450, "capabilities": {"ipRanges": True, "ips": True}, "ipam": {"type": "host-local"}}]}


def topology(lab: str, cni: bool, b: str | None) -> str:
    net = "{mode: vxlan, cni: {conflist: net.conflist}}" if cni else "{mode: vxlan}"
    return (f"name: {lab}\nnetwork: {net}\nnodes: [{{name: n1}}, {{name: n2}}]\npods:\n  - {{name: a, node: n1}}\n"
            + (f"  - {{name: b, node: n2{b}}}\n" if b is not None else ""))


def netns_inode(path: str) -> int:
    return os.stat(path).st_ino


def socket_namespaces(pid: int) -> dict[int, int]:
    """Each socket fd of process ``pid`` -> the inode of the network namespace the kernel says it is in."""
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    out = {}
    try:
        for name in os.listdir(f"/proc/{pid}/fd"):
            try:
                if not os.readlink(f"/proc/{pid}/fd/{name}").startswith("socket:"):
                    continue
            except FileNotFoundError:
                continue
            fd = libc.syscall(SYS_PIDFD_GETFD, pidfd, int(name), 0)
            if fd < 0:
                continue  # closed meanwhile
            try:
                ns = fcntl.ioctl(fd, SIOCGSKNS)
                try:
                    out[int(name)] = os.fstat(ns).st_ino
                finally:
                    os.close(ns)
            finally:
                os.close(fd)
    finally:
        os.close(pidfd)
    return out


@contextlib.contextmanager
def held_open(path: str) -> Iterator[None]:
    """The namespace of ``path`` held open: while it is, its inode number is no other namespace's. nsfs hands a
    freed namespace's number to the next one made, and on a busy machine (other labs, the suite's other workers)
    that comes within a second: :func:`tasks_in` of a pod's old namespace, once its last task was stopped, then
    counted a stranger's task ("assert ['13015/13015'] == []", the stop having said no survivor)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        yield
    finally:
        os.close(fd)


def tasks_in(inode: int) -> list[str]:
    """Every task whose network namespace is ``inode`` (its namespace :func:`held_open`, or the number may be
    another's)."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                if os.stat(f"/proc/{pid}/task/{tid}/ns/net").st_ino == inode:
                    out.append(f"{pid}/{tid}")
        except OSError:
            continue
    return out


def ports(netns: str, bridge: str) -> list[str]:
    return [link["ifname"] for link in ip_json("link", "show", "master", bridge, netns=netns)]


def lab_of(labs, tmp_path, cni: bool, b: str) -> tuple[str, str]:
    lab = labs.name("rp")
    if cni:
        (tmp_path / "net.conflist").write_text(json.dumps(CONFLIST))
    path, _ = labs.up(topology(lab, cni, b))
    return lab, path


@pytest.mark.parametrize("cni", [False, True], ids=["builtin", "cni"])
def test_a_removed_pod_whose_namespace_was_deleted_has_its_containers_stopped_and_its_namespace_freed(
        labs, tmp_path, cni):
    lab, path = lab_of(labs, tmp_path, cni, "")
    bridge = "rpbr0" if cni else "cni0"
    server = launch.server_pid(lab)
    assert server is not None
    old = netns_inode(f"/run/netns/{lab}-b")
    assert old in socket_namespaces(server).values()  # b's echo container listens there
    assert ports(f"{lab}-n2", bridge)  # b's veth
    with held_open(f"/run/netns/{lab}-b"):
        subprocess.run(["ip", "netns", "del", f"{lab}-b"], check=True)
        write_topology(tmp_path, topology(lab, cni, None))
        up = netlab("up", "-t", path)
        assert old not in socket_namespaces(launch.server_pid(lab) or server).values()
        assert tasks_in(old) == []
    assert ports(f"{lab}-n2", bridge) == []  # its veth is gone (up deletes the node's end, held or not)
    assert f"removed pod default/b (network namespace {lab}-b, container main stopped)" in up.stdout, up.stdout
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 0, status.stdout + status.stderr


def test_a_pod_whose_namespace_was_deleted_and_is_made_again_leaves_nothing_in_the_old_one(labs, tmp_path):
    """Pod b stays in the topology: `up` makes its namespace again and starts its containers there. Nothing of
    theirs is left in the old one: not the echo server's sockets, not the command's background child."""
    lab, path = lab_of(labs, tmp_path, False, f", containers: {CMD}")
    server = launch.server_pid(lab)
    assert server is not None
    old = netns_inode(f"/run/netns/{lab}-b")
    assert len(tasks_in(old)) >= 3  # the echo container's thread, sh's child sleep and the sleep it became
    with held_open(f"/run/netns/{lab}-b"):
        subprocess.run(["ip", "netns", "del", f"{lab}-b"], check=True)
        up = netlab("up", "-t", path)
        assert "restarted container b/main (its pod's network namespace was made again)" in up.stdout, up.stdout
        new = netns_inode(f"/run/netns/{lab}-b")
        assert new != old
        socks = socket_namespaces(launch.server_pid(lab) or server)
        assert old not in socks.values() and new in socks.values()
        assert tasks_in(old) == []
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 0, status.stdout + status.stderr
