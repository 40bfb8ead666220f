"""A listening socket of the lab's echo server destroyed by the kernel (``ss -K``, sock_destroy; root).

The loop itself, on sockets opened in a namespace of the test's own: a destroyed TCP or UDP listener is
noticed (measured on Linux 6.18: the TCP one leaves LISTEN, epoll reports EPOLLIN|EPOLLERR|EPOLLHUP for good
and accept fails with EINVAL), its key listed lost, the socket no longer watched (no loop spinning on it), the
other sockets still answering; a UDP one bound to its port keeps it (one receive fails with ECONNABORTED) and
goes on answering.

A lab: kube-proxy's health server (10256) on a node and a pod's echo port 8080 killed with ``ss -K`` are
named by ``status`` (exit 1), and ``up`` listens anew: curl is answered again and status is clean.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time

import pytest

from helpers import in_netns, ipv4_of, lab_up, netlab, unique_lab, wait_for, write_topology
from netlab.kernel import netns as nsmod
from netlab.workload.echo import EchoLoop, Served, listen, listens

pytestmark = pytest.mark.root


@pytest.fixture
def netns():
    name = unique_lab("sgt")
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=True)


def destroy(netns: str, which: str, port: int) -> None:
    got = in_netns(netns, "ss", "-K", which, f"sport = :{port}", check=True)
    assert f":{port}" in got.stdout, got.stdout  # ss lists the socket it destroyed


def test_the_loop_notices_a_destroyed_listener_and_stops_watching_it(netns):
    with nsmod.entered(netns):
        a = listen([(8080, "TCP"), (8080, "UDP")], "127.0.0.1")
        b = listen([(8081, "TCP")], "127.0.0.1")
    loop = EchoLoop()
    loop.serve(Served("p/a", "a", None), a)
    loop.serve(Served("p/b", "b", None), b)
    loop.run_once(0.05)
    assert loop.lost == [] and all(listens(s) for s in a + b)

    destroy(netns, "-ltn", 8080)
    loop.run_once(1.0)
    assert loop.lost == ["p/a"]
    assert a[0].fileno() == -1 and loop.listening["p/a"] == [a[1]]  # closed, no longer watched
    assert listens(a[1]) and listens(b[0])

    # A UDP socket bound to its port keeps it when destroyed: one receive fails (ECONNABORTED), then it answers.
    destroy(netns, "-uan", 8080)
    loop.run_once(1.0)
    assert loop.lost == ["p/a"] and loop.listening["p/a"] == [a[1]] and listens(a[1])
    with nsmod.entered(netns):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with u:
        u.settimeout(2)
        u.sendto(b"x", ("127.0.0.1", 8080))
        loop.run_once(1.0)
        assert json.loads(u.recv(4096))["pod"] == "a"

    # Nothing left ready: the loop waits its whole timeout, and the other key still answers.
    started = time.monotonic()
    loop.run_once(0.3)
    assert time.monotonic() - started >= 0.25
    with nsmod.entered(netns):
        client = socket.create_connection(("127.0.0.1", 8081), timeout=2)
    with client:
        client.sendall(b"netlab probe 1\n")
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and not loop.conns:
            loop.run_once(0.1)
        for _ in range(5):
            loop.run_once(0.1)
        assert json.loads(client.recv(4096))["pod"] == "b"
    loop.drop("p/b")


TOPO = """\
name: {name}
nodes: [{{name: n1}}]
internet:
  hosts: [{{name: client, ip: 203.0.113.50}}]
pods:
  - {{name: web, node: n1}}
"""


def curl(client: str, url: str) -> int:
    return in_netns(client, "curl", "-s", "-o", "/dev/null", "-m", "3", url, timeout=10).returncode


HEALTH = "kube-proxy: kube-proxy's health server on node n1 (port 10256/TCP: /healthz, /livez) is not served"
EXITED = "containers: pod web container main exited with code 1"


def status(name: str) -> subprocess.CompletedProcess:
    return netlab("status", "--lab", name, check=False)


def test_status_names_a_destroyed_listener_and_up_listens_anew(tmp_path):
    name = unique_lab("sg")
    path = write_topology(tmp_path, TOPO.format(name=name))
    with lab_up(path, name):
        node, client = f"{name}-n1", f"{name}-client"
        n1 = ipv4_of(node, "eth0")
        web = ipv4_of(f"{name}-web", "eth0")
        health, echo = f"http://{n1}:10256/healthz", f"http://{web}:8080/"
        assert curl(client, health) == 0 and curl(node, echo) == 0  # the pod from its node (no NAT between them)
        assert status(name).returncode == 0

        # kube-proxy's health server: not served, as status says; up listens anew.
        destroy(node, "-ltn", 10256)
        assert curl(client, health) == 7  # refused
        assert wait_for(lambda: HEALTH in status(name).stdout, timeout=10)
        run = status(name)
        assert run.returncode == 1 and EXITED not in run.stdout, run.stdout
        netlab("up", "-t", path)
        assert curl(client, health) == 0
        assert status(name).returncode == 0

        # The pod's echo port: its container exited (code 1, as a server whose accept fails); up restarts it.
        destroy(f"{name}-web", "-ltn", 8080)
        assert curl(node, echo) == 7
        assert wait_for(lambda: EXITED in status(name).stdout, timeout=10)
        assert status(name).returncode == 1
        netlab("up", "-t", path)
        assert curl(node, echo) == 0
        run = status(name)
        assert run.returncode == 0, run.stdout

        # Both at once: the server, left serving nothing, stays to say so; up serves both again.
        destroy(node, "-ltn", 10256)
        destroy(f"{name}-web", "-ltn", 8080)
        time.sleep(2 * 2.0)  # past the server's WATCH_SECONDS: it would have ended by now
        run = status(name)
        assert run.returncode == 1 and HEALTH in run.stdout and EXITED in run.stdout, run.stdout
        netlab("up", "-t", path)
        assert curl(client, health) == 0 and curl(node, echo) == 0
        run = status(name)
        assert run.returncode == 0, run.stdout
