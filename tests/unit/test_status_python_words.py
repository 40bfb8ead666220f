"""`Lab.status()`'s lines for a container stopped by a signal or running an old command said "`sudo netlab up
--lab L` restarts it", a command, where every other way out a Lab method names is the Python call (README "Use
netlab in your own tests"; netlab.errors.python_words, repair_way, logs_way). In Python they name
``Lab('L').repair()`` (``Lab.up(FILE)`` against a file: a root test); the CLI keeps its command. No root: the
processes' states are stood in for."""

from __future__ import annotations

import json

import pytest

from netlab.errors import netlab_command, python_words
from netlab.model.lab import resolve
from netlab.model.topology import Topology
from netlab.realize.state import LabState
from netlab.workload import drift, lifecycle
from netlab.workload.containers import container_argv

TOPO = {"name": "pw", "nodes": [{"name": "n1"}], "pods": [{"name": "a", "node": "n1"}, {"name": "b", "node": "n1"}]}


@pytest.fixture
def state(monkeypatch, tmp_path):
    lab = resolve(Topology.model_validate(TOPO))
    argv = {p.name: container_argv(p, p.containers[0]) for p in lab.pods}
    pods = {"a": {"containers": {"main": {"pid": 4194303, "start": 1, "argv": argv["a"]}}},  # stopped (SIGSTOP)
            "b": {"containers": {"main": {"pid": 4194302, "start": 1, "argv": ["old"]}}}}  # runs another command than planned
    monkeypatch.setattr(drift, "task_of", lambda crec, netns: "T" if netns.endswith("-a") else "S")
    (tmp_path / "pw.yaml").write_text(json.dumps(TOPO))  # the lab's file, as its last up read it
    return LabState(lab="pw", topology=TOPO, source=str(tmp_path / "pw.yaml"), extra={"workload": {"version": lifecycle.RECORD_VERSION,
                                                                                      "pods": pods}})


def said(lines: list[str]) -> list[str]:
    return [line for line in lines if " container main " in line]


def test_in_python_they_name_the_call(state):
    with python_words(True):
        lines = said(lifecycle.drift(state.resolved(), state))
    assert lines == ["containers: pod a container main is stopped (pid 4194303, by SIGSTOP or SIGTSTP); "
                     "`Lab('pw').repair()` restarts it",
                     "containers: pod b container main runs another command than planned; `Lab('pw').repair()` restarts it"]


def test_the_cli_keeps_its_command(state):
    lines = said(lifecycle.drift(state.resolved(), state))
    assert [line.rsplit("; ", 1)[1] for line in lines] == [f"`{netlab_command(f'up -t {state.source}')}` restarts it"] * 2
    against = LabState(lab="pw", topology=TOPO, extra=state.extra, repair="sudo netlab up -t /tmp/f.yaml")
    with python_words(True):  # a file's plan, its repair said by the caller (Lab.status(FILE): Lab.up('FILE'))
        lines = said(lifecycle.drift(against.resolved(), against))
    assert [line.rsplit("; ", 1)[1] for line in lines] == ["`sudo netlab up -t /tmp/f.yaml` restarts it"] * 2
