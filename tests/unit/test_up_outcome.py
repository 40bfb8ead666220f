"""What `up` says of a lab whose network is up and whose workload is not: a container that could not start.

The lab stays up (rolling it back would take what works with it); `up` names each container that could not
start in one line and exits 1, the exit of `status` for the same lab (it calls them drift), so `netlab up &&
netlab probe` stops there. The library's UpResult says it too (``failed``, ``ok``). The real thing, on real
namespaces: tests/integration/test_up_outcomes.py.
"""

from __future__ import annotations

import json
import types

import pytest
from cli_inprocess import run_cli
from fake_lab import IdleFeature, make_lab

from netlab.api import results as R
from netlab.feature import StartResult
from netlab.kernel.fake import FakeKernel
from netlab.lab import up as lab_up
from netlab.lab.journal import Journal
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.realize import state as state_mod
from netlab.workload import lifecycle as workload

lab = pytest.fixture(make_lab, name="lab")

FAILED = "pod a container main: could not start: /nonexistent: No such file or directory"


class FailingFeature(IdleFeature):
    """A feature whose start leaves one container not started, and warns of something else."""

    name = "failing"

    def start(self, lab, state, early=None):
        return StartResult(actions=["started container b/main"], problems=["something else"], failed=[FAILED])


def test_a_container_that_could_not_start_leaves_the_lab_up_and_is_in_the_result(lab):
    k = FakeKernel()
    done = lab_up.up(lab, k, features=[FailingFeature()], journal=Journal(k))
    assert done.failed == [FAILED] and done.warnings == ["something else"]
    assert state_mod.load_state(lab.name).phase == "up" and k.ns  # not rolled back


def test_the_workload_moves_its_start_failures_from_the_problems_to_failed(tmp_path):
    """One that failed now (its problem's words kept), one that failed before and was not tried again (held:
    said from its record), and a problem of another kind, which stays a warning."""
    path = tmp_path / "t.yaml"
    path.write_text("name: w\nnodes: [{name: n1}]\npods:\n  - name: a\n    node: n1\n    containers:\n"
                    "      - {name: x, command: [nope]}\n      - {name: y, command: [gone]}\n"
                    "      - {name: z, command: [sleep, infinity]}\n")
    pod = resolve(load_topology(str(path))).pods[0]
    records = {"a": {"containers": {"x": {"error": "nope: command not found"}, "y": {"error": "held since"},
                                    "z": {"pid": 1, "start": 1}}}}
    done = StartResult(problems=["pod a container x: could not start: nope: command not found", "other"])
    workload._failed([pod], records, done)
    assert done.failed == ["pod a container x: could not start: nope: command not found",
                           "pod a container y: could not start: held since"]
    assert done.problems == ["other"]


def _up_returns(monkeypatch, tmp_path, failed: tuple[str, ...], changed: bool = True) -> str:
    path = tmp_path / "t.yaml"
    path.write_text("name: w\nnodes: [{name: n1}]\npods: [{name: a, node: n1}]\n")
    result = R.UpResult(lab="w", changed=changed, created_netns=("w-n1",) if changed else (), removed_netns=(),
                        fixed=(), operations=3, warnings=(), failed=failed)

    def up_loaded(cls, loaded, **kw):
        return types.SimpleNamespace(last_up=result, model=loaded.lab, owned=False)

    monkeypatch.setattr("netlab.cli.lab.require_root", lambda: None)
    monkeypatch.setattr("netlab.api.Lab.up_loaded", classmethod(up_loaded))
    return str(path)


@pytest.mark.parametrize("changed", [True, False])
def test_up_exits_1_naming_each_container_that_could_not_start(monkeypatch, tmp_path, changed):
    path = _up_returns(monkeypatch, tmp_path, (FAILED,), changed)
    got = run_cli("up", "-t", path)
    assert got.returncode == 1, got
    assert f"netlab: {FAILED}\n" in got.stderr and "Traceback" not in got.stderr
    assert "lab w is up" in got.stdout and "matches its topology" not in got.stdout, got.stdout
    js = run_cli("up", "-t", path, "-o", "json")
    assert js.returncode == 1 and json.loads(js.stdout)["failed"] == [FAILED], js


def test_up_exits_0_when_everything_started(monkeypatch, tmp_path):
    path = _up_returns(monkeypatch, tmp_path, ())
    got = run_cli("up", "-t", path)
    assert got.returncode == 0 and got.stderr == "", got
    assert json.loads(run_cli("up", "-t", path, "-o", "json").stdout)["failed"] == []


def test_the_librarys_result_says_whether_everything_started():
    base = dict(lab="w", changed=False, created_netns=(), removed_netns=(), fixed=(), operations=0, warnings=())
    assert R.UpResult(**base).ok and not R.UpResult(**base, failed=(FAILED,)).ok
