"""A pod added to a running lab's file, in the middle of its pods, moves no running pod: each keeps the
address on its eth0 (as host-local keeps a pod's lease while the pod lives), its containers run on (the same
pids, the cluster DNS's dnsmasq too), and the new pod takes the lowest free address of its node's block and
reaches everything (probe). tests/unit/test_addressing_held.py checks the allocation itself."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import pytest

from helpers import (as_planned_here, in_netns, ip_json, lab_up, netlab, netns_cookie, probe_failures, state_path,
                     unique_lab, up_here, wait_for, write_topology)

pytestmark = pytest.mark.root

POD = ("  - {{name: {name}, node: {node}{labels}, "
       "containers: [{{name: web}}, {{name: shell, command: [sleep, infinity]}}]}}\n")


def topology(lab: str, pods: list[tuple[str, str, str]]) -> str:
    body = "".join(POD.format(name=n, node=node, labels=f", labels: {{app: {app}}}" if app else "")
                   for n, node, app in pods)
    return (f"name: {lab}\nnodes:\n  - {{name: n1}}\n  - {{name: n2}}\npods:\n{body}"
            "services:\n  - {name: web, selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}\n")


def eth0(lab: str, pod: str) -> list[str]:
    """The pod's eth0 addresses, as the kernel has them."""
    (link,) = ip_json("addr", "show", "dev", "eth0", netns=f"{lab}-{pod}")
    return [f"{a['local']}/{a['prefixlen']}" for a in link["addr_info"] if a["family"] == "inet"]


def pids(lab: str) -> dict[tuple[str, str], int]:
    """Each container's pid, as the lab's state records it (what `get pods` shows restarts from)."""
    with open(state_path(lab, "state.json")) as fh:
        pods = json.load(fh)["extra"]["workload"]["pods"]
    return {(pod, name): c["pid"] for pod, rec in pods.items() for name, c in rec["containers"].items()}


def test_a_pod_inserted_mid_file_moves_no_running_pod_and_restarts_nothing(tmp_path):
    lab = unique_lab("ha")
    before = [("a", "n1", "web"), ("b", "n1", ""), ("c", "n2", "web")]
    path = write_topology(tmp_path, topology(lab, before))
    with lab_up(path, lab, in_process=True):
        running = ["a", "b", "c", "kube-dns"]
        addresses = {pod: eth0(lab, pod) for pod in running}
        assert addresses == {"a": ["10.244.0.2/24"], "b": ["10.244.0.3/24"], "c": ["10.244.1.2/24"],
                             "kube-dns": ["10.244.0.4/24"]}
        started = pids(lab)
        assert {pod for pod, _ in started} == set(running) and all(started.values())
        write_topology(tmp_path, topology(lab, [before[0], ("new", "n1", ""), *before[1:]]))
        up_here(path)
        assert {pod: eth0(lab, pod) for pod in running} == addresses
        now = pids(lab)
        assert {k: v for k, v in now.items() if k[0] != "new"} == started  # nothing restarted
        assert eth0(lab, "new") == ["10.244.0.5/24"]  # n1's lowest free address
        pods = {p["name"]: p for p in json.loads(netlab("get", "pods", "--lab", lab, "-o", "json").stdout)["items"]}
        assert {name: (p["ip"], p["restarts"]) for name, p in pods.items()} == {
            "a": ("10.244.0.2", 0), "new": ("10.244.0.5", 0), "b": ("10.244.0.3", 0), "c": ("10.244.1.2", 0),
            "kube-dns": ("10.244.0.4", 0)}
        assert as_planned_here(lab)
        probe = netlab("probe", "--lab", lab, "-o", "json", check=False)
        assert probe.returncode == 0, probe_failures(json.loads(probe.stdout))


def node_addresses(lab: str, node: str) -> list[list[str]]:
    """The node's eth0 (underlay) and cni0 (its block's gateway) addresses, as the kernel has them."""
    out = []
    for dev in ("eth0", "cni0"):
        (link,) = ip_json("addr", "show", "dev", dev, netns=f"{lab}-{node}")
        out.append([f"{a['local']}/{a['prefixlen']}" for a in link["addr_info"] if a["family"] == "inet"])
    return out


