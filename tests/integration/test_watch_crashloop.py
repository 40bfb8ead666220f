"""CrashLoopBackOff: while `netlab up --watch` holds a container back by the kubelet's back-off, `get pods` says so
(STATUS CrashLoopBackOff; in -o json the container's waiting reason and when the back-off ends), as kubectl does,
and `status` names the wait; once the watcher stops, or the lab goes down, nothing says it any more.

A real one-node lab whose container exits 3 at once (restartPolicy Always), watched with a back-off of 1 s
(then 2 s, 4 s ...). Each case has a lab of its own, always taken down.
"""

from __future__ import annotations

import json
import os
import re
import time
from datetime import datetime

import pytest

from helpers import lab_namespaces, netlab, state_path, unique_lab, write_topology
from watching import wait_until, watching
from netlab.errors import netlab_command

pytestmark = pytest.mark.root


def crashing(name: str) -> str:
    return f"""\
name: {name}
nodes:
  - name: node-1
pods:
  - name: crash
    node: node-1
    containers:
      - name: main
        command: [sh, -c, "exit 3"]
"""


def crash_pod(name: str) -> dict:
    items = json.loads(netlab("get", "pods", "--lab", name, "-o", "json").stdout)["items"]
    return next(p for p in items if p["name"] == "crash")


def held_back(name: str) -> dict:
    """The pod once `get pods` says CrashLoopBackOff (the container exited again within its back-off)."""
    seen: dict = {}

    def check() -> bool:
        seen.update(crash_pod(name))
        return seen["status"] == "CrashLoopBackOff"

    wait_until(check, 10.0, step=0.05)
    return seen


def test_get_pods_says_crash_loop_back_off_while_the_watcher_holds_a_container_back(tmp_path):
    name = unique_lab("hc")
    path = write_topology(tmp_path, crashing(name))
    record = state_path(name, "backoff.json")
    with watching(name) as start:
        watcher = start(path, backoff="1", resync="5")
        pod = held_back(name)
        c = pod["containers"][0]
        assert (c["state"], c["waiting_reason"], pod["ready"]) == ("exited", "CrashLoopBackOff", "0/1"), pod
        assert pod["restarts"] > 0 and c["restarts"] == pod["restarts"], pod
        assert c["waiting_message"].startswith("back-off ") and \
            c["waiting_message"].endswith(" restarting failed container=main pod=crash_default"), c
        ends = datetime.fromisoformat(c["back_off_until"].replace("Z", "+00:00")).timestamp()
        assert time.time() - 1 < ends < time.time() + 8, c  # within the back-off: 1 s, 2 s, 4 s
        # The table's STATUS too (read until it catches a back-off: the first may have ended meanwhile)
        wait_until(lambda: next(line for line in netlab("get", "pods", "--lab", name).stdout.splitlines()
                                if line.startswith("crash ")).split()[2] == "CrashLoopBackOff", 10.0, step=0.05)
        # status: the container's line names the wait and who restarts it, and offers `up` for now, not only
        said: list = []
        wait_until(lambda: said.append(netlab("status", "--lab", name, check=False)) or
                   "CrashLoopBackOff (back-off " in said[-1].stdout, 10.0, step=0.05)
        res = said[-1]
        assert res.returncode == 1
        line = next(x for x in res.stdout.splitlines() if "pod crash container main exited" in x)
        m = re.search(r"; CrashLoopBackOff \(back-off [124]s\): `netlab up --watch` \(pid (\d+)\) restarts it in "
                      r"\d+\.\ds$", line)
        assert m and int(m.group(1)) == watcher.proc.pid, res.stdout
        assert res.stdout.splitlines()[-1].startswith(
            "`netlab up --watch` restarts that container when its back-off ends (CrashLoopBackOff); "
            f"`{netlab_command('up')}"), \
            res.stdout
        # The watcher stops: nobody restarts it now, and nothing says it is waiting for that
        assert watcher.stop() == 0
        pod = crash_pod(name)
        assert pod["status"] != "CrashLoopBackOff" and pod["containers"][0]["waiting_reason"] is None, pod
        assert pod["containers"][0]["back_off_until"] is None and pod["restarts"] > 0, pod
        assert not os.path.exists(record)
        assert "CrashLoopBackOff" not in netlab("status", "--lab", name, check=False).stdout


def test_down_of_a_watched_lab_leaves_no_back_off_behind(tmp_path):
    name = unique_lab("hc")
    path = write_topology(tmp_path, crashing(name))
    with watching(name) as start:
        watcher = start(path, backoff="1", resync="5")
        held_back(name)
        netlab("down", "--lab", name)
        assert not os.path.exists(state_path(name)), os.listdir(state_path(name))
        assert lab_namespaces(name) == []
        watcher.wait_for_line(f"stopped watching lab {name}: it is down")
        assert not os.path.exists(state_path(name))
