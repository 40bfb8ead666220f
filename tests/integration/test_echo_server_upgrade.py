"""A lab left up across an upgrade of netlab: its echo server is the older netlab's (root).

The older netlab is this checkout's netlab copied beside the test, with its echo server's control answering as a
server of a netlab before the protocol had a number did (it knows the requests of its time, and answers any other
``? unknown request``; its client takes such a server for its own), run by a venv of its own: ``up`` from that
copy starts the lab and its echo server (``python -I -m netlab.workload.echoserver``, the copy's code), exactly
as the older netlab's ``up`` did. Two older netlabs: one before kube-proxy's health checks (it asks none, its server
knows none: 10256 is refused on every node), and the last before the protocol had a number (it serves them).

This netlab's ``status`` then names the server as an older netlab's, and says that ``up`` replaces it (it said
kube-proxy's health server was not served, and ``up`` asked the old server again, for good); ``up`` replaces it:
the pod's port and every node's 10256 answer (curl), from the new server's sockets, the pod's hostname and restarts
are as before, its log goes on (one line says why), a completed Never container is still told completed, and a
running command container's exit is told (its pidfd is the new server's).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig

import pytest

import netlab
from helpers import (STATE_ROOT, in_netns, ipv4_of, lab_down, netlab as run_netlab, unique_lab, wait_for,
                     write_topology)
from netlab.errors import netlab_command
from netlab.kernel import processes as proc
from netlab.workload import launch
from netlab.workload.echocontrol import PROTOCOL

pytestmark = pytest.mark.root

OLDER_CONTROL = '''

# --- An older netlab's, made by tests/integration/test_echo_server_upgrade.py ---
import json as _json

PROTOCOL = UNVERSIONED  # its client: a server that does not know `version` speaks its own protocol
_OLD_OPS = {ops!r}
_answer = Control.answer


def _older_answer(self, conn, data, fds):
    try:
        op = _json.loads(data or b"{{}}").get("op")
    except (ValueError, AttributeError):
        op = None
    if not data or op in _OLD_OPS:
        return _answer(self, conn, data, fds)
    for fd in fds:
        os.close(fd)
    conn.settimeout(REQUEST_WAIT)
    conn.sendall(f"? unknown request {{str(op)[:40]!r}}\\nOK\\n".encode())


Control.answer = _older_answer
'''
NO_HEALTH = '''

# --- A netlab before kube-proxy's health checks: it asks none (tests/integration/test_echo_server_upgrade.py) ---
def start(lab, rec):
    return StartResult()
'''
BEFORE_HEALTH = {"add", "remove", "hold", "exits", "hello"}  # netlab d304b75e
UNNUMBERED = BEFORE_HEALTH | {"health", "health?"}  # netlab 9416a045


def older_netlab(where, ops: set[str]) -> str:
    """A venv whose netlab is this one's copy, made an older netlab's; its python."""
    copy = where / "src"
    shutil.copytree(os.path.dirname(netlab.__file__), copy / "netlab", ignore=shutil.ignore_patterns("__pycache__"))
    with open(copy / "netlab" / "workload" / "echocontrol.py", "a") as f:
        f.write(OLDER_CONTROL.format(ops=sorted(ops)))
    if "health" not in ops:
        with open(copy / "netlab" / "workload" / "health.py", "a") as f:
            f.write(NO_HEALTH)
    venv = where / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # The copy first, then where this interpreter finds netlab's dependencies (the copy is found before any netlab)
    paths = [str(copy), sysconfig.get_paths()["purelib"], *[p for p in sys.path if p.endswith("-packages")]]
    with open(os.path.join(site, "older-netlab.pth"), "w") as f:
        f.write("".join(p + "\n" for p in dict.fromkeys(paths)))
    return python


TOPO = """\
name: {name}
nodes: [{{name: n1}}, {{name: n2}}]
internet:
  hosts: [{{name: client, ip: 203.0.113.50}}]
pods:
  - {{name: web, node: n1, hostname: web-host}}
  - {{name: job, node: n2, restartPolicy: Never, containers: [{{name: main, command: ["true"]}}]}}
  - {{name: cmd, node: n2, containers: [{{name: main, command: ["sleep", "600"]}}]}}
"""


def curl(netns: str, url: str) -> subprocess.CompletedProcess:
    return in_netns(netns, "curl", "-s", "-m", "3", url, timeout=10)


def listener(netns: str, port: int) -> set[int]:
    """The pids of the processes listening on TCP ``port`` in ``netns`` (ss -p)."""
    out = in_netns(netns, "ss", "-Hltnp", f"sport = :{port}", check=True).stdout
    return {int(p) for p in re.findall(r"pid=(\d+)", out)}


def restarts(name: str) -> dict[str, int]:
    """Each pod's RESTARTS, as `get pods` says it."""
    got = json.loads(run_netlab("get", "pods", "--lab", name, "-o", "json").stdout)
    return {item["name"]: item["restarts"] for item in got["items"]}