def test_a_node_inserted_between_two_running_ones_re_addresses_no_node_nor_pod_and_restarts_nothing(tmp_path):
    """A running node keeps its InternalIP and its podCIDR (the node IPAM controller never changes a node's
    spec.podCIDR), so its pods keep theirs: the node put in the middle of nodes: takes the lowest free ones. (Its
    pod is no endpoint of web: the cluster DNS's records stay the same, and its dnsmasq runs on.)"""
    lab = unique_lab("hn")

    def text(nodes: list[str]) -> str:
        return (f"name: {lab}\nnodes:\n" + "".join(f"  - {{name: {n}}}\n" for n in nodes) + "pods:\n"
                + "".join(POD.format(name=f"p-{n}", node=n, labels="" if n == "mid" else ", labels: {app: web}")
                          for n in nodes)
                + "services:\n  - {name: web, selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}\n")

    path = write_topology(tmp_path, text(["n1", "n2"]))
    with lab_up(path, lab, in_process=True):
        nodes = {n: node_addresses(lab, n) for n in ("n1", "n2")}
        assert nodes == {"n1": [["192.168.122.2/24"], ["10.244.0.1/24"]],
                         "n2": [["192.168.122.3/24"], ["10.244.1.1/24"]]}
        running = ["p-n1", "p-n2", "kube-dns"]
        addresses = {pod: eth0(lab, pod) for pod in running}
        assert addresses["p-n2"] == ["10.244.1.2/24"]
        started = pids(lab)
        write_topology(tmp_path, text(["n1", "mid", "n2"]))
        up_here(path)
        assert {n: node_addresses(lab, n) for n in ("n1", "n2")} == nodes
        assert {pod: eth0(lab, pod) for pod in running} == addresses
        assert {k: v for k, v in pids(lab).items() if k[0] != "p-mid"} == started  # nothing restarted
        assert node_addresses(lab, "mid") == [["192.168.122.4/24"], ["10.244.2.1/24"]]  # the lowest free ones
        assert eth0(lab, "p-mid") == ["10.244.2.2/24"]
        got = json.loads(netlab("get", "nodes", "--lab", lab, "-o", "json").stdout)["items"]
        assert {n["name"]: n["pod_cidr"] for n in got} == {"n1": "10.244.0.0/24", "mid": "10.244.2.0/24",
                                                          "n2": "10.244.1.0/24"}
        assert as_planned_here(lab)
        probe = netlab("probe", "--lab", lab, "-o", "json", check=False)  # the new node's pod reaches and is reached
        assert probe.returncode == 0, probe_failures(json.loads(probe.stdout))


def netns_id(lab: str, pod: str) -> int:
    """Pod ``pod``'s namespace as the kernel tells it from every other (helpers.netns_cookie)."""
    return netns_cookie(f"{lab}-{pod}")


def test_a_pod_whose_node_gets_a_new_pod_cidr_is_made_anew_and_an_interrupted_change_rolls_back(tmp_path):
    """A pod's address never changes while it lives: n2's new podCIDR makes its pod a new pod (a new namespace,
    its containers started again, the new address), as a pod put on another node is; up re-addressed the running
    pod in place (the same namespace and processes). Then n2's new ip:, stopped by a Ctrl-C after its flannel.1
    was deleted (made again with its new local address): the rollback puts back what the kernel dropped with it
    (its address, the routes through it), so status is clean and probe passes; it left them missing."""
    lab = unique_lab("hc")

    def text(cidr: str, ip: str = "192.168.122.3") -> str:
        return (f"name: {lab}\ncluster: {{podCIDR: 10.60.0.0/16}}\nnodes:\n  - {{name: n1}}\n"
                f"  - {{name: n2, ip: {ip}, podCIDR: {cidr}}}\npods:\n"
                + POD.format(name="a", node="n1", labels=", labels: {app: web}")
                + POD.format(name="b", node="n2", labels=", labels: {app: web}")
                + "services:\n  - {name: web, selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}\n")

    path = write_topology(tmp_path, text("10.60.9.0/24"))
    with lab_up(path, lab, in_process=True):
        assert eth0(lab, "b") == ["10.60.9.2/24"]
        started, made = pids(lab), netns_id(lab, "b")
        write_topology(tmp_path, text("10.60.7.0/24"))
        done = json.loads(netlab("up", "-t", path, "-o", "json").stdout)
        assert ("pod b changes address from 10.60.9.2 to 10.60.7.2 (node n2's pod CIDR is now 10.60.7.0/24): made "
                "anew in a new namespace (Kubernetes makes a new pod)") in done["fixed"], done
        assert eth0(lab, "b") == ["10.60.7.2/24"] and netns_id(lab, "b") != made
        now = pids(lab)
        assert all(now[k] != v for k, v in started.items() if k[0] == "b"), (started, now)
        assert {k: v for k, v in now.items() if k[0] == "a"} == {k: v for k, v in started.items() if k[0] == "a"}
        assert as_planned_here(lab)
        out = netlab("probe", "--lab", lab, check=False)
        assert out.returncode == 0, out.stdout + out.stderr
        write_topology(tmp_path, text("10.60.7.0/24", ip="192.168.122.9"))
        stopped = netlab("up", "-t", path, check=False, env={"NETLAB_FAULT_SIGNAL": "4:INT"})
        assert stopped.returncode == 130 and "interrupted by SIGINT; rolled back" in stopped.stderr, stopped.stderr
        assert as_planned_here(lab)
        out = netlab("probe", "--lab", lab, check=False)
        assert out.returncode == 0, out.stdout + out.stderr


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


