"""`netlab up --watch` beside `netlab break endpoint-pod-down`, run as a user runs them (QA qw 1).

The break stops an echo container (the lab's echo server stops serving it: its thread leaves the pod and
ends). The watcher learned of that only at its next periodic check, up to `--resync` seconds late, and its
line did not name the break. Each echo container now has a pidfd of its own thread, readable when it ends,
and the watcher names a command that held the lab's lock since its last look. With `--resync 60` only that
prompt path can restart it within the test's bound.
"""

from __future__ import annotations

import json

import pytest

from helpers import in_netns, netlab, unique_lab, write_topology
from watching import container_pid, running, wait_until, watching

pytestmark = pytest.mark.root


def topology(name: str) -> str:
    return f"""\
name: {name}
nodes:
  - name: n1
pods:
  - name: web
    node: n1
    labels: {{app: web}}
  - name: client
    node: n1
    containers:
      - name: main
        command: [sleep, infinity]
services:
  - name: web
    selector: {{app: web}}
    ports: [{{port: 80, targetPort: 8080}}]
"""


def serves(netns: str, ip: str) -> bool:
    """A TCP connection to the pod's echo port is accepted (real traffic, from the client pod)."""
    code = ("import socket, sys\ns = socket.socket()\ns.settimeout(2)\n"
            f"sys.exit(s.connect_ex(({ip!r}, 8080)))")
    return in_netns(netns, "python3", "-c", code).returncode == 0


def test_a_break_that_stops_an_echo_container_is_seen_at_once_and_named(tmp_path):
    name = unique_lab("wt")
    path = write_topology(tmp_path, topology(name))
    with watching(name) as start:
        watcher = start(path, resync="60")  # the periodic check cannot explain a restart within the bound below
        pods = json.loads(netlab("get", "pods", "--lab", name, "-o", "json").stdout)
        ip = next(p["ip"] for p in pods["items"] if p["name"] == "web")
        client = f"{name}-client"
        assert serves(client, ip)
        old = container_pid(name, "web")
        assert running(old)
        mark = len(watcher.lines)
        broke = netlab("break", "endpoint-pod-down", "--lab", name, "--target", "web")
        assert "stopped container web/main" in broke.stdout, broke.stdout
        # Broken, and warned that the watcher puts it back at once (quiz refuses such a lab): its pid, how to stop it.
        pid = watcher.proc.pid
        assert (f"warning: lab {name} is kept by pid {pid} (netlab up --watch): it will repair this fault within a "
                "second, so probe and trace will not show it; to study the fault, stop the watcher first (Ctrl-C in "
                f"its terminal, or sudo kill -INT {pid}), then break again") in broke.stderr, broke.stderr
        wait_until(lambda: container_pid(name, "web") != old and running(container_pid(name, "web")), 30.0)
        line = watcher.wait_for_line("did: restarted container web/main", after=mark)
        before = watcher.lines[mark:watcher.lines.index(line, mark)]
        assert before == [], before  # nothing said between the break and its repair
        saw, _, did = line.partition("; did: ")
        assert " saw: pid " in saw and "(netlab break endpoint-pod-down) changed the lab" in saw, line
        assert "container web/main exited (exit 143)" in saw, line  # its exit, as the echo server tells it
        assert "periodic check" not in line, line
        assert did.startswith("restarted container web/main"), line
        assert serves(client, ip)
        assert container_pid(name, "web") != old
