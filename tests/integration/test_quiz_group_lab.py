"""`netlab quiz --lab A answer X` on two real labs, each with a quiz open (QA q28 #1): it answers and repairs A,
whatever $NETLAB_LAB says; B stays broken, its quiz open, its routes as they were (`ip -j route`). It answered and
repaired the lab of $NETLAB_LAB (B), or with no $NETLAB_LAB refused "several labs are up", though --lab was given."""

from __future__ import annotations

import json
import os

import pytest

from helpers import netlab, state_path, two_node_topology
from netlab.breaks import quiz

pytestmark = pytest.mark.root

SCENARIO = "pod-cidr-route-missing"  # a route of a node goes: B's kernel view shows whether it was repaired


def routes(lab: str) -> dict:
    import subprocess

    namespaces = [f"{lab}-minikube", f"{lab}-minikube-m02", f"{lab}-fedora-1", f"{lab}-fedora-2"]
    return {ns: json.loads(subprocess.run(["ip", "-j", "-n", ns, "route", "show", "table", "all"], check=True,
                                          capture_output=True, text=True).stdout) for ns in namespaces}


def test_the_groups_lab_picks_the_lab_answered(labs, tmp_path):
    from netlab.api.topology import load

    a, b = labs.name("qz"), labs.name("qz")
    paths = {}
    for lab in (a, b):
        paths[lab], _ = labs.up(two_node_topology(lab, pods_per_node=1), f"{lab}.yaml")
    seed = next(n for n in range(500) if quiz.pick(load(paths[a]).lab, n).name == SCENARIO)
    for lab in (a, b):
        netlab("quiz", "--lab", lab, "--seed", str(seed))
    broken_b = routes(b)

    got = netlab("quiz", "--lab", a, "answer", SCENARIO, check=False, env={"NETLAB_LAB": b})
    assert got.returncode == 0 and got.stdout.startswith("right") and f"repaired: lab {a} is up again" in got.stdout, got
    assert not os.path.exists(state_path(a, quiz.QUIZ_FILE)) and os.path.exists(state_path(b, quiz.QUIZ_FILE))
    assert routes(b) == broken_b  # B: not repaired, not touched
    assert netlab("status", "--lab", b, check=False).returncode != 0  # still broken

    assert "NETLAB_LAB" not in os.environ
    got = netlab("quiz", "-t", paths[b], "answer", SCENARIO, check=False)  # -t before answer; two labs up
    assert got.returncode == 0 and f"repaired: lab {b} is up again" in got.stdout, got
    assert netlab("status", "--lab", b, check=False).returncode == 0