def node_veths(lab: str, node: str) -> list[tuple[str, str | None, str]]:
    """The node's pod-side veths: (name, bridge, state), as the kernel has them."""
    return sorted((link["ifname"], link.get("master"), link["operstate"])
                  for link in ip_json("link", "show", netns=f"{lab}-{node}") if link["ifname"].startswith("veth"))


@pytest.mark.parametrize("change, at", [("node", 2), ("podCIDR", 5)])
def test_an_interrupted_change_brings_back_the_pod_it_had_begun_to_make_anew(tmp_path, change, at):
    """Pod b made anew (put on n1, or its node n2 given a new podCIDR), the run stopped by Ctrl-C after b's old
    namespace and containers went (step 1 deletes it; step 2 makes its new namespace, later ones its veth and
    addresses). The rollback took back the rest and said "but for pod b, which it had begun to make anew": the
    lab ran without b until `up --lab`. Now b is back as the last good run had it: in n2, its old address on
    eth0, its routes, its veth on n2's cni0, its echo container answering a's real connection; status is clean."""
    lab = unique_lab("hr")

    def text(node: str, cidr: str) -> str:
        return (f"name: {lab}\ncluster: {{podCIDR: 10.60.0.0/16}}\nnodes:\n  - {{name: n1}}\n"
                f"  - {{name: n2, podCIDR: {cidr}}}\npods:\n"
                + POD.format(name="a", node="n1", labels=", labels: {app: web}")
                + POD.format(name="b", node=node, labels="")
                + "services:\n  - {name: web, selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}\n")

    path = write_topology(tmp_path, text("n2", "10.60.9.0/24"))
    with lab_up(path, lab, in_process=True):
        assert eth0(lab, "b") == ["10.60.9.2/24"]
        routes = ip_json("-4", "route", "show", netns=f"{lab}-b")
        veths = {node: node_veths(lab, node) for node in ("n1", "n2")}
        assert len(veths["n2"]) == 1, veths
        made = netns_id(lab, "b")
        # as planned before the change (a loaded machine's kernel may still settle a port or a link): the change's
        # k-th operation is then the same on every run
        assert wait_for(lambda: as_planned_here(lab), timeout=15)
        write_topology(tmp_path, text("n1", "10.60.9.0/24") if change == "node" else text("n2", "10.60.7.0/24"))
        stopped = netlab("up", "-t", path, check=False, env={"NETLAB_FAULT_SIGNAL": f"{at}:INT"})
        assert stopped.returncode == 130, stopped.stdout + stopped.stderr
        assert stopped.stderr.strip().endswith("interrupted by SIGINT; rolled back"), stopped.stderr
        assert netns_id(lab, "b") != made  # its old namespace went: b was made again
        assert eth0(lab, "b") == ["10.60.9.2/24"]
        assert ip_json("-4", "route", "show", netns=f"{lab}-b") == routes
        assert {node: node_veths(lab, node) for node in ("n1", "n2")} == veths  # b's on n2, none new on n1
        answer = in_netns(f"{lab}-a", sys.executable, "-c", ECHO, "10.60.9.2", timeout=30)
        assert answer.returncode == 0 and json.loads(answer.stdout)["pod"] == "b", answer.stdout + answer.stderr
        assert ("b", "web") in pids(lab) and ("b", "shell") in pids(lab)
        assert as_planned_here(lab)


def netns_pids(netns: str) -> list[str]:
    """The processes in a network namespace, as `ip netns pids` sees them (an echo container is a thread of the
    lab's echo server, which lives in the host's: a pod's are its command containers)."""
    return subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True, check=True).stdout.split()


def _codeless(status: str) -> str:
    """A status's lines without the exit codes of exited containers."""
    return re.sub(r"exited with code \d+ \(", "exited (", status)


