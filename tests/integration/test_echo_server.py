"""netlab's echo server in real pods (root): how it is launched, what it answers, and its running state."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys

import pytest

from helpers import in_netns, netlab, two_node_topology, wait_for, write_topology
from netlab.errors import netlab_command
from netlab.kernel.processes import proc_state

pytestmark = pytest.mark.root

LAUNCHES = 40  # a 1-in-6 race survives 40 launches with probability (5/6)**40 < 0.1 %


def test_every_launched_echo_server_is_recorded(labs, tmp_path):
    """The launcher (echo.py --spawn) and its children report on one pipe; up must learn every child's pid.

    A child that listened and said so before its launcher had written the child's pid was once
    left unrecorded (the reader stopped at the last "ready" and closed the pipe, the launcher died
    of a broken pipe): `up` reported a failure, and every later `up` met "Address already in use".
    """
    from netlab.kernel import kill, processes
    from netlab.kernel import netns as nsmod
    from netlab.workload import launch, lifecycle

    lab = labs.name("ec")
    labs.up(two_node_topology(lab, pods_per_node=1))
    netns = f"{lab}-fedora-1"
    failures = []
    for i in range(LAUNCHES):
        # Four containers per launch, as `up` launches every new pod's echo server at once: the
        # last child's "ready" and the launcher's last pid report are the two that race.
        names = [f"race{i}x{k}" for k in range(4)]
        specs = [{"id": f"fedora-1/{c}", "pod": "fedora-1", "netns": netns, "netns_path": nsmod.netns_path(netns),
                  "uts": None, "log": str(tmp_path / f"{c}.log"), "ports": [[9100 + k, "TCP"]],
                  "env": {"PATH": lifecycle.CONTAINER_PATH}} for k, c in enumerate(names)]
        pods = {"fedora-1": {"containers": {c: {} for c in names}}}
        problems = launch.await_echo(launch.launch_echo(specs), specs, pods)
        recs = pods["fedora-1"]["containers"]
        started = [processes.ProcId(r["pid"], r["start"]) for r in recs.values() if "pid" in r]
        if problems or len(started) != len(names) or not all(processes.alive(p) for p in started):
            failures.append((i, problems, recs))
        # Stop them (the recorded ones; the lab's down stops any other), so the next launch can listen.
        kill.terminate([p.pid for p in started],
                       lambda pid: any(p.pid == pid and processes.alive(p) for p in started))
        if failures:
            break
    assert not failures, failures


def _records(lab: str) -> dict:
    from netlab.realize.state_dir import STATE_ROOT

    with open(os.path.join(STATE_ROOT, lab, "state.json")) as fh:
        return json.load(fh)["extra"]["workload"]["pods"]


def _tcp_echo(lab: str, src: str, dst: str, port: int = 8080) -> str:
    """The first line a TCP client in SRC reads from DST:PORT (empty on failure)."""
    code = ("import socket\n"
            f"s = socket.create_connection(({dst!r}, {port}), timeout=2)\n"
            "print(s.makefile().readline().strip())\n")
    return in_netns(f"{lab}-{src}", sys.executable, "-c", code).stdout.strip()


def test_a_stopped_container_is_drift_and_up_restarts_it(labs):
    """A SIGSTOPped process still exists, but serves nothing: the lab's containers are not running as planned."""
    lab = labs.name("ec")
    path, _ = labs.up(two_node_topology(lab, pods_per_node=1) + """  - name: duo
    node: minikube
    ip: 10.244.0.9
    containers:
      - name: web
      - name: idle
        command: [sleep, infinity]
""")
    assert '"pod": "duo"' in _tcp_echo(lab, "fedora-2", "10.244.0.9")
    before = {c: r["pid"] for c, r in _records(lab)["duo"]["containers"].items()}
    for pid in before.values():
        os.kill(pid, signal.SIGSTOP)
    for pid in before.values():
        assert wait_for(lambda: proc_state(pid) == "T")
    assert _tcp_echo(lab, "fedora-2", "10.244.0.9") == ""  # connects (the kernel accepts), no reply

    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 1, status.stdout
    for c in ("web", "idle"):
        assert f"pod duo container {c} is stopped" in status.stdout, status.stdout

    up = netlab("up", "-t", path)
    assert "nothing to change" not in up.stdout, up.stdout  # it did something, and says what
    for c in ("web", "idle"):
        assert f"restarted container duo/{c} (it was stopped)" in up.stdout, up.stdout
    after = {c: r["pid"] for c, r in _records(lab)["duo"]["containers"].items()}
    for c, pid in before.items():
        assert after[c] != pid
        assert wait_for(lambda: proc_state(pid) is None)  # the stopped one is gone, not left behind
    assert netlab("status", "--lab", lab, check=False).returncode == 0
    assert '"pod": "duo"' in _tcp_echo(lab, "fedora-2", "10.244.0.9")


