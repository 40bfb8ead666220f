"""A command container is recorded before it starts, by an id in its environment, and the next `up` takes over
one that an `up` killed (SIGKILL) before it saved started (workload/unrecorded.py, lifecycle.start), without root.

QA q2 defect 1: the killed run's `sleep` and dnsmasq ran on unrecorded; every later `up` started a second copy,
and the cluster DNS's second dnsmasq exited with "Address already in use" on each.
"""

from __future__ import annotations

import json
import os

import pytest

from netlab.errors import netlab_command
from netlab.kernel import processes as proc
from netlab.kernel import spawning
from netlab.model.lab import resolve
from netlab.model.load import parse_yaml, validate_source
from netlab.realize import state_dir
from netlab.realize.state import LabState
from netlab.workload import drift, lifecycle, policy, unrecorded
from netlab.workload.containers import log_path
from workload_host import stub_host

LAB = "kcu"
ARGV = ["sleep", "99991"]
TOKEN = "ab" * 16


def lab_of(policy: str = "Always"):
    text = (f"name: {LAB}\nnodes: [{{name: n1}}]\npods:\n  - name: c\n    node: n1\n    restartPolicy: {policy}\n"
            "    containers: [{name: main, command: [sleep, '99991']}]\n")
    return resolve(validate_source(parse_yaml(text, "t.yaml")))


class Procs:
    """The processes of the fake host: pid -> (start time, parent, environment entries, in the pod)."""

    def __init__(self) -> None:
        self.table: dict[int, tuple[int, int, set[bytes], bool]] = {}

    def add(self, pid: int, start: int, parent: int, env: set[bytes], in_pod: bool = True) -> None:
        self.table[pid] = (start, parent, env, in_pod)


@pytest.fixture
def host(monkeypatch, tmp_path):
    """lifecycle.start with every call to the host stubbed; its processes are ``Procs``; starting a command
    records the call (argv, env and the state file on disk at that moment)."""
    stub_host(monkeypatch, tmp_path)
    procs = Procs()
    monkeypatch.setattr(proc, "find_in_namespaces",
                        lambda names, uts=(): {pid: names[0] for pid, p in procs.table.items() if p[3]})
    monkeypatch.setattr(proc, "environ_has", lambda pid, entry: entry in procs.table.get(pid, (0, 0, set()))[2])
    monkeypatch.setattr(proc, "start_time", lambda pid: procs.table[pid][0] if pid in procs.table else None)
    monkeypatch.setattr(proc, "parent", lambda pid: procs.table[pid][1] if pid in procs.table else None)
    monkeypatch.setattr(proc, "running", lambda pid: pid in procs.table)
    monkeypatch.setattr(proc, "task_state", lambda p: "S" if procs.table.get(p.pid, (None,))[0] == p.start else None)
    monkeypatch.setattr(proc, "ns_identity", lambda path: (1, 1))
    calls: list[dict] = []

    def spawn(argv, *, env, **kw):
        path = os.path.join(state_dir.lab_dir(LAB), "state.json")
        on_disk = json.load(open(path)) if os.path.exists(path) else None
        calls.append({"argv": argv, "env": env, "state": on_disk})
        return proc.ProcId(4242, 7), None

    monkeypatch.setattr(spawning, "spawn", spawn)
    return procs, calls


def container_lines(state: LabState, policy: str = "Always") -> list[str]:
    """status's lines of the container (the fake host has no UTS namespace nor node to say anything of)."""
    return [line for line in drift.lines(lab_of(policy), state.extra["workload"]["pods"], "netlab up")
            if "container main" in line]


def written_ahead(restarts: int = 0) -> LabState:
    """The state an `up` killed after it started the container saved: the record written ahead, no pid."""
    state = LabState(lab=LAB)
    state_dir.lab_dir(LAB)
    os.makedirs(os.path.dirname(log_path(LAB, "c", "main")), exist_ok=True)
    state.extra["workload"] = {"version": 1, "pods": {"c": {"netns": f"{LAB}-c", "uts": "/x", "created": 1.0,
                                                           "containers": {"main": {
                                                               "argv": ARGV, "log": log_path(LAB, "c", "main"),
                                                               "restarts": restarts, "id": TOKEN}}}}}
    return state


