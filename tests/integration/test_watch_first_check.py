"""`netlab up --watch` as it begins to listen: a change made then is repaired at once, not by the periodic check.

Its sockets subscribe in every namespace of the lab, then each namespace's links are dumped (the baseline by
which a link's notification that only says it came to run is no change: kernel/link_echo.py). A change made
between the two (held there by the test hook ``watch-subscribed``) is in the dump its own notification is then
compared with; the watcher also read what it heard while the carriers came up as its first apply's echo, and
dropped it. Such a change waited for the periodic check (``--resync``): a pod's host-side veth taken off its
node's cni0 (through pyroute2, as a program would) right as the watcher started was not put back, while the
same change a moment later was. The watcher now compares the lab with the plan once it listens. Every change
is a real one in the lab's namespaces, and the repair is read back with ``ip -j`` and ``bridge -j``.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers import ip_json, unique_lab, write_topology
from watching import Watcher, topology, wait_until, watching

pytestmark = pytest.mark.root

RESYNC = "120"  # far past every wait below: the periodic check repairs nothing here
HELD = {"NETLAB_FAULT_POINT": "watch-subscribed", "NETLAB_FAULT_MODE": "pause"}

# pyroute2 in a process of its own: its NetNS forks a child that enters the namespace (flags 0: it makes none)
NOMASTER = """
import sys
from pyroute2 import NetNS
netns, dev = sys.argv[1:]
with NetNS(netns, flags=0) as ns:
    [index] = ns.link_lookup(ifname=dev)
    ns.link("set", index=index, master=0)
"""


def _nomaster(netns: str, dev: str) -> None:
    """``ip link set DEV nomaster`` in ``netns``, through pyroute2."""
    subprocess.run([sys.executable, "-c", NOMASTER, netns, dev], check=True, timeout=30)


def _pod_veth(node: str) -> str:
    """The node's one pod's host-side veth (the lab has one pod a node)."""
    [veth] = [link["ifname"] for link in ip_json("link", netns=node) if link.get("master") == "cni0"]
    return veth


def _master(netns: str, dev: str) -> str | None:
    [link] = ip_json("link", "show", "dev", dev, netns=netns)
    return link.get("master")


def _port_state(netns: str, dev: str) -> str | None:
    out = subprocess.run(["bridge", "-n", netns, "-j", "link", "show", "dev", dev], capture_output=True, text=True,
                         check=True).stdout
    ports = json.loads(out) if out.strip() else []
    return ports[0].get("state") if ports else None


def _put_back(watcher: Watcher, node: str, veth: str, after: int) -> str:
    """Wait for the veth to be cni0's forwarding port again (well within RESYNC); the watcher's line of it."""
    wait_until(lambda: _master(node, veth) == "cni0" and _port_state(node, veth) == "forwarding", 10.0)
    return watcher.wait_for_line(f"set master, hairpin of link {veth} in {node}", after=after)


def test_a_port_taken_off_its_bridge_as_the_watcher_subscribes_is_put_back_at_once(tmp_path):
    name = unique_lab("wa")
    path = write_topology(tmp_path, topology(name))
    node = f"{name}-node-1"
    with watching(name):
        watcher = Watcher(path, env=HELD, held=True, wait=False, resync=RESYNC)
        try:
            watcher.wait_for_line("paused at watch-subscribed", timeout=60)
            veth = _pod_veth(node)
            _nomaster(node, veth)  # subscribed: its notifications are queued; the links not yet dumped
            assert _master(node, veth) is None and _port_state(node, veth) is None
            # cni0, its last port gone, loses its carrier: the kernel's link watch says so a moment later. Waited
            # for, so that every notification of the change is queued before the dump (the watcher once heard
            # this late one after it said it watched, and repaired the lab then, or not, by chance)
            wait_until(lambda: "LOWER_UP" not in ip_json("link", "show", "dev", "cni0", netns=node)[0]["flags"], 10.0)
            mark = len(watcher.lines)
            watcher.resume()
            watcher.wait_for_line("watching", after=mark, timeout=30)
            line = _put_back(watcher, node, veth, mark)
            assert "periodic check" not in line, line
            # and the same change once it watches: said by its notifications, put back as at once
            mark = len(watcher.lines)
            _nomaster(node, veth)
            line = _put_back(watcher, node, veth, mark)
            assert f"bridge port {veth} released in {node}" in line, line
        finally:
            assert watcher.stop() == 0


def test_a_route_deleted_as_the_watcher_subscribes_comes_back_at_once(tmp_path):
    """No link: its notification is no link_echo's, but the watcher dropped it with its first apply's echo."""
    name = unique_lab("wa")
    path = write_topology(tmp_path, topology(name))
    node = f"{name}-node-1"
    with watching(name):
        watcher = Watcher(path, env=HELD, held=True, wait=False, resync=RESYNC)
        try:
            watcher.wait_for_line("paused at watch-subscribed", timeout=60)
            subprocess.run(["ip", "-n", node, "route", "del", "10.244.1.0/24"], check=True)
            mark = len(watcher.lines)
            watcher.resume()
            watcher.wait_for_line("watching", after=mark, timeout=30)
            wait_until(lambda: ip_json("route", "show", "10.244.1.0/24", netns=node) != [], 10.0)
            line = watcher.wait_for_line(f"did: replace route 10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink in "
                                         f"{node}", after=mark)
            assert "periodic check" not in line, line
        finally:
            assert watcher.stop() == 0
