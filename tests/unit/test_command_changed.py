"""A container whose command the file changed after its run exited: a new pod's container, whatever the old pod's
restartPolicy (workload/tasks.why_replace, lifecycle.start, drift.lines), without root.

In Kubernetes a pod's commands cannot change: a changed spec is a new pod (delete, create), whose containers run
their new command once, restarts 0, no run before. A Never (or OnFailure, exit 0) pod's container that had exited
was held down by `up -t FILE` under its new command, and `status -t FILE` said up would leave it exited.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from netlab.kernel import processes as proc
from netlab.kernel import spawning
from netlab.model.lab import resolve
from netlab.model.load import parse_yaml, validate_source
from netlab.realize import state_dir
from netlab.realize.state import LabState
from netlab.workload import drift, exits, lifecycle
from netlab.workload.containers import container_argv, log_path, previous_log_path
from netlab.workload.tasks import COMMAND_CHANGED, EXITED, why_replace
from workload_host import stub_host

LAB = "cc"


def lab_of(policy: str, command: str):
    text = (f"name: {LAB}\nnodes: [{{name: n1}}]\npods:\n  - name: job\n    node: n1\n    restartPolicy: {policy}\n"
            f"    containers: [{{name: main, command: {command}}}]\n")
    return resolve(validate_source(parse_yaml(text, "t.yaml")))


def gone_pid() -> int:
    """A pid whose process has exited and been reaped (no task of it in /proc)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


@pytest.fixture
def host(monkeypatch, tmp_path):
    """lifecycle.start with every call to the host stubbed: the pod's namespace is there, starting a command
    records what it would run; the lab's state and logs under tmp_path."""
    stub_host(monkeypatch, tmp_path)
    monkeypatch.setattr(exits, "exit_codes", lambda lab, records: {cid: 0 for cid in records})  # each completed
    started: list[list[str]] = []

    def spawn(argv, **kw):
        started.append(argv)
        return proc.ProcId(os.getpid(), proc.start_time(os.getpid())), None

    monkeypatch.setattr(spawning, "spawn", spawn)
    return started


def exited_state(lab, argv: list[str]) -> LabState:
    """The lab's state after its container ran ``argv`` once and exited, with a log of that run."""
    state = LabState(lab=LAB)
    state_dir.lab_dir(LAB)  # made as netlab makes it (marked)
    os.makedirs(os.path.dirname(log_path(LAB, "job", "main")), exist_ok=True)
    for path in (log_path(LAB, "job", "main"), previous_log_path(LAB, "job", "main")):
        with open(path, "w") as fh:
            fh.write("the old command's output\n")
    state.extra["workload"] = {"version": 1, "pods": {"job": {"netns": f"{LAB}-job", "created": 1.0, "containers": {
        "main": {"argv": argv, "log": log_path(LAB, "job", "main"), "restarts": 2, "pid": gone_pid(), "start": 1,
                 "last_exit_code": 1}}}}}
    return state


@pytest.mark.parametrize("policy", ["Never", "OnFailure", "Always"])
def test_an_exited_container_whose_command_changed_runs_the_new_one_once_as_a_new_pods(host, policy):
    old, new = lab_of(policy, "[sh, -c, 'exit 0']"), lab_of(policy, "[echo, hello]")
    old_argv, new_argv = (container_argv(x.pods[0], x.pods[0].containers[0]) for x in (old, new))
    state = exited_state(old, old_argv)
    crec = state.extra["workload"]["pods"]["job"]["containers"]["main"]
    assert why_replace(crec, old_argv, f"{LAB}-job") == EXITED
    assert why_replace(crec, new_argv, f"{LAB}-job") == COMMAND_CHANGED
    # status -t FILE (the new file against the running lab) says what up -t FILE does: it starts the new command.
    lines = [line for line in drift.lines(new, state.extra["workload"]["pods"], "sudo netlab up -t new.yaml")
             if "container main" in line]
    assert lines == [f"containers: pod job container main exited (pid {crec['pid']}) and its command changed; "
                     "`sudo netlab up -t new.yaml` starts the new one"], lines
    done = lifecycle.start(new, state)
    assert host == [new_argv], (host, done)
    assert "restarted container job/main (its command changed)" in done.actions, done.actions
    now = state.extra["workload"]["pods"]["job"]["containers"]["main"]
    assert now["argv"] == new_argv and now["restarts"] == 0 and "last_exit_code" not in now, now
    # Its logs start fresh: no run before it (`netlab logs --previous` finds none), the old output gone.
    assert not os.path.exists(previous_log_path(LAB, "job", "main"))
    assert not os.path.exists(log_path(LAB, "job", "main")) or open(log_path(LAB, "job", "main")).read() == ""
    # Once it exited (completed), the same file again starts nothing: it ran once, as the new pod's container.
    now.update(pid=gone_pid(), start=1)
    host.clear()
    again = lifecycle.start(new, state)
    assert host == ([] if policy != "Always" else [new_argv]), (host, again)
    if policy != "Always":
        left = drift.lines(new, state.extra["workload"]["pods"], "up")
        assert [line for line in left if "container main" in line] == [], left
