"""A pod whose network namespace was deleted by hand and whose name another then mounted a namespace of their own
at (`ip netns del`, `ip netns add`), taken out of the topology.

The name is not the lab's now (its tag differs): `up` must not stop what runs in that namespace nor run a CNI DEL
in it. Before, it stopped nothing at all: the lab's echo server kept the pod's sockets, and with them the pod's
old, nameless namespace; the command container ran on until `down`. Now the pod's containers are stopped from the
lab's records (the echo server drops its sockets, the command's processes are found in the pod's UTS namespace,
the lab's own), a CNI pod's DEL is given no namespace (CNI_NETNS empty, as containerd does for a closed sandbox),
and the stranger's namespace is left as it was: its links, its addresses, its process.

The test holds the pod's old namespace open (a file descriptor) while it looks for tasks in it: nsfs gives the inode
number of a namespace that is freed to the next one made on the machine, and on a busy one (the suite's other
workers, other labs) that comes within a second: a task of that stranger's namespace was counted as left in the
pod's old one ("assert ['13015/13015'] == []", up having stopped everything and said no survivor).
"""

from __future__ import annotations

import json
import subprocess

import pytest

from helpers import ip_json, netlab, write_topology
from netlab import Lab
from netlab.workload import launch
from test_pod_netns_deleted_containers_live import CMD, CONFLIST, held_open, netns_inode, socket_namespaces, tasks_in, \
    topology

pytestmark = pytest.mark.root


def addresses(netns: str) -> list:
    """Each link of ``netns``: its name, whether it is set up, its IPv4 addresses: what the stranger set, and nothing
    the kernel changes on its own after their commands (the operational state follows on linkwatch's event, an
    IPv6 link-local address once the link has a carrier: on a loaded machine `before` was read while the veth
    was still LOWERLAYERDOWN, without its fe80:: address, and the same links compared unequal after `up`)."""
    return [(link["ifname"], "UP" in link["flags"], [(a["local"], a["prefixlen"]) for a in link["addr_info"]
                                                    if a["family"] == "inet"])
            for link in ip_json("addr", "show", netns=netns)]


def dels_netns(lab: str, pod: str) -> list[str]:
    """CNI_NETNS of each DEL of ``pod``, from the lab's CNI call log."""
    return [c.env["CNI_NETNS"] for c in Lab(lab).cni_log(pod).calls if c.command == "DEL"]  # each plugin's


@pytest.mark.parametrize("cni", [False, True], ids=["builtin", "cni"])
def test_a_removed_pod_whose_namespace_name_another_took_has_its_containers_stopped_and_theirs_left_alone(
        labs, tmp_path, cni):
    lab = labs.name("rs")
    if cni:
        (tmp_path / "net.conflist").write_text(json.dumps(CONFLIST))
    path, _ = labs.up(topology(lab, cni, f", containers: {CMD}"))
    server = launch.server_pid(lab)
    assert server is not None
    name = f"{lab}-b"
    old = netns_inode(f"/run/netns/{name}")
    assert old in socket_namespaces(server).values()
    assert len(tasks_in(old)) >= 3  # the echo container's thread, sh's child sleep and the sleep it became
    with held_open(f"/run/netns/{name}"):  # its inode number is no other's meanwhile
        subprocess.run(["ip", "netns", "del", name], check=True)
        subprocess.run(["ip", "netns", "add", name], check=True)  # the stranger's: no netlab tag in it
        stranger = None
        try:
            for cmd in (["link", "add", "eth0", "type", "veth", "peer", "name", "theirs"], ["addr", "add", "10.250.0.1/24", "dev", "eth0"],
                        ["link", "set", "theirs", "up"], ["link", "set", "eth0", "up"]):
                subprocess.run(["ip", "-n", name, *cmd], check=True)
            stranger = subprocess.Popen(["ip", "netns", "exec", name, "sleep", "3003"])
            theirs = netns_inode(f"/run/netns/{name}")
            before = addresses(name)
            write_topology(tmp_path, topology(lab, cni, None))
            up = netlab("up", "-t", path)
            assert old not in socket_namespaces(launch.server_pid(lab) or server).values()
            assert tasks_in(old) == [], up.stdout + up.stderr  # (up's survivor lines, if it said any)
            assert (f"removed pod default/b (containers main, web stopped; {name} now holds a network namespace that "
                    "is not the lab's: left alone)") in up.stdout, up.stdout
            assert netns_inode(f"/run/netns/{name}") == theirs
            assert addresses(name) == before
            assert stranger.poll() is None  # their process in their namespace runs on
            if cni:  # the bridge plugin's DEL, given the name's path, deletes the eth0 it finds there
                dels = dels_netns(lab, "b")
                assert dels and set(dels) == {""}, dels
            status = netlab("status", "--lab", lab, check=False)
            assert status.returncode == 0, status.stdout + status.stderr
        finally:
            if stranger is not None:
                stranger.kill()
                stranger.wait()
            subprocess.run(["ip", "netns", "del", name], check=False)
