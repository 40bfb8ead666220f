"""The watcher's restarts without root: restartPolicy, and the kubelet's back-off counted from each exit."""

from __future__ import annotations

import pytest

from netlab.api.watch import Watcher
from netlab.lab.restart import Backoff
from netlab.model.lab import resolve
from netlab.model.load import parse_yaml, validate_source
from netlab.workload.policy import should_restart
from netlab.workload.tasks import COMMAND_CHANGED, EXITED, SANDBOX_REMADE


@pytest.mark.parametrize("policy,code,restart", [
    ("Always", 0, True), ("Always", 1, True), ("Always", None, True),
    ("OnFailure", 0, False), ("OnFailure", 2, True), ("OnFailure", 137, True),
    ("OnFailure", None, True),  # nobody saw the status (not the watcher's child): treated as a failure
    ("Never", 1, False), ("Never", None, False),
])
def test_restart_policy(policy, code, restart):
    assert should_restart(policy, code) is restart


@pytest.mark.parametrize("policy,held", [("Always", None), ("OnFailure", None), ("Never", "restartPolicy Never")])
def test_a_dead_sandbox_has_its_containers_started_again_unless_its_pod_never_restarts(policy, held):
    """As the kubelet's computePodActions: a pod whose sandbox changed is killed, and started again in a new
    sandbox unless its restartPolicy is Never (a running container is not a succeeded one for OnFailure)."""
    text = f"name: w\nnodes: [{{name: a}}]\npods:\n  - {{name: p, node: a, restartPolicy: {policy}}}\n"
    pod = resolve(validate_source(parse_yaml(text, "t.yaml"))).pods[0]
    watcher = Watcher(None, "w", log=lambda line: None)
    assert watcher.hold(pod, pod.containers[0], {"pid": 1, "start": 1}, SANDBOX_REMADE) == held


def test_a_changed_command_starts_its_own_back_off():
    """The kubelet's back-off is keyed by the pod and the container's spec: a container whose command changed (a
    new pod's) is started at once, and its first exit restarts it at once, whatever the old command's loop."""
    text = "name: w\nnodes: [{name: a}]\npods:\n  - {name: p, node: a, containers: [{name: c, command: [x]}]}\n"
    pod = resolve(validate_source(parse_yaml(text, "t.yaml"))).pods[0]
    watcher = Watcher(None, "w", log=lambda line: None)
    now = [100.0]
    watcher.clock = lambda: now[0]
    watcher.restarts.restarted("p/c", 0.0)
    for t in (10.0, 30.0, 70.0):
        watcher.restarts.restarted("p/c", t)  # in a crash loop: 80 s to wait after the last restart
    gone = {"pid": 0, "start": 0}
    assert watcher.hold(pod, pod.containers[0], gone, EXITED).startswith("back-off")
    assert watcher.hold(pod, pod.containers[0], gone, COMMAND_CHANGED) is None
    assert watcher.hold(pod, pod.containers[0], gone, EXITED) is None  # the new command's first exit: at once


def test_backoff_is_the_kubelets():
    """doBackOff: IsInBackOffSince(key, FinishedAt) is Since(FinishedAt) < backoff, then Next doubles it."""
    b = Backoff(base=10, cap=300)
    assert b.wait("p/c", 0, exited=0) == 0  # the first exit restarts it at once
    b.restarted("p/c", 0, exited=0)
    assert b.wait("p/c", 1, exited=1) == 10  # exited again a second later: 10 s from that exit
    assert b.wait("p/c", 4, exited=1) == 7
    t = 11.0
    delays = []
    for _ in range(7):
        assert b.wait("p/c", t, exited=t - b.delay("p/c")) == 0
        b.restarted("p/c", t, exited=t - b.delay("p/c"))
        delays.append(b.delay("p/c"))
        t += b.delay("p/c")
    assert delays == [20, 40, 80, 160, 300, 300, 300]  # doubling, capped at 5 minutes
    assert b.wait("other", t, exited=t) == 0  # per container
    b.restarted("p/c", t, exited=t)
    late = t + 601  # ran 10 minutes (twice the cap) since its last restart before it exited: it starts over
    assert b.wait("p/c", late, exited=late) == 0
    b.restarted("p/c", late, exited=late)
    assert b.delay("p/c") == 10


def test_backoff_counts_from_the_exit_not_from_the_last_restart():
    """QA qw 2: a container that ran longer than its delay waits the whole delay from its exit, as the kubelet's
    FinishedAt; before, it was restarted at once (the delay had passed since its last restart)."""
    b = Backoff(base=2, cap=300)
    b.restarted("p/c", 0, exited=0)  # the first exit: at once
    assert b.wait("p/c", 3, exited=3) == 2  # ran 3 s, longer than the 2 s delay: still 2 s from its exit
    assert b.wait("p/c", 4.5, exited=3) == 0.5
    b.restarted("p/c", 5, exited=3)
    assert b.wait("p/c", 6, exited=6) == 4  # exited 1 s after: the next delay, 4 s, whole from that exit
    assert b.wait("p/c", 599, exited=599) == 4  # ran under 10 minutes: its back-off holds
    assert b.wait("p/c", 606, exited=606) == 0  # ran over twice the cap (600 s) since its restart: expired
    b.restarted("p/c", 606, exited=606)
    assert b.delay("p/c") == 2


def test_the_watcher_counts_the_back_off_from_when_it_saw_the_exit():
    """A watched container's exit time is when its pidfd said so (or, unseen, when the watcher first asked of that
    run, kept): the wait shrinks as the clock runs, and ends."""
    text = "name: w\nnodes: [{name: a}]\npods:\n  - {name: p, node: a, containers: [{name: c, command: [x]}]}\n"
    pod = resolve(validate_source(parse_yaml(text, "t.yaml"))).pods[0]
    watcher = Watcher(None, "w", log=lambda line: None, backoff_base=2)
    now = [100.0]
    watcher.clock = lambda: now[0]
    run = {"pid": 0, "start": 0}
    watcher.kids.exit_codes["p/c"] = (0, 0), 1  # its status is known: ask no echo server
    assert watcher.hold(pod, pod.containers[0], run, EXITED) is None  # the first exit: at once
    now[0] = 105.0  # ran 5 s, then exited: seen now
    run = {"pid": 1, "start": 1}
    watcher.kids.exit_codes["p/c"] = (1, 1), 1
    assert watcher.hold(pod, pod.containers[0], run, EXITED) == "back-off 2.0s"
    now[0] = 106.5
    assert watcher.hold(pod, pod.containers[0], run, EXITED) == "back-off 0.5s"
    now[0] = 107.0
    assert watcher.hold(pod, pod.containers[0], run, EXITED) is None
    assert watcher.restarts.delay("p/c") == 4