def test_status_t_of_another_file_names_the_up_of_that_file_in_every_line(labs, tmp_path):
    """`status -t OTHER` of a running lab: its last line said `up -t OTHER --reconfigure`, its containers and
    kube-proxy health-check lines `up -t` the lab's own file, which puts back the lab the user means to replace."""
    lab = labs.name("ec")
    duo = """  - name: duo
    node: minikube
    ip: 10.244.0.9
    labels: {app: duo}
    containers:
      - name: web
      - name: idle
        command: [sleep, infinity]
"""
    labs.up(two_node_topology(lab, pods_per_node=1) + duo)
    # The other file: a pod more, and a LoadBalancer whose health check kube-proxy (the echo server) serves.
    other = write_topology(tmp_path, two_node_topology(lab, pods_per_node=2) + duo + """services:
  - name: duo
    type: LoadBalancer
    externalTrafficPolicy: Local
    healthCheckNodePort: 30998
    selector: {app: duo}
    ports: [{port: 80, targetPort: 8080}]
internet: {hosts: [{name: client, ip: 203.0.113.50}]}
""", "other file.yaml")
    idle = _records(lab)["duo"]["containers"]["idle"]["pid"]
    os.kill(idle, signal.SIGSTOP)
    assert wait_for(lambda: proc_state(idle) == "T")
    status = netlab("status", "-t", other, check=False)
    assert status.returncode == 1, status.stdout
    repair = netlab_command(f"up -t {shlex.quote(other)} --reconfigure")
    lines = status.stdout.splitlines()
    assert f"  containers: pod duo container idle is stopped (pid {idle}, by SIGSTOP or SIGTSTP); `{repair}` " \
        "restarts it" in lines, status.stdout
    assert "  kube-proxy: health check of Service default/duo on node minikube (port 30998/TCP) is not served; " \
        f"`{repair}` serves it" in lines, status.stdout
    assert lines[-1] == f"run `{repair}` to apply it"
    assert not [line for line in lines if "netlab up" in line and repair not in line], status.stdout
    os.kill(idle, signal.SIGCONT)


def _udp_echo(lab: str, src: str, dst: str, port: int) -> dict | None:
    """Send one datagram from SRC to DST:PORT; the echo server's JSON reply plus the sender's local address."""
    code = ("import json, socket\n"
            "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            "s.settimeout(2)\n"
            f"s.connect(({dst!r}, {port}))\n"
            "s.send(b'hello')\n"
            "try:\n"
            "    print(json.dumps([s.getsockname(), s.recv(500).decode()]))\n"
            "except OSError as exc:\n"
            "    print(json.dumps(None))\n")
    out = json.loads(in_netns(f"{lab}-{src}", sys.executable, "-c", code).stdout)
    if out is None:
        return None
    local, reply = out
    return dict(json.loads(reply), local=f"{local[0]}:{local[1]}")


