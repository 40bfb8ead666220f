"""QA q51 2: what a container started (a shell's background server) ends with the container's run, as the kernel
kills every process of a container's PID namespace when its first one exits; it lived on, held the port, and the
container `up` started again failed (Address already in use) while the orphan answered. Each case has a lab of its
own, always taken down."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers import netlab, wait_for
from netlab.kernel import processes
from netlab.workload.containers import log_path
from watching import container_pid, running

pytestmark = pytest.mark.root

PY = sys.executable  # an absolute interpreter the containers can exec


def servers(netns: str) -> list[int]:
    """The http.server processes in a pod's network namespace (`ip netns pids`)."""
    pids = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True).stdout.split()
    return [int(p) for p in pids if "http.server" in processes.cmdline(int(p))]


def test_a_restarted_containers_background_child_of_the_run_before_is_gone(labs):
    """`sh -c "server & sleep; exit 1"`: the server of the run before is stopped when `up` starts the container
    again, so the new run's server binds the port; no process of the run before is left in the pod."""
    lab = labs.name("wl")
    script = f"{PY} -m http.server 9200 --bind 127.0.0.1 & sleep 1; echo main exits; exit 1"
    labs.up(f"name: {lab}\nnodes: [{{name: n1}}]\npods:\n  - name: srv\n    node: n1\n    containers:\n"
            f"      - name: main\n        command: [sh, -c, {json.dumps(script)}]\n")
    netns, path = f"{lab}-srv", log_path(lab, "srv", "main")
    first = container_pid(lab, "srv")
    assert wait_for(lambda: not running(first) and "main exits" in open(path).read(), 20)
    before = servers(netns)
    netlab("up", "--lab", lab)
    second = container_pid(lab, "srv")
    assert second != first
    assert not [p for p in before if running(p)], before  # the run before's server went with it
    assert wait_for(lambda: "main exits" in open(path).read(), 20)
    text = open(path).read()
    assert "Address already in use" not in text, text
    assert wait_for(lambda: not running(second), 20)


def test_an_exited_containers_background_child_goes_with_it(labs):
    """restartPolicy Never: nothing starts the container again, and its background server went on answering
    from a pod that says Error; the lab's server, which holds the container's pidfd, kills what is left of its
    run once it exits (within its 2 s round). A process of another pod's container, started alike, runs on."""
    lab = labs.name("wl")
    script = f"{PY} -m http.server 9200 --bind 127.0.0.1 & sleep 1; echo main exits; exit 1"
    stays = f"{PY} -m http.server 9200 --bind 127.0.0.1 & sleep 3600"
    labs.up(f"name: {lab}\nnodes: [{{name: n1}}]\npods:\n"
            f"  - name: srv\n    node: n1\n    restartPolicy: Never\n    containers:\n"
            f"      - name: main\n        command: [sh, -c, {json.dumps(script)}]\n"
            f"  - name: other\n    node: n1\n    containers:\n"
            f"      - name: main\n        command: [sh, -c, {json.dumps(stays)}]\n")
    first = container_pid(lab, "srv")
    assert wait_for(lambda: bool(servers(f"{lab}-other")), 20)
    kept = servers(f"{lab}-other")
    assert wait_for(lambda: not running(first), 20)
    assert wait_for(lambda: not servers(f"{lab}-srv"), 10), servers(f"{lab}-srv")
    assert all(running(p) for p in kept) and running(container_pid(lab, "other"))
    rows = netlab("get", "pods", "--lab", lab, "srv").stdout
    assert "Error" in rows, rows
