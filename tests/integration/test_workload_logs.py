"""Containers' logs (issue 3): `netlab logs -f` as it follows a container's log, and the lab's server that starts
a log over past the kubelet's containerLogMaxSize (10 MiB). Each case has a lab of its own, always taken down."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time

import pytest

from helpers import in_netns, netlab, read_log, wait_for
from netlab.workload.containers import log_path
from watching import container_pid, running

pytestmark = pytest.mark.root

PY = sys.executable  # an absolute interpreter the containers can exec


def test_logs_follow_prints_lines_as_they_come_and_ends_when_the_pod_goes(labs, tmp_path):
    """`netlab logs -f` prints a container's lines as it writes them, and ends (exit 0) once `down` removed the
    log, as `kubectl logs -f` ends when its pod is deleted; it used to wait on an unlinked file forever."""
    lab = labs.name("lf")
    labs.up(f"""name: {lab}
nodes: [{{name: n1}}]
pods:
  - name: tick
    node: n1
    containers:
      - {{name: c, command: ["sh", "-c", "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.1; done"]}}
""")
    assert wait_for(lambda: netlab("logs", "--lab", lab, "tick", "--tail", "2").stdout.count("\n") == 2)
    whole = netlab("logs", "--lab", lab, "tick").stdout
    assert netlab("logs", "--lab", lab, "tick", "--tail", "-1").stdout.startswith(whole)  # kubectl's -1: all
    follow = subprocess.Popen([sys.executable, "-m", "netlab", "logs", "--lab", lab, "tick", "-f"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        got = b""
        deadline = time.monotonic() + 10
        while got.count(b"\n") < 12 and time.monotonic() < deadline:  # more than were written when it began
            if select.select([follow.stdout], [], [], 0.5)[0]:
                got += os.read(follow.stdout.fileno(), 4096)
        ticks = [int(line.split()[1]) for line in got.decode().splitlines()]
        assert len(ticks) >= 12 and ticks == list(range(1, len(ticks) + 1)), got
        netlab("down", "--lab", lab)
        assert follow.wait(timeout=10) == 0, follow.stderr.read()
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()
        follow.stdout.close()
        follow.stderr.close()


def test_logs_follow_goes_on_when_the_log_starts_over(labs):
    """The echo server starts a log over at the kubelet's containerLogMaxSize (10 MiB: tests/unit/test_echo_loop.py);
    `netlab logs -f` then follows the new lines from the start of the file, where it waited past the old end
    for lines that came in unseen. The start-over is made here by truncating the real log as the server does."""
    lab = labs.name("lf")
    labs.up(f"name: {lab}\nnodes: [{{name: n1}}]\npods: [{{name: web, node: n1}}]\n")
    path = log_path(lab, "web", "main")

    def hit(tag: str) -> None:  # one connection to the echo server, from the node: one log line, naming the port
        in_netns(f"{lab}-n1", "curl", "-s", "-m", "5", "-o", "/dev/null", "--local-port", tag,
                 "http://10.244.0.2:8080/", check=True)

    hit("40001")
    assert wait_for(lambda: ":40001 -> " in open(path).read())
    follow = subprocess.Popen([sys.executable, "-m", "netlab", "logs", "--lab", lab, "web", "-f"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        got = b""

        def read_until(text: bytes) -> bool:
            nonlocal got
            deadline = time.monotonic() + 10
            while text not in got and time.monotonic() < deadline:
                if select.select([follow.stdout], [], [], 0.5)[0]:
                    got += os.read(follow.stdout.fileno(), 4096)
            return text in got

        assert read_until(b":40001 -> "), got
        os.truncate(path, 0)  # what the server does at its limit (its fd is O_APPEND: it writes at the start)
        hit("40002")
        assert wait_for(lambda: open(path).read().count(":40002 -> ") == 1)  # the file holds the new line only
        assert read_until(b":40002 -> "), got
    finally:
        follow.kill()
        follow.wait()
        follow.stdout.close()
        follow.stderr.close()


def test_a_command_containers_log_starts_over_past_10_mib_and_it_writes_on(labs):
    """A command container writes its own log (dnsmasq logs every query the probes ask): the lab's server,
    which holds its pidfd, starts it over past 10 MiB within its 10 s round, as the kubelet rotates at
    containerLogMaxSize, with its newest 1 MiB (QA q51 1: it was emptied, the newest lines with it); the
    container's next lines follow. It grew without end in /run (memory)."""
    lab = labs.name("wl")
    chatty = ("import sys, time\nfor _ in range(11 * 1024):\n    sys.stdout.write('x' * 1023 + '\\n')\n"
              "sys.stdout.flush()\n"
              "while True:\n    time.sleep(0.2)\n    print('still here', flush=True)\n")
    labs.up(f"name: {lab}\nnodes: [{{name: n1}}]\npods:\n  - name: chatty\n    node: n1\n    containers:\n"
            f"      - name: main\n        command: [{json.dumps(PY)}, \"-c\", {json.dumps(chatty)}]\n")
    path = log_path(lab, "chatty", "main")
    pid = container_pid(lab, "chatty")
    # 11 MiB in well under a second, then a line every 0.2 s: within one 10 s round it is over the limit
    assert wait_for(lambda: "reached 10 MiB and starts over" in read_log(path)[:200], 15), os.path.getsize(path)
    assert wait_for(lambda: read_log(path).endswith("still here\n"), 5)
    lines = read_log(path).splitlines()
    assert lines[0].rstrip().endswith("netlab: this log reached 10 MiB and starts over with its newest 1 MiB, as the "
                             "kubelet rotates a container's log at containerLogMaxSize"), lines[:2]
    assert lines[1] == "x" * 1023 and lines[-1] == "still here", lines[1:2]  # its newest lines, then the next ones
    assert 2**20 - 1024 < len(read_log(path)) < 2**20 + 2**16  # bounded (on tmpfs, after a hole)
    assert container_pid(lab, "chatty") == pid  # the same process, writing on


