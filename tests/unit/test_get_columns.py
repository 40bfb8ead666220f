"""``netlab get pods``' words for a pod, as kubectl's: STATUS, RESTARTS, AGE (cli/get.py)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from types import MappingProxyType

import pytest

from netlab.api.results import ContainerInfo, PodInfo
from netlab.api.jsonio import from_json, to_json
from netlab.cli.get import _container_column, age

CREATED = "2026-12-01T11:00:00Z"
T0 = datetime(2026, 12, 1, 11, 0, 0, tzinfo=timezone.utc).timestamp()
H, D = 3600, 86400


@pytest.mark.parametrize("seconds, said", [
    (-5, "<invalid>"), (-1, "0s"), (0, "0s"), (119, "119s"), (120, "2m"), (125, "2m5s"), (599, "9m59s"),
    (600, "10m"), (10799, "179m"), (3 * H, "3h"), (3 * H + 7 * 60 + 30, "3h7m"), (8 * H, "8h"),
    (47 * H + 59 * 60, "47h"), (48 * H, "2d"), (49 * H, "2d1h"), (8 * D, "8d"), (729 * D, "729d"),
    (730 * D, "2y"), (735 * D, "2y5d"), (8 * 365 * D + 3 * D, "8y"),
])
def test_age_is_worded_as_kubectl_words_it(seconds, said):
    # apimachinery's HumanDuration: seconds below 2 minutes, then minutes (and seconds below 10), hours
    # (and minutes below 8), days (and hours below 8 days), years (and days below 8 years).
    assert age(CREATED, T0 + seconds) == said
    assert age(None, T0) == "<unknown>"


# What kubectl get pods' STATUS says: the pod phases and the kubelet's container reasons netlab has states for.
KUBECTL_WORDS = {"Running", "Completed", "Error", "NotReady", "StartError", "ContainerCreating",
                 "ContainerStatusUnknown", "SandboxChanged", "CrashLoopBackOff", "RunContainerError"}


def container(state: str, code: int | None = None, restarts: int = 0, waiting: bool = False) -> ContainerInfo:
    """``waiting``: `up --watch` holds it back (CrashLoopBackOff), as views.pods says it from the watcher's record."""
    held = {"waiting_reason": "CrashLoopBackOff", "back_off_until": "2026-12-01T11:00:20.000Z",
            "waiting_message": "back-off 20s restarting failed container=c pod=p_default"} if waiting else {}
    return ContainerInfo(name="c", state=state, pid=1, command=("x",), ports=(), exit_code=code, restarts=restarts,
                         **held)


def pod(*containers: ContainerInfo) -> PodInfo:
    return PodInfo(name="p", node="n", ip="10.0.0.2", netns="l-p", mac="aa:bb:cc:dd:ee:ff",
                   labels=MappingProxyType({}), containers=containers, created=CREATED)