@pytest.mark.parametrize("ops", [BEFORE_HEALTH, UNNUMBERED], ids=["before-health-checks", "unnumbered"])
def test_status_names_an_older_netlabs_echo_server_and_up_replaces_it(tmp_path, ops):
    name = unique_lab("ev")
    path = write_topology(tmp_path, TOPO.format(name=name))
    older = older_netlab(tmp_path / "older", ops)
    try:
        up = subprocess.run([older, "-m", "netlab", "up", "-t", path], capture_output=True, text=True, timeout=300)
        assert up.returncode == 0, up.stdout + up.stderr
        old = launch.server_pid(name)
        assert old is not None and proc.cmdline(old)[:4] == [older, "-I", "-m", "netlab.workload.echoserver"]
        web = ipv4_of(f"{name}-web", "eth0")
        nodes = {n: ipv4_of(f"{name}-{n}", "eth0") for n in ("n1", "n2")}
        answer = curl(f"{name}-n1", f"http://{web}:8080/")
        assert answer.returncode == 0 and json.loads(answer.stdout)["pod"] == "web", answer
        health = [curl(f"{name}-client", f"http://{ip}:10256/healthz").returncode for ip in nodes.values()]
        assert health == ([0, 0] if "health" in ops else [7, 7])  # refused: the older netlab served none
        before = restarts(name)
        log = os.path.join(STATE_ROOT, name, "logs", "web.main.log")
        with open(log) as f:
            logged = f.read()

        status = run_netlab("status", "--lab", name, check=False)
        assert status.returncode == 1
        said = [line for line in status.stdout.splitlines() if "echo server" in line or "kube-proxy" in line]
        assert len(said) == 1 and f"the lab's echo server (pid {old}) was started by an older netlab (control " \
            f"protocol 1; this netlab's is {PROTOCOL})" in said[0] and f"`{netlab_command('up')}" in said[0] and \
            "replaces it" in said[0], status.stdout

        up = run_netlab("up", "-t", path)
        assert f"replaced the lab's echo server of an older netlab (pid {old}, control protocol 1) with this " \
            f"netlab's (pid {launch.server_pid(name)}, protocol {PROTOCOL}), serving on its 1 echo container" \
            in up.stdout, up.stdout
        new = launch.server_pid(name)
        assert new not in (None, old) and not proc.running(old)
        assert launch.protocol(name) == PROTOCOL
        assert proc.cmdline(new)[:4] == [sys.executable, "-I", "-m", "netlab.workload.echoserver"]

        # Real traffic: the pod's port and kube-proxy's health server on every node, served by the new server.
        answer = curl(f"{name}-n1", f"http://{web}:8080/")
        assert answer.returncode == 0 and json.loads(answer.stdout)["pod"] == "web", answer
        for node, ip in nodes.items():
            got = curl(f"{name}-client", f"http://{ip}:10256/healthz")
            assert got.returncode == 0 and json.loads(got.stdout)["nodeEligible"] is True, got
            assert listener(f"{name}-{node}", 10256) == {new}
        assert listener(f"{name}-web", 8080) == {new}
        # What users see, as before: the pod's hostname, its restarts, its log (one line says why it goes on).
        assert run_netlab("exec", "--lab", name, "web", "--", "hostname").stdout.strip() == "web-host"
        assert restarts(name) == before == {"web": 0, "job": 0, "cmd": 0}
        with open(log) as f:
            now = f.read()
        assert now.startswith(logged) and f"echo: the lab's echo server (pid {old}), an older netlab's, was replaced " \
            "by this netlab's: served on\necho server for pod web listening on 8080/TCP, 8080/UDP\n" in now
        # The completed Never container is still told completed (its exit handed over): status is clean.
        status = run_netlab("status", "--lab", name, check=False)
        assert status.returncode == 0, status.stdout
        again = run_netlab("up", "-t", path)
        assert "replaced" not in again.stdout and launch.server_pid(name) == new
        # The running command container's pidfd is the new server's: how it exits is told.
        cmd = json.loads(run_netlab("get", "pods", "cmd", "--lab", name, "-o", "json").stdout)["items"][0]
        os.kill(cmd["containers"][0]["pid"], signal.SIGKILL)
        assert wait_for(lambda: "containers: pod cmd container main exited with code 137" in
                        run_netlab("status", "--lab", name, check=False).stdout, timeout=10)
    finally:
        lab_down(name)