def test_a_container_is_recorded_with_its_id_before_it_starts(host):
    _procs, calls = host
    state = LabState(lab=LAB)
    lifecycle.start(lab_of(), state)
    assert len(calls) == 1
    token = calls[0]["env"][unrecorded.ENV]
    assert len(token) == 32
    crec = calls[0]["state"]["extra"]["workload"]["pods"]["c"]["containers"]["main"]  # on disk as it starts
    assert crec["id"] == token and crec["argv"] == ARGV and "pid" not in crec and crec["log_at"] == 0
    saved = state.extra["workload"]["pods"]["c"]["containers"]["main"]
    assert (saved["pid"], saved["start"], saved["id"]) == (4242, 7, token)


def test_the_next_up_takes_over_the_container_a_killed_up_started_and_starts_no_second(host):
    procs, calls = host
    procs.add(500, 90, 1, {f"{unrecorded.ENV}={TOKEN}".encode()})  # the killed run's sleep, re-parented to init
    procs.add(501, 95, 500, {f"{unrecorded.ENV}={TOKEN}".encode()})  # a child it forked: same id, not the container
    procs.add(502, 80, 1, {f"{unrecorded.ENV}={'cd' * 16}".encode()})  # another run's id: not this one
    procs.add(503, 70, 1, {b"PATH=/bin"})  # a process in the pod with no id (a user's `netlab exec`): not it
    state = written_ahead()
    assert container_lines(state) == [
        "containers: pod c container main runs (pid 500) unrecorded: the `up` that started it ended before it "
        "recorded it; `netlab up` takes it over"]
    done = lifecycle.start(lab_of(), state)
    assert calls == []  # no second copy
    crec = state.extra["workload"]["pods"]["c"]["containers"]["main"]
    assert (crec["pid"], crec["start"]) == (500, 90)
    assert any("took over container c/main (pid 500)" in a for a in done.actions)
    assert container_lines(state) == []


def test_a_container_that_never_ran_is_started_as_a_new_one(host):
    procs, calls = host
    procs.add(502, 80, 1, {f"{unrecorded.ENV}={'cd' * 16}".encode()})
    state = written_ahead()
    assert container_lines(state) == [
        "containers: pod c container main was never started (an `up` ended as it started it); `netlab up` starts it"]
    done = lifecycle.start(lab_of(), state)
    assert [c["argv"] for c in calls] == [ARGV]
    assert "started container c/main" in done.actions
    assert state.extra["workload"]["pods"]["c"]["containers"]["main"]["restarts"] == 0


def test_the_dnsmasq_a_killed_start_was_to_replace_is_stopped(host, monkeypatch):
    procs, _calls = host
    stopped = []
    monkeypatch.setattr(unrecorded, "stop_container", lambda lab, cid, crec, netns, uts: stopped.append(crec))
    procs.add(500, 90, 1, {f"{unrecorded.ENV}={TOKEN}".encode()})
    state = written_ahead(restarts=1)
    state.extra["workload"]["pods"]["c"]["containers"]["main"]["replaces"] = [400, 60]
    state.extra["workload"]["pods"]["c"]["containers"]["main"]["last_exit_code"] = 0
    lifecycle.start(lab_of(), state)
    assert stopped == [{"pid": 400, "start": 60}]
    crec = state.extra["workload"]["pods"]["c"]["containers"]["main"]
    assert "replaces" not in crec and crec["pid"] == 500


def test_a_record_written_ahead_is_a_valid_state_and_a_bad_id_is_not():
    from pydantic import ValidationError

    from netlab.realize.state_schema import WorkloadRecord

    record = {"version": 1, "pods": {"c": {"netns": f"{LAB}-c", "uts": "/x", "containers": {"main": {
        "argv": ARGV, "log": "/x/c.main.log", "restarts": 0, "id": TOKEN, "replaces": [400, 60]}}}}}
    WorkloadRecord.model_validate(record)
    for bad in ("x" * 32, TOKEN[:-1], 7):
        record["pods"]["c"]["containers"]["main"]["id"] = bad
        with pytest.raises(ValidationError):
            WorkloadRecord.model_validate(record)


def test_an_echo_containers_record_without_a_thread_is_a_container_never_started(host):
    """An echo container's record written ahead (no id: its server is found by its control socket) and no thread
    recorded: status and up said it had exited (pid None) and up counted a restart of a run that never was."""
    state = written_ahead()
    crec = state.extra["workload"]["pods"]["c"]["containers"]["main"]
    del crec["id"]
    assert container_lines(state) == [
        "containers: pod c container main was never started (an `up` ended as it started it); `netlab up` starts it"]
    crec["restarts"] = 1  # a restart's: nothing tells whether it ran (QA q11 3: "exited (pid None)")
    assert container_lines(state) == [
        "containers: pod c container main may never have started: an `up` ended as it started it and its log is "
        "empty, so netlab cannot tell whether it ran; `netlab up` starts it"]


