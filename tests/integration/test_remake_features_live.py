"""A rollback that makes a pod again (lab/remake.py) on real namespaces: the Services and impairments features start
again only in that pod, as the containers feature does (tests/unit/test_remake_features.py: the same, no root).

Before, both fell back to their lab-wide start: the rollback rewrote every pod's hosts and resolv.conf and set every
impaired interface's qdisc again, so what a user had changed by hand elsewhere (which `status` names as drift and
the next `up` repairs) was silently "repaired" by a run the user had stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from helpers import in_netns, lab_up, netlab, netns_cookie, state_path, unique_lab, wait_for, write_topology
from netlab.kernel import tc

pytestmark = pytest.mark.root

A_RATE, B_RATE, CNI0_RATE, BY_HAND = 20_000_000, 10_000_000, 30_000_000, 5_000_000


def topology(lab: str, b_node: str) -> str:
    return (f"name: {lab}\nnodes:\n  - {{name: n1, impair: {{cni0: {{rate: 30mbit}}}}}}\n  - {{name: n2}}\n"
            "pods:\n"
            "  - {name: a, node: n1, labels: {app: web}, impair: {eth0: {rate: 20mbit}}}\n"
            f"  - {{name: b, node: {b_node}, impair: {{eth0: {{rate: 10mbit}}}}}}\n"
            "services:\n  - {name: web, selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}\n")


def root_rate(netns: str, dev: str) -> tuple[str, int] | None:
    """The root qdisc's kind and rate (bits a second), as `tc -j qdisc` shows them."""
    out = json.loads(subprocess.run(["tc", "-j", "-n", netns, "qdisc", "show", "dev", dev], capture_output=True,
                                    text=True, check=True).stdout)
    (root,) = [q for q in out if q.get("root")]
    return root["kind"], root.get("options", {}).get("rate", 0) * 8


def hosts_path(netns: str) -> str:
    return f"/etc/netns/{netns}/hosts"


def dnsmasq(lab: str) -> int:
    """The cluster DNS's dnsmasq pid, as the lab's state records it."""
    with open(state_path(lab, "state.json")) as fh:
        pods = json.load(fh)["extra"]["workload"]["pods"]
    (pid,) = [c["pid"] for c in pods["kube-dns"]["containers"].values()]
    return pid


