"""How command containers exited, told after the `up` that started them has gone (workload/exits.py).

A plain `up` leaves its command containers to init; the lab's echo server
holds a pidfd of each (a lab of command containers only gets a server for
this), and on Linux 6.15 and later the kernel keeps each exit status with the
pidfd. `get pods` says Completed or Error with the code, as kubectl does,
`status` names the code, and `up` (and a watcher started later: test_watch.py)
restarts an OnFailure container only if it failed, a Never one not at all:
one that completed is where its pod is meant to be, not drift. Checked against the kernel's own
view: the server process holds one pidfd per container (`/proc/<pid>/fd`),
each naming the container's pid until init reaped it (`fdinfo`).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from helpers import NETLAB, netlab, wait_for, write_topology
from netlab.errors import netlab_command
from netlab.kernel import pidfd
from netlab.kernel.processes import proc_state, running, start_time

# Runs `netlab up` (argv) as a subreaper that never reaps: the command containers it leaves are re-parented
# to this process instead of init, and stay zombies until it ends (a slow init, held as long as a test needs).
SLOW_INIT = """
import ctypes, subprocess, sys
if ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
    sys.exit("prctl(PR_SET_CHILD_SUBREAPER) failed")
up = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(up.returncode, flush=True)
sys.stdin.read()  # until the test is done: then the zombies go to init, which reaps them
"""

pytestmark = pytest.mark.skipif(not pidfd.exit_info_supported(),
                                reason="this kernel keeps no exit status with a pidfd (Linux < 6.15)")


def pod_yaml(name: str, policy: str | None, *containers: str, labels: str | None = None) -> str:
    """A pod of node n1 in a topology's YAML: its labels, restartPolicy and containers (flow mappings)."""
    lines = [f"  - name: {name}", "    node: n1"] + ([f"    labels: {labels}"] if labels else []) \
        + ([f"    restartPolicy: {policy}"] if policy else []) \
        + (["    containers:"] + [f"      - {c}" for c in containers] if containers else [])
    return "".join(line + "\n" for line in lines)


def one_node_lab(lab: str, *pods: str, services: str = "") -> str:
    """The YAML of lab ``lab``: one node, n1, with these pods (:func:`pod_yaml`), and these services."""
    return f"name: {lab}\nnodes:\n  - name: n1\npods:\n" + "".join(pods) + services


TRUE = '{name: main, command: ["true"]}'  # a command container that completes at once
EXIT_3 = '{name: main, command: [sh, -c, "exit 3"]}'  # ... that fails at once, with code 3


def containers(lab: str) -> dict[str, dict]:
    items = json.loads(netlab("get", "pods", "--lab", lab, "-o", "json").stdout)["items"]
    return {f"{p['name']}/{c['name']}": c for p in items for c in p["containers"]}


def server_of(lab: str) -> int:
    """The lab's echo server, as ps sees it: the process named netlab-echo serving the lab's control socket."""
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{name}/cmdline", "rb") as fh:
                argv = fh.read().split(b"\0")
            with open(f"/proc/{name}/comm") as fh:
                comm = fh.read().strip()
        except OSError:
            continue
        if comm == "netlab-echo" and f"/{lab}/echo.sock".encode() in b" ".join(argv):
            return int(name)
    raise AssertionError(f"no echo server of lab {lab}")


def held_pids(server: int) -> list[int]:
    """The pid each pidfd the server holds stands for (-1: reaped)."""
    out = []
    for fd in os.listdir(f"/proc/{server}/fd"):
        if os.readlink(f"/proc/{server}/fd/{fd}") == "anon_inode:[pidfd]":
            with open(f"/proc/{server}/fdinfo/{fd}") as fh:
                out += [int(line.split()[1]) for line in fh if line.startswith("Pid:")]
    return sorted(out)


