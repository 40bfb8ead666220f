"""How command containers exited, told after the `up` that started them has gone (workload/exits.py).

A plain `up` leaves its command containers to init; the lab's echo server
holds a pidfd of each (a lab of command containers only gets a server for
this), and on Linux 6.15 and later the kernel keeps each exit status with the
pidfd. `get pods` says Completed or Error with the code, as kubectl does,
`status` names the code, and a watcher started later restarts an OnFailure
container only if it failed (test_watch.py). Checked against the kernel's own
view: the server process holds one pidfd per container (`/proc/<pid>/fd`),
each naming the container's pid until init reaped it (`fdinfo`).
"""

from __future__ import annotations

import json
import os
import re

import pytest

from helpers import netlab, wait_for
from netlab.kernel import pidfd
from netlab.kernel.processes import running

pytestmark = pytest.mark.skipif(not pidfd.exit_info_supported(),
                                reason="this kernel keeps no exit status with a pidfd (Linux < 6.15)")


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
    path, proc = labs.up(f"""name: {lab}
nodes:
  - name: n1
pods:
  - name: done
    node: n1
    restartPolicy: Never
    containers:
      - {{name: main, command: ["true"]}}
  - name: fails
    node: n1
    restartPolicy: Never
    containers:
      - {{name: main, command: [sh, -c, "exit 3"]}}
      - {{name: side, command: [sleep, infinity]}}
""")
    assert "could not start" not in proc.stdout + proc.stderr  # `true` is done at once, not a failed start
    # init reaps them when it gets to it; the kernel keeps the status from then on.
    assert wait_for(lambda: all(c.get("exit_code") is not None for key, c in containers(lab).items()
                                if key != "fails/side"), 10), containers(lab)
    got = containers(lab)
    assert (got["done/main"]["state"], got["done/main"]["exit_code"]) == ("exited", 0)
    assert (got["fails/main"]["state"], got["fails/main"]["exit_code"]) == ("exited", 3)
    assert (got["fails/side"]["state"], got["fails/side"]["exit_code"]) == ("running", None)
    side = got["fails/side"]["pid"]
    # The kernel's view: a lab of command containers has an echo server, holding a pidfd of each.
    assert held_pids(server_of(lab)) == sorted([-1, -1, side])
    table = netlab("get", "pods", "--lab", lab, "-o", "wide").stdout
    rows = {line.split()[0]: line for line in table.splitlines()[1:]}
    assert rows["done"].split()[2] == "Completed" and "main:exited(0)" in rows["done"], table
    assert "error, running" in rows["fails"] and "main:exited(3) side:running" in rows["fails"], table
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 1
    assert f"pod done container main completed (exit code 0, pid {got['done/main']['pid']})" in status.stdout
    assert f"pod fails container main exited with code 3 (pid {got['fails/main']['pid']})" in status.stdout
    # up starts them again, saying how they had exited; the server holds the new ones in place of the old.
    up = netlab("up", "-t", path)
    assert "restarted container fails/main (it had exited with code 3)" in up.stdout, up.stdout
    assert "restarted container done/main (it had exited with code 0)" in up.stdout, up.stdout
    again = containers(lab)
    assert again["fails/main"]["pid"] != got["fails/main"]["pid"]
    assert wait_for(lambda: [(c := containers(lab))["fails/main"].get("exit_code"),
                             c["done/main"].get("exit_code")] == [3, 0], 10), containers(lab)
    assert len(held_pids(server_of(lab))) == 3
    table = netlab("get", "pods", "--lab", lab).stdout.splitlines()
    rows = {cells[0]: cells for cells in (re.split(r"\s{2,}", line.strip()) for line in table[1:])}
    assert (rows["done"][2:4], rows["fails"][2:4]) == (["Completed", "1"], ["error, running", "1"]), rows
    server = server_of(lab)
    netlab("down", "--lab", lab)
    assert wait_for(lambda: not running(server) and not running(side), 10), "down left the server or a container"