def test_a_pod_made_again_by_a_rollback_starts_only_what_ran_in_it(tmp_path):
    """Pod a's shell and pod b's shell killed by hand (exited: the lab's drift, which a plain `up` restarts), then a
    change that makes b anew (put on n1) stopped by Ctrl-C after b's old namespace went. The rollback that makes b
    again started the lab's containers: a's shell ran again, and b's, though neither ran before the run. Now only
    b's echo container, which ran before, runs again (it answers a real connection), and `status` says what it
    said before the run (both shells exited, with their code and pid)."""
    lab = unique_lab("rb")

    def text(node: str) -> str:
        return (f"name: {lab}\nnodes:\n  - {{name: n1}}\n  - {{name: n2}}\npods:\n"
                + POD.format(name="a", node="n1", labels="") + POD.format(name="b", node=node, labels=""))

    path = write_topology(tmp_path, text("n2"))
    with lab_up(path, lab, in_process=True):
        for pod in ("a", "b"):
            (pid,) = netns_pids(f"{lab}-{pod}")
            os.kill(int(pid), signal.SIGKILL)
            assert wait_for(lambda: netns_pids(f"{lab}-{pod}") == [], timeout=10)
        before = netlab("status", "--lab", lab, check=False)
        assert before.returncode == 1 and "pod a container shell exited" in before.stdout, before.stdout
        assert "pod b container shell exited" in before.stdout, before.stdout
        made = netns_id(lab, "b")
        write_topology(tmp_path, text("n1"))
        stopped = netlab("up", "-t", path, check=False, env={"NETLAB_FAULT_SIGNAL": "2:INT"})
        assert stopped.returncode == 130, stopped.stdout + stopped.stderr
        assert stopped.stderr.strip().endswith("interrupted by SIGINT; rolled back"), stopped.stderr
        assert netns_id(lab, "b") != made  # b was made again
        assert netns_pids(f"{lab}-a") == [] and netns_pids(f"{lab}-b") == []  # no shell started, in a nor b
        answer = in_netns(f"{lab}-a", sys.executable, "-c", ECHO, "10.244.1.2", timeout=30)
        assert answer.returncode == 0 and json.loads(answer.stdout)["pod"] == "b", answer.stdout + answer.stderr
        after = netlab("status", "--lab", lab, check=False)
        # the lab as the run found it; a shell's exit code is the lab's echo server's answer, which a loaded
        # machine may give one of the two statuses too late (then "exited (pid N)"). Its repair is `up --lab` now:
        # the file was edited since the lab's last up (its `up -t` would move b), and status says so
        was = _codeless(before.stdout).replace(f"up -t {path}`", f"up --lab {lab}`")
        assert after.returncode == 1 and _codeless(after.stdout) == was, after.stdout
        assert f"the lab's file {path} changed since its last up" in after.stderr, after.stderr


def test_a_repair_stopped_by_ctrl_c_leaves_the_old_sandboxs_containers_and_logs(tmp_path):
    """Pod b's namespace deleted by hand (`ip netns del`): its containers run on in the old sandbox, which status
    names. A repair that made the namespace again, stopped by Ctrl-C: its rollback stopped pod b by name, as `down`
    does, and the shell that ran in the old sandbox was killed, its record and log taken, though the run had made
    none of them. Now the rollback deletes only the namespace it made: the shell runs on, the same pid in the state,
    its log there, and status says what it said before the run."""
    lab = unique_lab("rb")
    path = write_topology(tmp_path, f"name: {lab}\nnodes:\n  - {{name: n1}}\n  - {{name: n2}}\npods:\n"
                          + POD.format(name="a", node="n1", labels="") + POD.format(name="b", node="n2", labels=""))
    with lab_up(path, lab, in_process=True):
        (shell,) = netns_pids(f"{lab}-b")
        started = pids(lab)
        subprocess.run(["ip", "netns", "del", f"{lab}-b"], check=True)
        before = netlab("status", "--lab", lab, check=False)
        assert before.returncode == 1 and f"{lab}-b" in before.stdout, before.stdout
        stopped = netlab("up", "-t", path, check=False, env={"NETLAB_FAULT_SIGNAL": "2:INT"})
        assert stopped.returncode == 130, stopped.stdout + stopped.stderr
        assert stopped.stderr.strip().endswith("interrupted by SIGINT; rolled back"), stopped.stderr
        assert not os.path.exists(f"/run/netns/{lab}-b")  # the namespace the run made went
        with open(f"/proc/{shell}/cmdline", "rb") as fh:  # the old sandbox's shell runs on
            assert fh.read().split(b"\0")[:2] == [b"sleep", b"infinity"]
        assert pids(lab) == started and os.path.exists(state_path(lab, "logs", "b.shell.log"))
        after = netlab("status", "--lab", lab, check=False)
        assert after.returncode == 1 and after.stdout == before.stdout, after.stdout