def _raw(netns: str, *argv: str) -> subprocess.CompletedProcess:
    """A command in a lab namespace, its output as bytes (HTTP's CRLFs intact)."""
    return subprocess.run(["ip", "netns", "exec", netns, *argv], capture_output=True, timeout=20)


ECHO_PODS = """  - name: duo
    node: minikube
    ip: 10.244.0.9
    containers:
      - name: a
        ports: [{containerPort: 9000}]
      - name: b
        ports: [{containerPort: 9000, protocol: UDP}, {containerPort: 9053, protocol: UDP}]
"""


def test_echo_answers_udp_on_its_tcp_ports_and_http_requests(labs):
    lab = labs.name("ec")
    labs.up(two_node_topology(lab, pods_per_node=1) + ECHO_PODS)
    assert netlab("status", "--lab", lab, check=False).returncode == 0  # a and b both listen: no port clash

    # The default container (8080/TCP) answers UDP on 8080 too, from the address the datagram was sent to.
    r = _udp_echo(lab, "fedora-2", "10.244.0.2", 8080)
    assert r is not None and r["pod"] == "fedora-1"
    assert r["client"] == r["local"] and r["client"].startswith("10.244.1.3:") and r["server"] == "10.244.0.2:8080"

    # curl gets a real HTTP/1.1 response whose body is the same JSON line.
    curl = _raw(f"{lab}-fedora-2", "curl", "-sS", "-i", "--max-time", "5", "http://10.244.0.2:8080/any/path")
    assert curl.returncode == 0, curl.stderr
    head, _, body = curl.stdout.decode().partition("\r\n\r\n")
    lines = head.split("\r\n")
    assert lines[0] == "HTTP/1.1 200 OK", curl.stdout
    headers = dict(line.split(": ", 1) for line in lines[1:])
    assert headers["Content-Type"] == "application/json" and int(headers["Content-Length"]) == len(body.encode())
    reply = json.loads(body)
    assert reply["pod"] == "fedora-1" and reply["client"].startswith("10.244.1.3:")
    assert reply["server"] == "10.244.0.2:8080"
    head_only = _raw(f"{lab}-fedora-2", "curl", "-sS", "-I", "--max-time", "5", "http://10.244.0.2:8080/")
    assert head_only.returncode == 0 and head_only.stdout.startswith(b"HTTP/1.1 200 OK\r\n"), head_only
    assert b"\r\nContent-Length: " in head_only.stdout and head_only.stdout.endswith(b"\r\n\r\n")  # no body

    # A client that sends nothing (nc, socat) still gets the JSON line.
    silent = in_netns(f"{lab}-fedora-2", "socat", "-T", "5", "-u", "TCP:10.244.0.2:8080,connect-timeout=5", "-")
    assert json.loads(silent.stdout)["pod"] == "fedora-1", silent

    # Declared UDP ports are UDP only; a TCP port's UDP twin is left to the container that declares it.
    assert _tcp_echo(lab, "fedora-1", "10.244.0.9", 9000) != ""
    assert _udp_echo(lab, "fedora-1", "10.244.0.9", 9000)["pod"] == "duo"
    assert _udp_echo(lab, "fedora-1", "10.244.0.9", 9053)["pod"] == "duo"
    refused = in_netns(f"{lab}-fedora-1", "socat", "-u", "TCP:10.244.0.9:9053,connect-timeout=2", "-")
    assert refused.returncode != 0 and "Connection refused" in refused.stderr
    logs = {c: netlab("logs", "--lab", lab, "duo", "-c", c).stdout for c in ("a", "b")}
    assert "listening on 9000/TCP" in logs["a"] and "9000/UDP" not in logs["a"]
    assert "listening on 9000/UDP, 9053/UDP" in logs["b"]
    assert "8080/TCP, 8080/UDP" in netlab("logs", "--lab", lab, "fedora-1").stdout

    # The probes still check the pod name and the client address as seen, over every port.
    proc = netlab("probe", "--lab", lab, check=False)
    assert proc.returncode == 0, proc.stdout