def test_get_pods_and_status_say_how_command_containers_exited(labs):
    lab = labs.name("xc")
    sleeps = "{name: side, command: [sleep, infinity]}"
    path, proc = labs.up(one_node_lab(lab, pod_yaml("done", "Never", TRUE),
                                      pod_yaml("fails", "OnFailure", EXIT_3, sleeps)))
    assert "could not start" not in proc.stdout + proc.stderr  # `true` is done at once, not a failed start
    # They exit at once; the status is told from then on (a zombie's from /proc, once reaped the pidfd's).
    assert wait_for(lambda: all(c.get("exit_code") is not None for key, c in containers(lab).items()
                                if key != "fails/side"), 10), containers(lab)
    got = containers(lab)
    assert (got["done/main"]["state"], got["done/main"]["exit_code"]) == ("exited", 0)
    assert (got["fails/main"]["state"], got["fails/main"]["exit_code"]) == ("exited", 3)
    assert (got["fails/side"]["state"], got["fails/side"]["exit_code"]) == ("running", None)
    side = got["fails/side"]["pid"]
    # The kernel's view: a lab of command containers has an echo server, holding a pidfd of each (-1 once
    # init, when it gets to it, has reaped the container).
    assert wait_for(lambda: held_pids(server_of(lab)) == sorted([-1, -1, side]), 10), held_pids(server_of(lab))
    table = netlab("get", "pods", "--lab", lab, "-o", "wide").stdout  # NAMESPACE NAME READY STATUS ...
    rows = {line.split()[1]: line.split(None, 1)[1] for line in table.splitlines()[1:]}
    assert rows["done"].split()[2] == "Completed" and "main:exited(0)" in rows["done"], table
    assert rows["fails"].split()[2] == "Error" and "main:exited(3) side:running" in rows["fails"], table
    # The failed one is drift: its pod restarts it on failure. The completed one is done, as it should be.
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 1
    assert "pod done" not in status.stdout, status.stdout
    assert f"pod fails container main exited with code 3 (pid {got['fails/main']['pid']})" in status.stdout
    # up starts the failed one again, saying how it had exited; the server holds the new one in place of the
    # old. The completed one stays as it is.
    up = netlab("up", "-t", path)
    assert "restarted container fails/main (it had exited with code 3)" in up.stdout, up.stdout
    assert "done/main" not in up.stdout, up.stdout
    again = containers(lab)
    assert again["fails/main"]["pid"] != got["fails/main"]["pid"]
    assert again["done/main"]["pid"] == got["done/main"]["pid"]
    assert wait_for(lambda: [(c := containers(lab))["fails/main"].get("exit_code"),
                             c["done/main"].get("exit_code")] == [3, 0], 10), containers(lab)
    assert len(held_pids(server_of(lab))) == 3
    table = netlab("get", "pods", "--lab", lab).stdout.splitlines()
    rows = {cells[0]: cells for cells in (re.split(r"\s{2,}", line.strip()) for line in table[1:])}
    assert (rows["done"][2:4], rows["fails"][2:4]) == (["Completed", "0"], ["Error", "1"]), rows
    server = server_of(lab)
    netlab("down", "--lab", lab)
    assert wait_for(lambda: not running(server) and not running(side), 10), "down left the server or a container"