def _log(text: str) -> None:
    with open(log_path(LAB, "c", "main"), "w") as f:
        f.write(text)


def _state_of(state: LabState) -> str:
    from netlab.api.views import _container_state

    crec = state.extra["workload"]["pods"]["c"]["containers"]["main"]
    return _container_state(crec, f"{LAB}-c", "/x", log_path(LAB, "c", "main"))[0]


def ran_line() -> str:
    """The line, its logs command naming the test's state folder (set once its fixtures ran: errors.netlab_command)."""
    return ("containers: pod c container main exited (pid and exit code unknown: the `up` that started it ended "
            f"before it recorded it; its log shows it ran); see `{netlab_command('logs --lab kcu c -c main')}`")


def test_a_restart_killed_as_it_started_that_ran_is_said_exited_by_status_and_get_pods_alike(host):
    """QA q11 3: an `up` killed as it restarted a container that ran (`echo run; exit 3`): status said "exited (pid
    None)" and get pods "not started". Its log shows it ran: both say it exited, its pid and code unknown."""
    _procs, calls = host
    state = written_ahead(restarts=1)
    state.extra["workload"]["pods"]["c"]["containers"]["main"].update(last_exit_code=3, log_at=0)
    _log("run\n")
    assert container_lines(state) == [ran_line()]
    assert _state_of(state) == "exited"
    done = lifecycle.start(lab_of(), state)  # restartPolicy Always: started again, as any exited container
    assert [c["argv"] for c in calls] == [ARGV]
    assert any("c/main had run and exited (its log shows it)" in a for a in done.actions), done.actions
    assert "restarted container c/main (it had exited)" in done.actions
    assert state.extra["workload"]["pods"]["c"]["containers"]["main"]["restarts"] == 2


def test_a_never_pods_first_run_that_ran_is_not_run_again(host):
    """QA q11 4: an `up` killed as it started a restartPolicy Never container that ran (its log shows it): status
    said it "was never started" and the next `up` ran it a second time. It ran: exited, exit code unknown, and a
    Never pod's exited container is left so."""
    _procs, calls = host
    state = written_ahead()
    state.extra["workload"]["pods"]["c"]["containers"]["main"]["log_at"] = 4  # the log held a line of an older run
    _log("old\nran\n")
    line = (f"{ran_line()}; restartPolicy Never: `netlab up` leaves it exited (completed or failed: its exit code is "
            "unknown)")
    assert container_lines(state, "Never") == [line]
    # not said to have failed (closing44 Left): why up leaves it, and what to do, as its exit is unknown
    why = policy.up_leaves(line)
    assert why is not None and "failed stays" not in why and why.startswith(
        "a Never pod's container whose exit code is unknown stays exited: its log tells whether it did its work"), why
    assert _state_of(state) == "exited"
    lifecycle.start(lab_of("Never"), state)
    assert calls == []  # not run twice
    crec = state.extra["workload"]["pods"]["c"]["containers"]["main"]
    assert crec["ran"] is True and crec.get("pid") is None
    assert container_lines(state, "Never") == [line]
    assert _state_of(state) == "exited"


@pytest.mark.parametrize("log, words", [
    ("old\n", "may never have started: an `up` ended as it started it and its log is empty, so netlab cannot tell "
              "whether it ran"),  # nothing written after log_at: it may have run without a word
    ("old\nnetlab: could not start: x: command not found\n", "was never started (an `up` ended as it started it)"),
])
def test_a_first_run_whose_log_does_not_show_it_ran_is_said_so_and_started(host, log, words):
    _procs, calls = host
    state = written_ahead()
    state.extra["workload"]["pods"]["c"]["containers"]["main"]["log_at"] = 4
    _log(log)
    assert container_lines(state, "Never") == [f"containers: pod c container main {words}; `netlab up` starts it"]
    assert _state_of(state) == "not started"
    lifecycle.start(lab_of("Never"), state)
    assert [c["argv"] for c in calls] == [ARGV]  # as the kubelet starts a container in state Created or Unknown
