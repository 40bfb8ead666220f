"""status' container lines name the `up` that repairs the lab, which may read and parse the lab's topology file
(realize.state.repair_up): it is worked out only when a line names it, and once however many do
(workload/drift.once); a lab whose containers run as planned never works it out."""

from __future__ import annotations

import pytest

from netlab.model.lab import resolve
from netlab.model.load import parse_yaml, validate_source
from netlab.realize.state import LabState
from netlab.workload import drift, lifecycle, reconfigure
from netlab.workload.containers import container_argv
from tests.unit.test_command_changed import LAB, exited_state, host, lab_of  # noqa: F401 - host: a fixture


def two_pods(command: str):
    pods = "".join(f"  - {{name: {p}, node: n1, containers: [{{name: main, command: {command}}}]}}\n"
                   for p in ("job", "job2"))
    return resolve(validate_source(parse_yaml(f"name: {LAB}\nnodes: [{{name: n1}}]\npods:\n{pods}", "t.yaml")))


class _Counted:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        return "sudo netlab up -t new.yaml"


@pytest.mark.usefixtures("host")
def test_no_line_that_names_the_repair_never_works_it_out(monkeypatch):
    lab = lab_of("Never", "[echo, hello]")
    repair = _Counted()
    monkeypatch.setattr(reconfigure, "repair_up", lambda state: repair())
    state = LabState(lab=LAB)
    state.extra["workload"] = {"version": 1, "pods": {}}  # no record of the pod's containers: "up starts them"
    lines = lifecycle.drift(lab, state)
    assert "containers: pod job has no containers started; up starts them" in lines, lines
    assert not any("`" in line for line in lines), lines
    assert repair.calls == 0
    assert repair.calls == 0


@pytest.mark.usefixtures("host")
def test_lines_that_name_the_repair_work_it_out_once():
    old, new = two_pods("[sh, -c, 'exit 0']"), two_pods("[echo, hello]")
    state = exited_state(old, container_argv(old.pods[0], old.pods[0].containers[0]))
    pods = state.extra["workload"]["pods"]
    pods["job2"] = pods["job"]  # the second pod's container in the same case: two lines that name the repair
    repair = _Counted()
    lines = [line for line in drift.lines(new, pods, repair) if "its command changed" in line]
    assert len(lines) == 2 and all("`sudo netlab up -t new.yaml` starts the new one" in x for x in lines), lines
    assert repair.calls == 1
    assert drift.lines(new, pods, "up") == [line.replace("sudo netlab up -t new.yaml", "up")
                                           for line in drift.lines(new, pods, _Counted())]
