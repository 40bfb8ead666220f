"""The lab's echo server busy, not answering or stopped while `up` changes the lab (root): every pod is served
again after it, by a pod's own answer on its echo port, and a pod moved to another node costs the other pods
nothing while the server is only slow.

A peer of its control socket that connects, sends part of a request and waits held the server (it read one peer at
a time, up to 10 s each); it now holds nothing (echocontrol.py: each peer read as it comes, dropped after
echocontrol.REQUEST_WAIT), and an `up` meanwhile is answered at once. A server that does not answer: one stopped.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from contextlib import contextmanager

import pytest

from helpers import netlab, state_path, two_node_topology
from netlab.kernel.processes import running, thread_group
from test_echo_shared import echo_tasks, ns, tcp_pod

pytestmark = pytest.mark.root

IPS = {"fedora-1": "10.244.0.2", "fedora-2": "10.244.1.3", "fedora-3": "10.244.0.3"}
THREE = two_node_topology("LAB", pods_per_node=2).replace(
    "  - {name: fedora-4, node: minikube-m02, ip: 10.244.1.4}\n", "")


def topology(lab: str, text: str = THREE) -> str:
    return text.replace("name: LAB", f"name: {lab}")


@contextmanager
def busy(lab: str, peers: int):
    """``peers`` control peers, each with a request begun and never ended (a server of before held 10 s each)."""
    socks = []
    try:
        for _ in range(peers):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(state_path(lab, "echo.sock"))
            s.sendall(b"{")  # a request begun, never ended
            socks.append(s)
        yield
    finally:
        for s in socks:
            s.close()


def restarts(lab: str) -> dict[str, int]:
    out = json.loads(netlab("get", "pods", "--lab", lab, "-o", "json").stdout)
    return {pod["name"]: pod["containers"][0]["restarts"] for pod in out["items"]}


def tgid(tid: int) -> int:
    with open(f"/proc/{tid}/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("Tgid:"))


def served_by_one_server(lab: str, ips: dict[str, str]) -> int:
    """Each pod answers on its echo port with its own name, from a thread in its namespace of one server."""
    tasks = echo_tasks(lab)
    gone = sorted(cid for cid, tid in tasks.items() if not os.path.exists(f"/proc/{tid}"))
    assert not gone, f"echo containers whose recorded thread is gone: {gone}"
    servers = {tgid(tid) for tid in tasks.values()}
    assert len(servers) == 1, tasks
    for cid, tid in tasks.items():
        pod = cid.split("/")[0]
        assert ns(f"/proc/{tid}/ns/net") == ns(f"/run/netns/{lab}-{pod}")
    for pod, ip in ips.items():
        assert tcp_pod(lab, "fedora-1", ip) == pod
    return servers.pop()


def test_an_up_that_replaces_a_server_that_does_not_answer_serves_every_pod_again(labs):
    lab = labs.name("ec")
    path, _ = labs.up(topology(lab))
    old = served_by_one_server(lab, IPS)
    four = topology(lab) + "  - {name: fedora-4, node: minikube-m02, ip: 10.244.1.4}\n"
    with open(path, "w") as fh:
        fh.write(four)
    os.kill(old, signal.SIGSTOP)  # up's request to add fedora-4 gets no answer
    try:
        up = netlab("up", "-t", path, check=False)
    finally:
        if running(old):
            os.kill(old, signal.SIGCONT)
    assert up.returncode == 0, up.stdout + up.stderr
    assert not running(old)
    server = served_by_one_server(lab, {**IPS, "fedora-4": "10.244.1.4"})
    assert server != old and thread_group(server) == server
    assert restarts(lab) == {"fedora-1": 1, "fedora-2": 1, "fedora-3": 1, "fedora-4": 0}
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 0, status.stdout


def test_a_pod_moved_while_the_server_is_busy_leaves_the_other_pods_echo_containers_as_they_ran(labs):
    lab = labs.name("ec")
    path, _ = labs.up(topology(lab))
    server = served_by_one_server(lab, IPS)
    before = echo_tasks(lab)
    with open(path, "w") as fh:
        fh.write(topology(lab).replace("{name: fedora-3, node: minikube, ip: 10.244.0.3}",
                                       "{name: fedora-3, node: minikube-m02, ip: 10.244.1.5}"))
    with busy(lab, 1):  # the stop of fedora-3's old namespace: the server drops its thread, the others' stay
        up = netlab("up", "-t", path, check=False)
    assert up.returncode == 0 and "warning" not in up.stderr, up.stdout + up.stderr
    assert served_by_one_server(lab, {**IPS, "fedora-3": "10.244.1.5"}) == server  # the same process
    after = echo_tasks(lab)
    assert {cid: after[cid] for cid in ("fedora-1/main", "fedora-2/main")} == \
        {cid: before[cid] for cid in ("fedora-1/main", "fedora-2/main")}  # the same threads, never restarted
    assert after["fedora-3/main"] != before["fedora-3/main"] and not os.path.exists(f"/proc/{before['fedora-3/main']}")
    assert restarts(lab) == {"fedora-1": 0, "fedora-2": 0, "fedora-3": 0}
    assert netlab("status", "--lab", lab, check=False).returncode == 0


def test_a_pod_moved_while_the_server_is_stopped_says_every_echo_container_is_started_again(labs):
    lab = labs.name("ec")
    path, _ = labs.up(topology(lab))
    old = served_by_one_server(lab, IPS)
    with open(path, "w") as fh:
        fh.write(topology(lab).replace("{name: fedora-3, node: minikube, ip: 10.244.0.3}",
                                       "{name: fedora-3, node: minikube-m02, ip: 10.244.1.5}"))
    os.kill(old, signal.SIGSTOP)
    try:
        up = netlab("up", "-t", path, check=False)
    finally:
        if running(old):
            os.kill(old, signal.SIGCONT)
    assert up.returncode == 0, up.stdout + up.stderr
    assert (f"netlab: warning: the lab's echo server (pid {old}) is stopped (SIGSTOP): it goes with pod fedora-3, "
            "whose namespace it is in, and every pod's echo container is started again in a new one") in up.stderr
    assert not running(old)
    assert served_by_one_server(lab, {**IPS, "fedora-3": "10.244.1.5"}) != old
    assert restarts(lab) == {"fedora-1": 1, "fedora-2": 1, "fedora-3": 0}  # restarted, counted; fedora-3 a new pod
    assert netlab("status", "--lab", lab, check=False).returncode == 0


def test_a_peer_with_a_request_never_ended_holds_no_up_and_every_pod_answers_after_it(labs):
    lab = labs.name("ew")
    path, _ = labs.up(topology(lab, two_node_topology("LAB", pods_per_node=1)))
    ips = {"fedora-1": "10.244.0.2", "fedora-2": "10.244.1.3"}
    server = served_by_one_server(lab, ips)
    with open(path, "w") as fh:  # fedora-2 moves: its thread is dropped, and one is added in its new namespace
        fh.write(topology(lab, two_node_topology("LAB", pods_per_node=1)).replace(
            "{name: fedora-2, node: minikube-m02, ip: 10.244.1.3}", "{name: fedora-2, node: minikube, ip: 10.244.0.3}"))
    with busy(lab, 1):
        started = time.monotonic()
        up = netlab("up", "-t", path, check=False)
        print(f"up of a moved pod while a control peer holds a partial request: {time.monotonic() - started:.2f} s")
    assert up.returncode == 0 and "warning" not in up.stderr, up.stdout + up.stderr
    assert served_by_one_server(lab, {"fedora-1": "10.244.0.2", "fedora-2": "10.244.0.3"}) == server
    assert restarts(lab) == {"fedora-1": 0, "fedora-2": 0}
    assert netlab("status", "--lab", lab, check=False).returncode == 0
