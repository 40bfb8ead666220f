"""`netlab quiz answer` on a lab the student mended by hand (QA): the route the quiz took away added again with
`ip route add ... metric 7`, not the plan's (status: the plan's missing, that one extra), so the lab is not as
planned but packets cross it. The answer said "right" and showed that delivered trace as "the trace that shows it".
It is judged by the name against the quiz's fault, says the trace no longer shows it (the quiz's change is still in
place: the packet went around it) and how to see it, and repairs: `ip -j route` holds the plan's route again,
without the hand-made one."""

from __future__ import annotations

import json
import subprocess

import pytest

from helpers import as_planned_here, netlab, two_node_topology
from netlab.breaks import quiz

pytestmark = pytest.mark.root

SCENARIO = "pod-cidr-route-missing"


def test_a_quiz_answered_after_a_hand_repair_shows_no_delivered_trace_as_its_proof(labs):
    from netlab.api.topology import load

    name = labs.name("qh")
    path = labs.up_here(two_node_topology(name, pods_per_node=1), f"{name}.yaml")
    seed = next(n for n in range(500) if quiz.pick(load(path).lab, n).name == SCENARIO)
    netlab("quiz", "--lab", name, "--seed", str(seed))
    opened = quiz.load(name)
    assert opened is not None and opened["scenario"] == SCENARIO
    node = f"{name}-{opened['target']}"
    peer = "10.244.1.0/24" if opened["target"] == "minikube" else "10.244.0.0/24"
    gateway = peer.replace("/24", "")
    subprocess.run(["ip", "-n", node, "route", "add", peer, "via", gateway, "dev", "flannel.1", "onlink", "metric",
                    "7"], check=True)
    assert not as_planned_here(name)
    assert netlab("trace", "--lab", name, "fedora-1", "fedora-2", check=False).returncode == 0  # delivered

    got = netlab("quiz", "--lab", name, "answer", SCENARIO, check=False)
    assert got.returncode == 0, got
    assert got.stdout.startswith("right ("), got.stdout
    assert "the trace that shows it" not in got.stdout and "delivered to" not in got.stdout, got.stdout
    assert (f"the trace no longer shows it: lab {name} was not as planned before this answer (2 differences from its "
            "plan; ") in got.stdout, got.stdout
    # the plan's route is still gone (the quiz's change in place, read before the repair): the student's route
    # took the packet around it
    assert "delivers the packet and its reply: the quiz's change is still in the kernel, but the packet went around " \
        "it (by a change made since); to see it: " in got.stdout, got.stdout
    assert f"repaired: lab {name} is up again" in got.stdout, got.stdout
    assert quiz.load(name) is None and as_planned_here(name)
    routes = json.loads(subprocess.run(["ip", "-j", "-n", node, "route", "show", peer], check=True,
                                       capture_output=True, text=True).stdout)
    assert [(r.get("gateway"), r.get("metric")) for r in routes] == [(gateway, None)], routes