@pytest.mark.parametrize("states, status", [
    # kubectl's printer: the reason of the first container that does not run, else Running. It said the
    # states there were, in netlab's words: "error, running", "exited, running", "failed, error", "stopped".
    ([("running", None)], "Running"),
    ([("exited", 0), ("exited", 0)], "Completed"),
    ([("exited", 0), ("exited", 3)], "Error"),
    ([("exited", 137)], "Error"),
    ([("exited", 3), ("running", None)], "Error"),
    ([("running", None), ("exited", 3)], "Error"),
    ([("exited", 0), ("running", None)], "NotReady"),  # a Job's main container done, its sidecar running
    ([("exited", None)], "ContainerStatusUnknown"),  # an echo container, or a kernel that keeps no exit status
    ([("exited", None), ("running", None)], "ContainerStatusUnknown"),
    ([("failed", None), ("exited", 3)], "StartError"),  # `bad: [/nonexistent]` beside `ok: exit 3`, Never
    ([("exited", 3), ("failed", None)], "Error"),  # the first in the pod's order, as kubectl shows it
    ([("exited", 0), ("failed", None)], "StartError"),  # a failure before a Completed one
    ([("not started", None)], "ContainerCreating"),
    ([("stopped", None)], "Running"),  # SIGSTOP: the kubelet sees a process; READY 0/1, CONTAINERS main:stopped
    # Held back by the watcher's back-off: the kubelet's waiting reason, whatever the exit said
    ([("exited", 3, True)], "CrashLoopBackOff"),
    ([("exited", None, True)], "CrashLoopBackOff"),
    ([("failed", None, True)], "CrashLoopBackOff"),  # the kubelet backs off a container that cannot start, too
    ([("exited", 0), ("exited", 3, True)], "CrashLoopBackOff"),
    ([("running", None), ("exited", 1, True)], "CrashLoopBackOff"),
    ([("exited", 1, True), ("exited", 2)], "CrashLoopBackOff"),  # the first in the pod's order
    ([("exited", 2), ("exited", 1, True)], "Error"),
    ([("running", None, True)], "Running"),  # restarted meanwhile (by a plain up): it runs, whatever was recorded
])
def test_a_pods_status_is_kubectls_where_it_applies(states, status):
    p = pod(*(container(s[0], s[1], waiting=s[2:] == (True,)) for s in states))
    assert p.status == status
    assert status in KUBECTL_WORDS
    # -o json says it too, with READY and RESTARTS (it had none of the three), and reads back as the same pod
    data = to_json(p)
    assert (data["status"], data["ready"], data["restarts"]) == (status, p.ready, p.restarts)
    assert from_json(PodInfo, data) == p


def test_restarts_add_up_and_an_exit_code_shows_in_the_wide_column():
    p = pod(container("exited", 3, restarts=2), container("running", restarts=1))
    assert p.restarts == 3
    assert [_container_column(c) for c in p.containers] == ["c:exited(3)", "c:running"]


@pytest.mark.parametrize("states", [[("running", None)], [("exited", 0)], [("exited", 3), ("running", None)]])
def test_a_pod_whose_network_namespace_was_deleted_is_sandbox_changed(states):
    # Its containers run on in the old namespace (or had exited): they say so; the pod says its sandbox is gone.
    p = pod(*(container(s, c) for s, c in states))
    gone = dataclasses.replace(p, netns_gone=True)
    assert gone.status == "SandboxChanged"
    assert [_container_column(c) for c in gone.containers] == [_container_column(c) for c in p.containers]
    # no container of a pod whose sandbox is gone is ready (the kubelet's SandboxChanged: not ready until it is made
    # again), as a pod with no network from its CNI plugins is 0/N; READY counted the ones running on in the old one
    assert gone.ready == f"0/{len(states)}"
    data = to_json(gone)
    assert (data["status"], data["ready"]) == ("SandboxChanged", f"0/{len(states)}")


START_ERROR = "/nonexistent/x: command not found (PATH=/usr/bin:/bin)"


@pytest.mark.parametrize("policy, reason, status", [
    ("Always", "RunContainerError", "RunContainerError"),  # the kubelet's reasonCache: waiting, the next sync retries
    ("OnFailure", "RunContainerError", "RunContainerError"),  # a start that failed is a failure
    ("Never", None, "StartError"),  # terminated for good: containerd's StartError, no waiting state
])
def test_a_container_that_could_not_start_says_why_in_json(policy, reason, status):
    """QA q51 4: a failed start had waiting_reason and waiting_message null in -o json, its reason only on up's
    stderr and in its log. Now start_error holds it for any policy, and a restartable one waits as the kubelet's."""
    from netlab.api.results_views import waiting_of

    wait_reason, wait_message = waiting_of(policy, START_ERROR)
    c = dataclasses.replace(container("failed"), waiting_reason=wait_reason, waiting_message=wait_message,
                            start_error=START_ERROR)
    p = pod(c)
    assert (p.status, wait_reason) == (status, reason)
    data = to_json(p)["containers"][0]
    assert data["start_error"] == START_ERROR
    assert (data["waiting_reason"], data["waiting_message"]) == (reason, START_ERROR if reason else None)
    assert from_json(PodInfo, to_json(p)) == p
    assert waiting_of(policy, None) == (None, None)  # a container that started waits for nothing
