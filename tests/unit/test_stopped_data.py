"""The processes of yours a pod's stop stopped (a user's `netlab exec`, nsenter) travel as data, kill.Stopped, from
workload/pod_teardown.stop through up's and down's results to stopped_processes and up --watch's lines, beside the
warnings, never as lines read back (review: they went as warning lines made by kill.other_line and parsed back
with a regex by api/lab.py and api/watch_lines.py). A rollback, which says what its stops said, says each as a
line. The fake kernel, no root: tests/integration/test_stopped_yours_live.py checks the real path's words."""

from __future__ import annotations

import pytest
from fake_lab import IdleFeature, make_lab

from netlab.kernel import kill
from netlab.kernel.fake import FakeKernel
from netlab.kernel.processes import ProcId
from netlab.lab import teardown, up as lab_up
from netlab.lab.journal import Journal
from netlab.model.lab import resolve
from netlab.model.load import load_topology

lab = pytest.fixture(make_lab, name="lab")

# A problem line worded as kill.other_line words a stop (a CNI plugin's message may say anything): a warning, not
# a process of yours (the regex took it for one)
LOOKALIKE = "stopped a process of yours in fk-b: 77 (sleep 7)"


class Yours(IdleFeature):
    """A feature whose stop stopped a process of yours in each namespace it stopped, and said a problem."""

    name = "yours"

    def stop(self, state, netns_names, everything=False, early=None):
        state.stopped_others += [kill.Stopped(ProcId(4242 + i, 9), n, f"sleep {i}")
                                 for i, n in enumerate(sorted(netns_names))]
        return [f"a problem of {len(netns_names)}"] + ([LOOKALIKE] if netns_names else [])


class Said(IdleFeature):
    """A feature that says one line at each stop, after Yours's."""

    name = "said"

    def stop(self, state, netns_names, everything=False, early=None):
        return ["said last"]


def test_a_pods_stop_keeps_the_processes_of_yours_as_data_not_lines(lab, monkeypatch):
    """workload/pod_teardown.stop: the processes stop_namespaces stopped that were not the lab's are on the state
    (a UTS pin's as its pod's namespace, the command's first 200 characters), none of them among its lines."""
    from netlab.realize.state import LabState
    from netlab.workload import pod_teardown
    from netlab.workload.records import RECORD, RECORD_VERSION
    from netlab.workload.uts import uts_path

    state = LabState(lab="fk", extra={RECORD: {"version": RECORD_VERSION,
                                               "pods": {"b": {"netns": "fk-b", "containers": {}}}}})
    pin = uts_path("fk", "b")
    long = "x" * 300

    def stop_namespaces(names, uts_files, ours=None, others=None, grace=3.0):
        assert names == ["fk-b"] and others is not None
        others += [kill.Found(ProcId(4242, 1), "fk-b", "sleep 1000"), kill.Found(ProcId(4250, 2), pin, long)]
        return ["pid 4300 (sleep 9) in fk-b"]

    monkeypatch.setattr(kill, "stop_namespaces", stop_namespaces)
    monkeypatch.setattr(pod_teardown, "is_uts_mount", lambda path: True)
    monkeypatch.setattr(pod_teardown, "drop_echo", lambda lab, ids: [])
    assert pod_teardown.stop(state, ["fk-b"]) == ["pid 4300 (sleep 9) in fk-b"]
    assert state.stopped_others == [kill.Stopped(ProcId(4242, 1), "fk-b", "sleep 1000"),
                                    kill.Stopped(ProcId(4250, 2), "fk-b", "x" * 200)]


def test_up_and_down_carry_them_beside_their_warnings(lab, tmp_path):
    """A pod up removes and the lab down takes away: their stops' processes of yours are the results' ``stopped``,
    in order; the warnings and problems are the stops' lines as they said them (one worded like a stop's too)."""
    k = FakeKernel()
    lab_up.up(lab, k, features=(Yours(),), journal=Journal(k))
    path = tmp_path / "less.yaml"
    path.write_text((tmp_path / "t.yaml").read_text().replace("  - {name: b, node: n2, ip: 10.244.1.3}\n", ""))
    done = lab_up.up(resolve(load_topology(str(path))), k, features=(Yours(),), source=str(path),
                     reconfigure=True, journal=Journal(k))
    assert done.removed_netns == ["fk-b"]
    assert done.stopped == [kill.Stopped(ProcId(4242, 9), "fk-b", "sleep 0")]
    assert "a problem of 1" in done.warnings and LOOKALIKE in done.warnings
    down = teardown.down(lab.name, k, (Yours(), Said()))
    assert down.stopped == [kill.Stopped(ProcId(4242, 9), "fk-a", "sleep 0"),
                            kill.Stopped(ProcId(4243, 9), "fk-n1", "sleep 1"),
                            kill.Stopped(ProcId(4244, 9), "fk-n2", "sleep 2"),
                            kill.Stopped(ProcId(4245, 9), "fk-underlay", "sleep 3")]
    assert down.problems == ["a problem of 4", LOOKALIKE, "said last"]


def test_a_rollbacks_stops_say_them_as_lines_after_their_features():
    """Without a list to take them (a rollback's stops, lab/rollback.py), each is said as it was: a line after its
    feature's, before the next feature's."""
    from netlab.realize.state import LabState

    state = LabState(lab="fk")
    assert teardown.stop_features([Yours(), Said()], state, ["fk-b"]) == [
        "a problem of 1", LOOKALIKE, "stopped a process of yours in fk-b: 4242 (sleep 0)", "said last"]
    assert state.stopped_others == []  # taken: a later stop's caller does not get them again
    kept: list[kill.Stopped] = []
    assert teardown.stop_features([Yours(), Said()], state, ["fk-b"], stopped=kept) == [
        "a problem of 1", LOOKALIKE, "said last"]
    assert kept == [kill.Stopped(ProcId(4242, 9), "fk-b", "sleep 0")] and state.stopped_others == []


def test_the_api_says_the_records_and_leaves_every_line_a_warning(monkeypatch):
    """Lab.down: stopped_processes from the teardown's records, its problems as they are (a line worded like a
    stop's stays a problem: nothing is read back from text)."""
    from netlab import api
    from netlab.api import lifecycle
    from netlab.api.results import StoppedProcess

    done = teardown.DownResult(lab="l", removed_netns=["l-a"], problems=[LOOKALIKE],
                               stopped=[kill.Stopped(ProcId(4242, 1), "l-a", "sh -c sleep 1\\ntrue")])
    monkeypatch.setattr(lifecycle, "down", lambda *a, **k: done)
    result = api.Lab("l").down()
    assert result.problems == (LOOKALIKE,)
    assert result.stopped_processes == (StoppedProcess("l-a", 4242, "sh -c sleep 1\\ntrue"),)


def test_impair_says_them_as_warnings_as_it_did():
    """`netlab impair`'s up that made a pod anew: each process of yours its stop stopped is a warning's line, after
    the up's own (as the up's warnings said them)."""
    from netlab.api.impair import _stopped_said

    up = lab_up.UpResult("l", warnings=["w"], stopped=[kill.Stopped(ProcId(4242, 1), "l-b", "sleep 1")])
    assert _stopped_said(up).warnings == ["w", "stopped a process of yours in l-b: 4242 (sleep 1)"]
    assert up.stopped == []  # said once