def test_a_rollback_that_makes_a_pod_again_leaves_the_other_pods_files_and_qdiscs_as_the_user_left_them(tmp_path):
    """Pod a's eth0 and n1's cni0 shaped otherwise by hand, pod a's hosts file edited by hand (netlab's line kept):
    status names them. A change that makes pod b anew (put on n1), stopped by Ctrl-C after b's old namespace went:
    the rollback makes b again with its 10mbit and its files, and nothing else is touched: a's eth0 and cni0 keep
    5mbit, a's hosts file its line, the DNS's dnsmasq its pid, and status says what it said before the run."""
    lab = unique_lab("rb")
    path = write_topology(tmp_path, topology(lab, "n2"))
    with lab_up(path, lab):
        a, b, n1 = f"{lab}-a", f"{lab}-b", f"{lab}-n1"
        assert root_rate(a, "eth0") == ("tbf", A_RATE) and root_rate(b, "eth0") == ("tbf", B_RATE)
        assert root_rate(n1, "cni0") == ("tbf", CNI0_RATE)
        tc.replace_root(a, "eth0", BY_HAND)
        tc.replace_root(n1, "cni0", BY_HAND)
        with open(hosts_path(a), "a") as fh:
            fh.write("10.9.9.9\tby-hand\n")
        with open(hosts_path(a)) as fh:
            edited = fh.read()
        with open(hosts_path(b)) as fh:
            b_hosts = fh.read()
        dns = dnsmasq(lab)
        before = netlab("status", "--lab", lab, check=False)
        assert before.returncode == 1 and f"eth0 in {a} has rate 5mbit" in before.stdout, before.stdout
        assert hosts_path(a) in before.stdout, before.stdout
        cookie = netns_cookie(b)
        write_topology(tmp_path, topology(lab, "n1"))
        stopped = netlab("up", "-t", path, check=False, env={"NETLAB_FAULT_SIGNAL": "2:INT"})
        assert stopped.returncode == 130, stopped.stdout + stopped.stderr
        assert stopped.stderr.strip().endswith("interrupted by SIGINT; rolled back"), stopped.stderr
        assert netns_cookie(b) != cookie  # b was made again
        assert root_rate(b, "eth0") == ("tbf", B_RATE)  # its impairment, in its new namespace
        assert root_rate(a, "eth0") == ("tbf", BY_HAND) and root_rate(n1, "cni0") == ("tbf", BY_HAND)
        with open(hosts_path(a)) as fh:
            assert fh.read() == edited
        with open(hosts_path(b)) as fh:
            assert fh.read() == b_hosts
        assert dnsmasq(lab) == dns and os.path.exists(f"/proc/{dns}")
        with open(f"/proc/{dns}/comm") as fh:
            assert fh.read().strip() == "dnsmasq"
        after = netlab("status", "--lab", lab, check=False)
        # The same drift; its repair is now the lab's own topology, not the file edited since (`up -t` would apply it)
        repaired_by = before.stdout.splitlines()[-1]
        assert f"up -t {path}" in repaired_by, before.stdout
        assert after.returncode == 1 and after.stdout == before.stdout.replace(repaired_by, repaired_by.replace(
            f"up -t {path}", f"up --lab {lab}")), after.stdout
        assert f"file {path} changed since its last up" in after.stderr, after.stderr
        netlab("up", "--lab", lab)
        assert root_rate(a, "eth0") == ("tbf", A_RATE)  # the next up is the repair


def shells_topology(lab: str, b_node: str) -> str:
    pod = "  - {{name: {n}, node: {node}, containers: [{{name: web}}, {{name: shell, command: [sleep, infinity]}}]}}\n"
    return (f"name: {lab}\nnodes:\n  - {{name: n1}}\n  - {{name: n2}}\npods:\n"
            + pod.format(n="a", node="n1") + pod.format(n="b", node=b_node))


def containers(lab: str) -> dict[tuple[str, str], dict]:
    """Each container's record in the lab's state."""
    with open(state_path(lab, "state.json")) as fh:
        pods = json.load(fh)["extra"]["workload"]["pods"]
    return {(pod, name): c for pod, rec in pods.items() for name, c in rec["containers"].items()}


def proc_state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None


def moved_and_stopped(tmp_path, lab: str, path: str) -> None:
    """Pod b put on n1, the run stopped by Ctrl-C after b's old namespace went: the rollback makes b again."""
    cookie = netns_cookie(f"{lab}-b")
    write_topology(tmp_path, shells_topology(lab, "n1"))
    stopped = netlab("up", "-t", path, check=False, env={"NETLAB_FAULT_SIGNAL": "2:INT"})
    assert stopped.returncode == 130, stopped.stdout + stopped.stderr
    assert netns_cookie(f"{lab}-b") != cookie, stopped.stderr
    return stopped.stderr.strip()


