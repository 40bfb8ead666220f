"""Orphans of a watched lab's containers: `netlab up --watch` is their subreaper (the containerd shim's part), so a
container's child left running when it exits becomes the watcher's child; once it ends (killed with its run at the
restart) the watcher reaps it while it runs, not only as it goes: no zombies pile up under a long-running watcher
of a crash-looping container, and the containers' own exit statuses (reaped by their pidfds) stay right.

A real one-node lab whose container leaves `sleep 1000` behind and exits 1 a second later (restartPolicy Always),
watched with a back-off of 1 s; always taken down.
"""

from __future__ import annotations

import json
import os

import pytest

from helpers import netlab, unique_lab, write_topology
from netlab.kernel import processes
from watching import wait_until, watching

pytestmark = pytest.mark.root


def orphaning(name: str) -> str:
    return f"""\
name: {name}
nodes:
  - name: node-1
pods:
  - name: p
    node: node-1
    containers:
      - name: main
        command: [sh, -c, "sleep 1000 & sleep 1; exit 1"]
"""


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            out += [int(x) for x in f.read().split()]
    return out


def zombies(pid: int) -> list[int]:
    return [kid for kid in children(pid) if processes.proc_state(kid) == "Z"]


def pod(name: str) -> dict:
    items = json.loads(netlab("get", "pods", "--lab", name, "-o", "json").stdout)["items"]
    return next(p for p in items if p["name"] == "p")


def test_the_watcher_reaps_the_orphans_of_its_containers_while_it_runs(tmp_path):
    name = unique_lab("re")
    path = write_topology(tmp_path, orphaning(name))
    with watching(name) as start:
        watcher = start(path, backoff="1", resync="30")
        wait_until(lambda: pod(name)["restarts"] >= 3, 30.0, step=0.1)
        # Each restart killed the run's `sleep 1000` (the watcher's child by then): reaped at the watcher's next
        # wake (every 0.5 s at least), not left until it ends
        left: list = []
        try:
            wait_until(lambda: not left.append(zombies(watcher.proc.pid)) and not left[-1], 3.0, step=0.1)
        except AssertionError:
            raise AssertionError(f"zombies under the watcher: {left[-1]}") from None
        # The container's own exits (its process reaped by its pidfd) were not taken by that sweep
        c = pod(name)["containers"][0]
        assert c["last_exit_code"] == 1 and (c["state"] != "exited" or c["exit_code"] == 1), c
        assert not any("exit status unknown" in line for line in watcher.lines), watcher.lines
        assert sum("container p/main exited (exit 1)" in line for line in watcher.lines) >= 3, watcher.lines
        assert watcher.proc.poll() is None