def test_a_crashed_containers_log_past_10_mib_keeps_its_last_line(labs, tmp_path):
    """QA q51 1: a container that wrote 11 MB, then its "FATAL" line, and exited: the lab's server emptied its
    log in its next 10 s round, the line that says why it died with it. The kubelet rotates only a running
    container's log: an exited one's stays as it was. A second pod's log, which passes 10 MiB once the first
    has exited, shows that a round went by."""
    lab = labs.name("wl")
    go = tmp_path / "go"
    crash = ("import sys\nfor i in range(110000): print('request', i, 'ok', 'x' * 90)\n"
             "print('FATAL: database connection lost', flush=True)\nsys.exit(1)\n")
    chatty = (f"import os, sys, time\nwhile not os.path.exists({str(go)!r}): time.sleep(0.05)\n"
              "for _ in range(11 * 1024): sys.stdout.write('y' * 1023 + '\\n')\n"
              "sys.stdout.flush()\ntime.sleep(3600)\n")
    labs.up(f"name: {lab}\nnodes: [{{name: n1}}]\npods:\n"
            f"  - name: app\n    node: n1\n    restartPolicy: Never\n    containers:\n"
            f"      - name: main\n        command: [{json.dumps(PY)}, \"-c\", {json.dumps(crash)}]\n"
            f"  - name: chatty\n    node: n1\n    containers:\n"
            f"      - name: main\n        command: [{json.dumps(PY)}, \"-c\", {json.dumps(chatty)}]\n")
    path, other = log_path(lab, "app", "main"), log_path(lab, "chatty", "main")
    pid = container_pid(lab, "app")
    assert wait_for(lambda: not running(pid), 20)
    size = os.path.getsize(path)
    assert size > 10 * 2**20
    go.touch()
    assert wait_for(lambda: "reached 10 MiB and starts over" in read_log(other)[:200], 25), os.path.getsize(other)
    assert os.path.getsize(path) == size  # left as it was
    shown = netlab("logs", "--lab", lab, "app", "--tail", "2").stdout.splitlines()
    assert shown == ["request 109999 ok " + "x" * 90, "FATAL: database connection lost"], shown