def test_a_paused_container_in_a_pod_made_again_runs_again(tmp_path):
    """Pod b's shell paused (SIGSTOP; a runtime's paused container, still running): the run that makes b anew kills
    it with the pod's old namespace. Its rollback held it down as one that did not run, so status and get pods said
    it had exited, which it never did. Now it is started again in b's new namespace, running (as a real runtime
    starts a new sandbox's containers), and status says so; pod a's shell is the same process."""
    lab = unique_lab("rb")
    path = write_topology(tmp_path, shells_topology(lab, "n2"))
    with lab_up(path, lab):
        before = containers(lab)
        paused = before[("b", "shell")]["pid"]
        os.kill(paused, signal.SIGSTOP)
        assert wait_for(lambda: proc_state(paused) == "T", timeout=10)
        said = moved_and_stopped(tmp_path, lab, path)
        assert said.endswith("interrupted by SIGINT; rolled back"), said
        after = containers(lab)
        shell = after[("b", "shell")]["pid"]
        assert shell != paused and proc_state(paused) in (None, "Z") and proc_state(shell) in ("S", "R")
        with open(f"/proc/{shell}/cmdline", "rb") as fh:
            assert fh.read().split(b"\0")[:2] == [b"sleep", b"infinity"]
        assert os.stat(f"/proc/{shell}/ns/net").st_ino == os.stat(f"/run/netns/{lab}-b").st_ino
        assert after[("a", "shell")]["pid"] == before[("a", "shell")]["pid"]
        status = netlab("status", "--lab", lab, check=False)
        assert status.returncode == 0, status.stdout
        rows = netlab("get", "pods", "--lab", lab).stdout.splitlines()
        assert [row.split()[1:3] for row in rows[1:]] == [["2/2", "Running"], ["2/2", "Running"]], rows


ECHO = r"""
import json, socket, sys
s = socket.create_connection((sys.argv[1], 8080), timeout=3)
s.sendall(b"hello\n")
data = b""
while not data.endswith(b"\n"):
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
print(data.decode().strip())
"""


def echo_from(netns: str, ip: str) -> str | None:
    """The pod that answers a real connection to ip:8080 from ``netns`` (None: no answer)."""
    answer = in_netns(netns, sys.executable, "-c", ECHO, ip, timeout=30)
    return json.loads(answer.stdout)["pod"] if answer.returncode == 0 else None


def thread_group(tid: int) -> int | None:
    """The process a task is a thread of (None: no such task)."""
    try:
        with open(f"/proc/{tid}/status") as fh:
            return int(next(line.split()[1] for line in fh if line.startswith("Tgid:")))
    except FileNotFoundError:
        return None


def test_an_echo_server_the_run_took_is_replaced_by_one_serving_every_pod_it_served(tmp_path):
    """The lab's one echo server stopped (SIGSTOP: it answers nothing), then a change that makes pod b anew stopped by
    Ctrl-C. The run's stop of b could not ask the server to drop b's echo thread, so it stopped the process that had
    a thread in b's namespace: the server, and pod a's echo threads with it. The rollback's start in b alone then
    made a new server for b's echo container only: a's exited (status said so, and nothing answered on a:8080). Now
    the new server serves a's too, which ran in the old one before the run (a restart), and both answer."""
    lab = unique_lab("rb")
    path = write_topology(tmp_path, shells_topology(lab, "n2"))
    with lab_up(path, lab):
        before = containers(lab)
        server = thread_group(before[("a", "web")]["pid"])
        assert thread_group(before[("b", "web")]["pid"]) == server != before[("a", "web")]["pid"]
        os.kill(server, signal.SIGSTOP)
        assert wait_for(lambda: proc_state(server) == "T", timeout=10)
        try:
            said = moved_and_stopped(tmp_path, lab, path)
        finally:
            if proc_state(server) not in (None, "Z"):
                os.kill(server, signal.SIGCONT)
        assert said.endswith("interrupted by SIGINT; rolled back"), said
        assert proc_state(server) in (None, "Z")  # the run took it
        after = containers(lab)
        now = thread_group(after[("b", "web")]["pid"])
        assert now != server and thread_group(after[("a", "web")]["pid"]) == now
        assert after[("a", "web")]["restarts"] == before[("a", "web")]["restarts"] + 1
        assert after[("a", "shell")]["pid"] == before[("a", "shell")]["pid"]  # a command container: not the server's
        assert echo_from(f"{lab}-n1", "10.244.0.2") == "a" and echo_from(f"{lab}-n1", "10.244.1.2") == "b"
        status = netlab("status", "--lab", lab, check=False)
        assert status.returncode == 0, status.stdout
