"""A pod's identity is its namespace and name: moved to another Kubernetes namespace on a running lab it is a new
pod (a new sandbox, its containers started again, a new age), as a pod moved to another node is."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from helpers import in_netns, netlab, netns_cookie, state_path, two_node_topology, wait_for, write_topology
from netlab.kernel.processes import running

pytestmark = pytest.mark.root


def with_app(lab: str, namespace: str) -> str:
    return two_node_topology(lab, pods_per_node=1) + f"""  - name: app
    node: minikube
    namespace: {namespace}
    ip: 10.244.0.9
    containers:
      - {{name: main, command: [sleep, infinity]}}
"""


def record(lab: str) -> dict:
    with open(state_path(lab, "state.json")) as fh:
        return json.load(fh)["extra"]["workload"]["pods"]["app"]


def test_a_pod_put_in_another_namespace_is_made_anew(labs):
    """up kept the pod's sandbox (same network namespace, same processes, same age) and said only that it
    rewrote its resolv.conf."""
    lab = labs.name("pid")
    path, _ = labs.up(with_app(lab, "dev"))
    before = record(lab)
    pid, net = int(before["containers"]["main"]["pid"]), netns_cookie(f"{lab}-app")
    time.sleep(1.1)  # the new pod's creation time is a later second
    write_topology(Path(path).parent, with_app(lab, "qa"))
    out = netlab("up", "-t", path).stdout
    assert ("pod app moves from Kubernetes namespace dev to qa: made anew in a new namespace (Kubernetes makes a "
            "new pod)") in out, out
    after = record(lab)
    new_pid = int(after["containers"]["main"]["pid"])
    assert wait_for(lambda: not running(pid)), "the old pod's container still runs"
    assert new_pid != pid and running(new_pid) and after["containers"]["main"]["restarts"] == 0
    assert os.stat(f"/proc/{new_pid}/ns/net").st_ino == os.stat(f"/run/netns/{lab}-app").st_ino
    assert netns_cookie(f"{lab}-app") != net  # a new namespace (an inode number may be used again)
    assert after["created"] > before["created"] + 1
    pods = {p["name"]: p for p in json.loads(netlab("get", "pods", "--lab", lab, "-o", "json").stdout)["items"]}
    assert pods["app"]["namespace"] == "qa"
    assert netlab("status", "--lab", lab).returncode == 0
    assert in_netns(f"{lab}-fedora-1", "ping", "-c1", "-W2", "10.244.0.9").returncode == 0
    again = netlab("up", "-t", path).stdout
    assert "made anew" not in again and record(lab)["containers"]["main"]["pid"] == new_pid  # once
