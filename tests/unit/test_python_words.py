"""What a Lab method meets names its way out as the Python call, as the README says (QA qt #4).

``Lab.exec`` (popen, inspect, trace ...) of a namespace deleted under a running lab said ``sudo netlab up --lab L``
makes it again, and ``Lab.status()``'s line for a container that exited said ``see `sudo netlab logs ...```: a
library user has no command to type, and the README promises Python advice (``Lab('NAME').repair()``). One place
decides (netlab.errors.python_words: a Lab method runs in it); the CLI's commands keep their words.
"""

from __future__ import annotations

import contextlib

import pytest

from netlab import Lab
from netlab.errors import NetnsGone, logs_way, netlab_command, python_words
from netlab.realize.netns_missing import lab_netns_gone
from netlab.realize.state_dir import lab_dir, state_file


@pytest.fixture
def gone(state_root, monkeypatch):
    """Lab qp1 is up (its state file is there) and its namespace qp1-a was deleted: every entry into it fails."""
    from netlab.api import exec as exec_mod

    path = state_file("qp1")
    lab_dir("qp1")  # the lab's folder as netlab makes it (marked: realize/lab_folder)
    with open(path, "w") as f:
        f.write("{}")

    def target(state, model, name):
        raise lab_netns_gone("qp1-a", "qp1")

    monkeypatch.setattr(exec_mod, "exec_target", target)
    monkeypatch.setattr(Lab, "state", lambda self: None)
    monkeypatch.setattr(Lab, "model", None)


def test_a_lab_methods_deleted_namespace_names_the_python_call(gone):
    for call in (lambda lab: lab.exec("a", ["true"]), lambda lab: lab.popen("a", ["true"])):
        with pytest.raises(NetnsGone) as err:
            call(Lab("qp1"))
        assert str(err.value) == ("namespace qp1-a was deleted while lab qp1 is up; `Lab('qp1').repair()` makes "
                                  "it again")
        assert err.value.exit_code == 2


def test_the_clis_lab_keeps_the_command(gone):
    lab = Lab("qp1")
    lab._api_words = False  # the lab a command acts on (netlab.api.lab.internal_attach)
    with pytest.raises(NetnsGone) as err:
        lab.exec("a", ["true"])
    assert str(err.value) == (f"namespace qp1-a was deleted while lab qp1 is up; `{netlab_command('up --lab qp1')}` "
                              "makes it again")
    assert str(lab_netns_gone("qp1-a", "qp1")) == str(err.value)  # outside any Lab method: the CLI's


def test_a_namespace_of_a_lab_that_is_not_up_names_the_python_status(state_root):
    with python_words():
        err = lab_netns_gone("qp2-a", "qp2")
    assert str(err) == "namespace qp2-a does not exist; is the lab up? (`Lab('qp2').status()`)"


def test_the_logs_of_an_exited_container_in_status_is_the_python_call():
    assert logs_way("qp1", "web-1", "main") == netlab_command("logs --lab qp1 web-1 -c main")
    with python_words():
        assert logs_way("qp1", "web-1", "main") == "Lab('qp1').logs('web-1', 'main')"


def test_status_reads_the_lab_in_its_callers_words(monkeypatch):
    """Lab.status() (internal_status, api=True) reads the drift lines in Python words; the CLI's status not."""
    import types

    from netlab.api import internals
    from netlab.errors import in_python_words

    said = []

    def status(state, kernel):
        said.append(in_python_words())
        return types.SimpleNamespace(lab="qp1", ok=True, drift=[], objects=0, details=(), warnings=())

    monkeypatch.setattr(internals.lifecycle, "status", status)
    monkeypatch.setattr(internals, "seen", lambda name: types.SimpleNamespace(  # nobody held the lab
        lab=name, meanwhile=lambda: None, reading=contextlib.nullcontext))
    monkeypatch.setattr(Lab, "_against_ahead", lambda self, topology: (None, None, []))
    for api in (True, False):
        internals.internal_status(Lab("qp1"), api=api)
    assert said == [True, False]


def test_an_exited_containers_drift_line_names_the_logs_call(monkeypatch, tmp_path, state_root):
    from helpers import two_node_topology
    from netlab.model.lab import resolve
    from netlab.model.load import load_topology
    from netlab.realize.state import LabState
    from netlab.workload import drift as container_drift, lifecycle

    path = tmp_path / "t.yaml"
    path.write_text(two_node_topology("qp1", pods_per_node=1))
    lab = resolve(load_topology(str(path)))
    pod = lab.pods[0]
    records = {"version": lifecycle.RECORD_VERSION,
               "pods": {p.name: {"containers": {"main": {"pid": 4242, "start": 1,
                                                         "argv": lifecycle.container_argv(p, p.containers[0])}}}
                        for p in lab.pods}}
    state = LabState(lab="qp1", extra={lifecycle.RECORD: records})
    monkeypatch.setattr(container_drift, "uts_hostnames", lambda paths: {p.name: p.hostname for p in lab.pods})
    monkeypatch.setattr(container_drift, "task_of", lambda crec, netns: None if netns == pod.netns else "S")
    monkeypatch.setattr(container_drift, "in_old_sandbox", lambda *a: False)
    monkeypatch.setattr(container_drift.exits, "exit_codes", lambda *a: {})
    monkeypatch.setattr(container_drift.node_uts, "drift", lambda lab: [])
    monkeypatch.setattr(container_drift.health, "drift", lambda lab, repair: [])
    with python_words():
        assert lifecycle.drift(lab, state) == [f"containers: pod {pod.name} container main exited (pid 4242); see "
                                               f"`Lab('qp1').logs('{pod.name}', 'main')`"]
