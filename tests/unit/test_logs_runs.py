"""Each run of a container has a log of its own (QA: `netlab logs` printed every past run joined together):
`netlab logs` / `lab.logs` print the current run, `--previous` the one before (kubectl's error when there is
none), a run that could not start holds the reason, and a pod's AGE is its record's, not its sandbox's."""

from __future__ import annotations

import os
import types

import pytest
from click.testing import CliRunner

from helpers import two_node_topology
from netlab import api
from netlab.api import views
from netlab.api.exec import log_file, open_log
from netlab.api.lab import Lab
from netlab.cli import workload as cli_workload
from netlab.cli.base import cli
from netlab.errors import UsageError
from netlab.model.lab import resolve
from netlab.model.load import parse_yaml
from netlab.model.topology import Topology
from netlab.realize.state_dir import lab_dir
from netlab.workload.containers import (forget_runs, log_path, logs_by_pod, new_run, note_start_error,
                                        previous_log_path)

LAB = "qlr1"


@pytest.fixture
def model():
    os.makedirs(os.path.join(lab_dir(LAB), "logs"), exist_ok=True)
    return resolve(Topology.model_validate(parse_yaml(two_node_topology(LAB, pods_per_node=1), "t.yaml").data))


def write(path: str, text: str) -> None:
    with open(path, "a") as fh:
        fh.write(text)


def test_a_new_run_keeps_the_one_before_only_and_its_pod_removal_takes_both(model):
    cur, prev = log_path(LAB, "fedora-1", "main"), previous_log_path(LAB, "fedora-1", "main")
    write(cur, "start\nbye\n")
    new_run(LAB, "fedora-1", "main")
    assert not os.path.exists(cur) and open(prev).read() == "start\nbye\n"
    write(cur, "v2 line 1\n")
    new_run(LAB, "fedora-1", "main")
    write(cur, "v3\n")
    assert open(prev).read() == "v2 line 1\n" and open(cur).read() == "v3\n"  # two files at most: bounded
    assert sorted(logs_by_pod(LAB)["fedora-1"]) == ["fedora-1.main.log", "fedora-1.main.previous.log"]


def test_forget_runs_takes_that_containers_two_logs_only(model):
    """A container taken out of its pod, or whose command changed (a new pod's container): its logs go, by
    their exact names; its pod's other container's and a pod whose name it begins with stay."""
    base = os.path.join(lab_dir(LAB), "logs")
    kept = ["fedora-1.side.log", "fedora-1.side.previous.log", "fedora-12.main.log", "fedora-1.mainx.log"]
    for name in ["fedora-1.main.log", "fedora-1.main.previous.log", *kept]:
        write(os.path.join(base, name), "x\n")
    forget_runs(LAB, "fedora-1", "main")
    assert sorted(os.listdir(base)) == sorted(kept)
    forget_runs(LAB, "fedora-1", "main")  # none left: nothing to do
    assert sorted(os.listdir(base)) == sorted(kept)


def test_a_run_that_could_not_start_holds_the_reason(model):
    cur = log_path(LAB, "fedora-1", "main")
    write(cur, "hi\n")
    new_run(LAB, "fedora-1", "main")
    note_start_error(cur, "[Errno 2] No such file or directory: '/nonexistent'")
    assert open(cur).read() == "netlab: could not start: [Errno 2] No such file or directory: '/nonexistent'\n"


def test_previous_reads_the_run_before_and_says_kubectls_error_when_there_is_none(model):
    write(log_path(LAB, "fedora-1", "main"), "now\n")
    chosen, path = log_file(model, "fedora-1", None, previous=True)
    assert (chosen, path) == ("main", previous_log_path(LAB, "fedora-1", "main"))
    with pytest.raises(UsageError, match='^previous terminated container "main" in pod "fedora-1" not found$'):
        open_log(path, "fedora-1", chosen, LAB, previous=True)
    new_run(LAB, "fedora-1", "main")
    with open_log(path, "fedora-1", chosen, LAB, previous=True) as fh:
        assert fh.read() == b"now\n"


def test_lab_logs_and_the_cli_print_the_current_run_and_previous_the_one_before(model, monkeypatch):
    monkeypatch.setattr(Lab, "model", property(lambda self: model))
    monkeypatch.setattr(Lab, "state", lambda self: types.SimpleNamespace(extra={}))  # no container started
    write(log_path(LAB, "fedora-1", "main"), "start\nbye\n")
    new_run(LAB, "fedora-1", "main")
    write(log_path(LAB, "fedora-1", "main"), "v2 line 1\n")
    lab = Lab(LAB)
    assert lab.logs("fedora-1") == "v2 line 1\n"
    assert lab.logs("fedora-1", previous=True) == "start\nbye\n"
    assert lab.logs("fedora-1", previous=True, tail=1) == "bye\n"
    with pytest.raises(UsageError, match="lab.logs: previous must be True or False"):
        lab.logs("fedora-1", previous="yes")
    monkeypatch.setattr(cli_workload, "require_root", lambda: None)
    monkeypatch.setattr(api.Lab, "attach", staticmethod(lambda name: lab))
    run = CliRunner().invoke
    assert run(cli, ["logs", "--lab", LAB, "fedora-1"]).output == "v2 line 1\n"
    assert run(cli, ["logs", "--lab", LAB, "fedora-1", "-p"]).output == "start\nbye\n"
    assert run(cli, ["logs", "--lab", LAB, "fedora-1", "--previous", "-f"]).output == "start\nbye\n"
    none = run(cli, ["logs", "--lab", LAB, "fedora-2", "-p"])
    assert isinstance(none.exception, UsageError)  # netlab's main says it in one line, exit 2 (integration test)
    assert str(none.exception) == 'previous terminated container "main" in pod "fedora-2" not found'


def test_age_is_the_pods_record_not_its_sandboxs(model, monkeypatch):
    """A sandbox made again (or gone) leaves the pod's creationTimestamp as up first recorded it."""
    record = {"version": 1, "pods": {"fedora-1": {"netns": "x", "uts": "/u", "created": 1_700_000_000.5},
                                     "fedora-2": {"netns": "y", "uts": "/u"}}}
    state = types.SimpleNamespace(extra={views.WORKLOAD_RECORD: record})
    assert views._pod_created(state, "fedora-1") == "2023-11-14T22:13:20Z"
    assert views._pod_created(state, "fedora-2") is None  # a lab made before the record: the sandbox's time
    assert views._pod_created(state, "nope") is None
    monkeypatch.setattr(views, "_created", lambda netns: "2026-01-01T00:00:00Z")  # the sandbox: made just now
    monkeypatch.setattr(views, "container_states", lambda state, lab: {
        (p.name, c.name): views.Seen("running", 1, None, 1, False, None) for p in lab.pods for c in p.containers})
    monkeypatch.setattr(views.crashloop, "read", lambda name: {})
    state.lab, state.netns, state.phase = LAB, {}, "up"
    got = {p.name: p.created for p in views.pods(state, model)}
    assert got == {"fedora-1": "2023-11-14T22:13:20Z", "fedora-2": "2026-01-01T00:00:00Z"}
