"""A container's log file deleted or replaced while it runs, on a real lab (root).

The container's stdout is a descriptor of the old file (an echo container's: of the lab's echo server), so no
`up` can give the running container a new log: `logs` says so in one line (exit 3), with where the output goes on
(/proc/PID/fd/N), `status` finds the lab as planned and `up` changes nothing, as the line says. The container's
next start writes a new log. Before, `logs` said `up` would start the container again with a new one (exit 2), and
`up` did nothing."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess

import pytest

from helpers import ip, ip_json, netlab, wait_for
from netlab.workload.containers import log_path

pytestmark = pytest.mark.root

TICKS = "while :; do echo tick; sleep 0.2; done"


def held(stderr: str) -> str:
    """The /proc/PID/fd/N the line names: where the running container's output goes on."""
    found = re.search(r"readable as (/proc/\d+/fd/\d+) while it runs", stderr)
    assert found, stderr
    return found.group(1)


def test_a_log_deleted_or_replaced_while_its_container_runs_is_said_as_it_is(labs):
    lab = labs.name("lgd")
    path, _ = labs.up(f"name: {lab}\nnetwork: {{mode: host-gw}}\nnodes: [{{name: n1}}, {{name: n2}}]\n"
                      "pods:\n  - {name: a, node: n1, ip: 10.244.0.2}\n"
                      f"  - {{name: b, node: n2, ip: 10.244.1.2, containers: [{{name: main, command: [sh, -c, "
                      f"'{TICKS}']}}]}}\n")
    echo_log = log_path(lab, "a", "main")
    os.unlink(echo_log)
    proc = netlab("logs", "--lab", lab, "a", check=False)
    assert proc.returncode == 3 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith(f"netlab: the log of a/main, {echo_log}, was deleted while the container runs: "
                                  "it writes on to the deleted file, readable as /proc/"), proc.stderr
    assert proc.stderr.endswith("its next start writes a new log (`up` does not restart a running container)\n")
    # Real traffic across the nodes: the echo container logs it in the deleted file, where the line said.
    got = subprocess.run(["ip", "netns", "exec", f"{lab}-b", "curl", "-s", "-m", "5", "http://10.244.0.2:8080/"],
                         capture_output=True, text=True, timeout=20)
    assert json.loads(got.stdout)["pod"] == "a", got
    assert wait_for(lambda: "http 10.244.1.2:" in open(held(proc.stderr)).read(), timeout=5)
    # Consistent: the lab is as planned, and up (which does not restart a running container) changes nothing.
    assert netlab("status", "--lab", lab, check=False).returncode == 0
    up = netlab("up", "-t", path)
    assert "nothing to change" in up.stdout + up.stderr, up.stdout + up.stderr
    assert not os.path.exists(echo_log)

    # A command container's log replaced by a FIFO: the same line, never a wait on the FIFO.
    cmd_log = log_path(lab, "b", "main")
    os.unlink(cmd_log)
    os.mkfifo(cmd_log)
    proc = netlab("logs", "--lab", lab, "b", check=False, timeout=30)
    assert proc.returncode == 3 and proc.stderr.count("\n") == 1, proc.stderr
    assert f"the log of b/main, {cmd_log}, was replaced while the container runs" in proc.stderr, proc.stderr
    where = held(proc.stderr)
    assert "tick" in open(where).read()
    # The container killed, `up` would start it again (restartPolicy Always), but the FIFO at its log's name is
    # not netlab's file: left as it is, the start refused in one line; moved away, the next start writes a new
    # log, which `logs` reads.
    os.kill(int(where.split("/")[2]), signal.SIGKILL)
    assert netlab("status", "--lab", lab, check=False).returncode == 1
    refused = netlab("up", "-t", path, check=False)
    assert refused.returncode == 1 and (f"netlab: pod b container main: could not start: its log {cmd_log} is a "
                                        "FIFO, not a file: netlab leaves it as it is") in refused.stderr, refused
    assert stat.S_ISFIFO(os.lstat(cmd_log).st_mode)
    os.unlink(cmd_log)
    netlab("up", "-t", path)
    assert wait_for(lambda: "tick" in netlab("logs", "--lab", lab, "b", check=False).stdout, timeout=10)
    assert netlab("status", "--lab", lab, check=False).returncode == 0
    # The kernel's view is the lab's throughout: every namespace there, b's address on its eth0.
    assert {f"{lab}-a", f"{lab}-b"} <= set(ip("netns", "list").stdout.split())
    (eth0,) = ip_json("addr", "show", "dev", "eth0", netns=f"{lab}-b")
    assert [a["local"] for a in eth0["addr_info"] if a["family"] == "inet"] == ["10.244.1.2"]