def test_a_container_init_has_not_reaped_yet_is_told_as_it_will_be_once_reaped(labs, tmp_path):
    """A container that fails at once is a zombie until init reaps it, a second and more on some machines:
    get pods and status say Error and its code from the moment it dies, as they do once it is reaped,
    never first "exited" without a code. Here the slow init is a subreaper that reaps nothing until the
    test lets it end."""
    lab = labs.name("xz")
    path = write_topology(tmp_path, one_node_lab(lab, pod_yaml("fails", "Never", EXIT_3)))
    slow_init = subprocess.Popen([sys.executable, "-c", SLOW_INIT, *NETLAB, "up", "-t", path],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert slow_init.stdout is not None and slow_init.stdout.readline().strip() == "0", "netlab up failed"
        pid = containers(lab)["fails/main"]["pid"]
        start = start_time(pid)
        assert wait_for(lambda: proc_state(pid) == "Z", 10), "the container did not exit"
        got = containers(lab)["fails/main"]
        table = netlab("get", "pods", "--lab", lab).stdout.split()
        status = netlab("status", "--lab", lab, check=False).stdout
        # Asked while it was a zombie the whole time: the slow init still holds it.
        assert proc_state(pid) == "Z" and start_time(pid) == start
        assert (got["state"], got["exit_code"]) == ("exited", 3), got
        assert table[table.index("fails") + 2] == "Error", table
        assert f"pod fails container main exited with code 3 (pid {pid})" in status, status
    finally:
        slow_init.communicate(timeout=30)  # it ends: init gets the zombie
    assert wait_for(lambda: start_time(pid) != start, 30), "init did not reap the container"
    got = containers(lab)["fails/main"]
    assert (got["state"], got["exit_code"]) == ("exited", 3), got


def test_plain_up_and_status_follow_each_pods_restart_policy(labs):
    """As the kubelet decides: Always starts an exited container again, OnFailure only one that failed, Never
    none. A container that completed and that its pod does not restart is done, not drift: a lab with a
    Job-like pod can be clean. A Never pod that failed is said, with why up leaves it."""
    lab = labs.name("xp")
    path, _ = labs.up(one_node_lab(lab, pod_yaml("always", None, TRUE), pod_yaml("onfailure", "OnFailure", TRUE),
                                   pod_yaml("never", "Never", EXIT_3)))
    assert wait_for(lambda: all(c.get("exit_code") is not None for c in containers(lab).values()), 10), \
        containers(lab)
    got = containers(lab)
    status = netlab("status", "--lab", lab, check=False).stdout
    assert f"pod always container main completed (exit code 0, pid {got['always/main']['pid']})" in status, status
    assert "pod onfailure" not in status, status
    assert (f"pod never container main exited with code 3 (pid {got['never/main']['pid']}); see "
            f"`{netlab_command(f'logs --lab {lab} never -c main')}`; restartPolicy Never: `netlab up` leaves it "
            "exited") in status, status
    up = netlab("up", "-t", path).stdout
    assert "restarted container always/main (it had exited with code 0)" in up, up
    assert "onfailure/main" not in up and "never/main" not in up, up
    again = containers(lab)
    assert again["always/main"]["pid"] != got["always/main"]["pid"]
    assert [again[k]["pid"] for k in ("onfailure/main", "never/main")] == \
        [got[k]["pid"] for k in ("onfailure/main", "never/main")]
    # The kernel's view: nothing was started in the pods that are done.
    for pod in ("onfailure", "never"):
        pids = subprocess.run(["ip", "netns", "pids", f"{lab}-{pod}"], capture_output=True, text=True, check=True)
        assert pids.stdout == "", (pod, pids.stdout)
    # Without the pods that exited for good or restart for ever, the lab is clean, its completed pod included.
    with open(path, "w") as fh:  # the same file, edited
        fh.write(one_node_lab(lab, pod_yaml("onfailure", "OnFailure", TRUE)))
    netlab("up", "-t", path)
    assert netlab("status", "--lab", lab, check=False).returncode == 0
    assert containers(lab)["onfailure/main"]["pid"] == got["onfailure/main"]["pid"]


def test_get_pods_says_kubectls_words_and_status_no_repair_up_cannot_make(labs, tmp_path):
    """A Never pod whose first command is not there and whose second exits 3: STATUS was "error, failed" (an
    echo container stopped by hand was "exited"), neither kubectl's word nor the README's; it is the first
    failing container's reason, StartError, in the table and in -o json alike, each container's state in
    CONTAINERS. `status` said "run `sudo netlab up -t FILE` again to repair", and that up exits 1 the same:
    it says what up leaves instead."""
    lab = labs.name("xw")
    path = write_topology(tmp_path, one_node_lab(
        lab, pod_yaml("job", "Never", "{name: bad, command: [/nonexistent]}",
                      '{name: ok, command: [sh, -c, "echo hello; exit 3"]}'),
        pod_yaml("web", None, labels="{app: web}"),
        services="services:\n  - {name: web, selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}\n"))
    assert netlab("up", "-t", path, check=False).returncode == 1  # bad could not start
    assert wait_for(lambda: containers(lab)["job/ok"].get("exit_code") == 3, 10), containers(lab)
    netlab("break", "endpoint-pod-down", "--lab", lab, "--target", "web")  # its echo container stops
    table = netlab("get", "pods", "--lab", lab, "-o", "wide").stdout  # NAMESPACE NAME READY STATUS ...
    rows = {line.split()[1]: line.split()[1:] for line in table.splitlines()[1:]}
    assert rows["job"][1:3] == ["0/2", "StartError"] and "bad:failed" in rows["job"], table
    # an echo container is a thread of the lab's server, which knows it stopped serving it: as a container the
    # kubelet stops with SIGTERM, Error with exit code 143 (it was ContainerStatusUnknown, and status said no code)
    assert "ok:exited(3)" in rows["job"] and rows["web"][1:3] == ["0/1", "Error"], table
    assert any(cell.endswith(":exited(143)") for cell in rows["web"]), table
    items = {p["name"]: p for p in json.loads(netlab("get", "pods", "--lab", lab, "-o", "json").stdout)["items"]}
    assert (items["job"]["status"], items["web"]["status"]) == ("StartError", "Error"), items
    assert [c["exit_code"] for c in items["web"]["containers"]] == [143], items
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 1 and "` to repair the rest" in status.stdout, status.stdout  # web's
    assert "container main exited with code 143 (pid " in status.stdout, status.stdout
    assert "does not repair those containers: a container that could not start is tried again by each `up`" \
        in status.stdout.splitlines()[-1], status.stdout
    assert netlab("up", "-t", path, check=False).returncode == 1  # web runs again; job's containers are as they were
    rows = {line.split()[0]: line.split() for line in netlab("get", "pods", "--lab", lab).stdout.splitlines()[1:]}
    assert (rows["job"][2], rows["web"][2]) == ("StartError", "Running"), rows
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 1 and "` to repair" not in status.stdout, status.stdout


def test_a_done_pods_container_whose_command_changed_runs_the_new_one_once(labs):
    """A pod's commands cannot change in Kubernetes: the changed spec is a new pod, whose container runs its new
    command once. `up -t FILE` held a Never pod's exited container down under its new command (and an OnFailure
    pod's that had completed), `status -t FILE` saying up would leave it exited."""
    lab = labs.name("xc")
    old = ("never", "Never", '{name: main, command: [sh, -c, "echo old; exit 3"]}'), \
        ("onfailure", "OnFailure", '{name: main, command: [sh, -c, "echo old"]}')
    path, _ = labs.up(one_node_lab(lab, *(pod_yaml(*pod) for pod in old)))
    assert wait_for(lambda: all(c.get("exit_code") is not None for c in containers(lab).values()), 10), \
        containers(lab)
    got = containers(lab)
    with open(path, "w") as fh:  # the same file, each command edited
        fh.write(one_node_lab(lab, pod_yaml("never", "Never", '{name: main, command: [sh, -c, "echo new; exit 0"]}'),
                              pod_yaml("onfailure", "OnFailure", '{name: main, command: [sh, -c, "echo new"]}')))
    against = netlab("status", "-t", path, check=False).stdout
    for pod in ("never", "onfailure"):
        assert f"pod {pod} container main exited (pid {got[f'{pod}/main']['pid']}) and its command changed; " \
               f"`{netlab_command(f'up -t {path}')}` starts the new one" in against, against
    up = netlab("up", "-t", path).stdout
    for pod in ("never", "onfailure"):
        assert f"restarted container {pod}/main (its command changed)" in up, up
    assert wait_for(lambda: all(c.get("exit_code") == 0 for c in containers(lab).values()), 10), containers(lab)
    again = containers(lab)
    items = {p["name"]: p for p in json.loads(netlab("get", "pods", "--lab", lab, "-o", "json").stdout)["items"]}
    for pod in ("never", "onfailure"):
        assert again[f"{pod}/main"]["pid"] != got[f"{pod}/main"]["pid"], (got, again)
        assert (items[pod]["status"], items[pod]["restarts"]) == ("Completed", 0), items[pod]
        assert netlab("logs", "--lab", lab, pod).stdout == "new\n"  # fresh: the old command's output went
        assert netlab("logs", "--lab", lab, pod, "-p", check=False).returncode == 2  # no run before it
    assert netlab("status", "--lab", lab, check=False).returncode == 0  # both done, as their pods are meant to be
    # It ran once: the same file again starts nothing, and nothing runs in the pods (the kernel's view).
    up = netlab("up", "-t", path).stdout
    assert "never/main" not in up and "onfailure/main" not in up, up
    assert {k: c["pid"] for k, c in containers(lab).items()} == {k: c["pid"] for k, c in again.items()}
    for pod in ("never", "onfailure"):
        pids = subprocess.run(["ip", "netns", "pids", f"{lab}-{pod}"], capture_output=True, text=True, check=True)
        assert pids.stdout == "", (pod, pids.stdout)
