"""One echo server process per lab (root): its threads sit in the pods, it converges, and it never lingers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from helpers import in_netns, netlab, state_path, two_node_topology, wait_for
from netlab.kernel.processes import running, thread_group

pytestmark = pytest.mark.root

DUO = """  - name: duo
    node: minikube
    ip: 10.244.0.9
    containers:
      - name: a
        ports: [{containerPort: 9000}]
      - name: b
        ports: [{containerPort: 9053, protocol: UDP}]
      - name: idle
        command: [sleep, infinity]
"""


def records(lab: str) -> dict:
    with open(state_path(lab, "state.json")) as fh:
        return json.load(fh)["extra"]["workload"]["pods"]


def echo_tasks(lab: str) -> dict[str, int]:
    """pod/container -> recorded task id, for the echo containers (argv of netlab's echo server)."""
    return {f"{pod}/{c}": r["pid"] for pod, prec in records(lab).items() for c, r in prec["containers"].items()
            if r["argv"][:3] == ["python3", "-m", "netlab.workload.echo"]}


def ns(path: str) -> int:
    return os.stat(path).st_ino


def gone(pid: int) -> bool:
    return not running(pid)


def tcp_pod(lab: str, src: str, dst: str, port: int = 8080) -> str:
    code = ("import json, socket\n"
            f"s = socket.create_connection(({dst!r}, {port}), timeout=3)\n"
            "print(json.loads(s.makefile().readline())['pod'])\n")
    return in_netns(f"{lab}-{src}", sys.executable, "-c", code).stdout.strip()


def test_one_process_serves_every_echo_container_each_from_a_thread_in_its_pod(labs):
    lab = labs.name("es")
    labs.up(two_node_topology(lab, pods_per_node=1) + DUO)
    tasks = echo_tasks(lab)
    assert sorted(tasks) == ["duo/a", "duo/b", "fedora-1/main", "fedora-2/main"]
    servers = {thread_group(tid) for tid in tasks.values()}
    assert len(servers) == 1
    (server,) = servers
    assert all(tid != server for tid in tasks.values())  # threads, not the process's first task
    for cid, tid in tasks.items():
        pod = cid.split("/")[0]
        assert ns(f"/proc/{tid}/ns/net") == ns(f"/run/netns/{lab}-{pod}")
        assert ns(f"/proc/{tid}/ns/uts") == ns(state_path(lab, "uts", pod))
        host = subprocess.run(["nsenter", "-t", str(tid), "-u", "hostname"], capture_output=True, text=True)
        assert host.stdout.strip() == pod
    # The server itself is in no lab namespace; the command container is a process of its own.
    assert ns(f"/proc/{server}/ns/net") == ns("/proc/self/ns/net")  # the host's: the test runs there
    idle = records(lab)["duo"]["containers"]["idle"]["pid"]
    assert thread_group(idle) == idle and ns(f"/proc/{idle}/ns/net") == ns(f"/run/netns/{lab}-duo")
    assert tcp_pod(lab, "fedora-2", "10.244.0.9", 9000) == "duo"
    assert tcp_pod(lab, "fedora-1", "10.244.1.3") == "fedora-2"


def test_a_lab_that_gains_and_loses_pods_keeps_its_server_and_the_other_pods_threads(labs):
    lab = labs.name("es")
    path, _ = labs.up(two_node_topology(lab, pods_per_node=2))
    before = echo_tasks(lab)
    server = thread_group(before["fedora-1/main"])
    # fedora-4 goes, fedora-5 comes, fedora-1 gets another port.
    text = two_node_topology(lab, pods_per_node=2).replace(
        "  - {name: fedora-4, node: minikube-m02, ip: 10.244.1.4}",
        "  - {name: fedora-5, node: minikube-m02, ip: 10.244.1.9}").replace(
        "  - {name: fedora-1, node: minikube, ip: 10.244.0.2}",
        "  - {name: fedora-1, node: minikube, ip: 10.244.0.2, containers: [{name: main, ports: [{containerPort: 7000}]}]}")
    with open(path, "w") as fh:
        fh.write(text)
    netlab("up", "-t", path)
    after = echo_tasks(lab)
    assert sorted(after) == ["fedora-1/main", "fedora-2/main", "fedora-3/main", "fedora-5/main"]
    # Each pod's (and node's, and the underlay's) UTS pin is a hard link of one empty file (a link is cheap where
    # a new file is not), a namespace mounted on it; the gone pod's link went with its pin.
    assert sorted(os.listdir(state_path(lab, "uts"))) == [".pin", "fedora-1", "fedora-2", "fedora-3", "fedora-5",
                                                          "minikube", "minikube-m02", "underlay"]
    assert os.stat(state_path(lab, "uts", ".pin")).st_nlink == 8
    assert {thread_group(tid) for tid in after.values()} == {server}  # the same process
    for cid in ("fedora-2/main", "fedora-3/main"):
        assert after[cid] == before[cid]  # untouched pods: the same thread, never restarted
    assert after["fedora-1/main"] != before["fedora-1/main"] and gone(before["fedora-1/main"])
    assert gone(before["fedora-4/main"])  # its thread left the deleted pod and ended
    assert tcp_pod(lab, "fedora-2", "10.244.0.2", 7000) == "fedora-1"
    assert tcp_pod(lab, "fedora-1", "10.244.1.9") == "fedora-5"
    assert "listening on 7000/TCP" in netlab("logs", "--lab", lab, "fedora-1").stdout
    assert netlab("status", "--lab", lab, check=False).returncode == 0
    assert netlab("probe", "--lab", lab, check=False).returncode == 0


def test_a_killed_echo_server_is_drift_and_up_starts_a_new_one(labs):
    lab = labs.name("es")
    path, _ = labs.up(two_node_topology(lab, pods_per_node=1))
    server = thread_group(echo_tasks(lab)["fedora-1/main"])
    os.kill(server, signal.SIGKILL)
    assert wait_for(lambda: gone(server), timeout=8)
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 1
    for pod in ("fedora-1", "fedora-2"):
        assert f"pod {pod} container main exited" in status.stdout, status.stdout
    up = netlab("up", "-t", path)
    assert "restarted container fedora-1/main (it had exited)" in up.stdout, up.stdout
    assert thread_group(echo_tasks(lab)["fedora-2/main"]) not in (None, server)
    assert netlab("status", "--lab", lab, check=False).returncode == 0
    assert tcp_pod(lab, "fedora-1", "10.244.1.3") == "fedora-2"


def test_the_echo_server_does_not_outlive_its_control_socket(labs):
    """A lab directory removed behind netlab's back (or a crash between launch and record): the server
    notices its control socket is gone and exits, so it never holds the lab's namespaces for long."""
    lab = labs.name("es")
    path, _ = labs.up(two_node_topology(lab, pods_per_node=1))
    server = thread_group(echo_tasks(lab)["fedora-1/main"])
    os.unlink(state_path(lab, "echo.sock"))
    assert wait_for(lambda: gone(server), timeout=10)
    assert "the lab's echo server stopped: its control socket is gone" in netlab("logs", "--lab", lab, "fedora-1").stdout
    netlab("up", "-t", path)
    assert netlab("status", "--lab", lab, check=False).returncode == 0
