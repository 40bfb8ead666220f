"""CrashLoopBackOff: the record ``up --watch`` keeps of the containers it holds back (workload/crashloop.py), and
what ``get pods`` and ``status`` make of it, without root."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from netlab.api import views
from netlab.api.jsonio import to_json
from netlab.kernel import processes
from netlab.model.lab import resolve
from netlab.model.load import parse_yaml, validate_source
from netlab.realize.state import LabState
from netlab.realize.state_dir import StateWriteFailed
from netlab.workload import crashloop
from netlab.workload.lifecycle import drift

LAB = "cl1"


@pytest.fixture
def lab_dir(state_root):
    from netlab.realize import state_dir

    return type(state_root)(state_dir.lab_dir(LAB))  # made as netlab makes it (marked)


def up() -> bool:
    return True


def record(lab_dir) -> dict:
    return json.loads((lab_dir / crashloop.FILE).read_text())


def test_what_the_watcher_writes_is_read_while_the_back_off_lasts(lab_dir):
    now = time.time()
    crashloop.write(LAB, {"crash/main": (now + 20, 20.0), "other/side": (now + 5, 10.0)}, up)
    data = record(lab_dir)
    assert data["watcher"] == {"pid": os.getpid(), "start": processes.start_time(os.getpid())}
    assert data["containers"]["crash/main"] == {"until": round(now + 20, 3), "delay": 20.0}
    assert oct((lab_dir / crashloop.FILE).stat().st_mode & 0o777) == "0o600"
    held = crashloop.read(LAB, now)
    assert set(held) == {"crash/main", "other/side"}
    assert held["crash/main"].delay == 20.0 and held["crash/main"].watcher == os.getpid()
    # Each back-off alone: one that has ended is no longer held back (the watcher restarts it now)
    assert set(crashloop.read(LAB, now + 6)) == {"crash/main"}
    assert crashloop.read(LAB, now + 21) == {}
    assert not [p.name for p in lab_dir.iterdir() if ".tmp." in p.name]  # written whole, by a rename


def test_nothing_held_back_removes_the_record(lab_dir):
    crashloop.write(LAB, {"crash/main": (time.time() + 20, 20.0)}, up)
    crashloop.write(LAB, {}, up)
    assert not (lab_dir / crashloop.FILE).exists()


def test_a_lab_without_a_state_folder_gets_none(state_root):
    crashloop.write(LAB, {"crash/main": (time.time() + 20, 20.0)}, up)  # the lab went down: nothing made
    assert not (state_root / LAB).exists()
    assert crashloop.read(LAB) == {}


def test_a_down_that_began_meanwhile_finds_no_record(lab_dir):
    """Written as `down` begins (its state says deleting): removed again, or `down` would leave it behind."""
    crashloop.write(LAB, {"crash/main": (time.time() + 20, 20.0)}, lambda: False)
    assert not (lab_dir / crashloop.FILE).exists()


def test_a_dead_watchers_record_is_not_trusted(lab_dir):
    now = time.time()
    crashloop.write(LAB, {"crash/main": (now + 20, 20.0)}, up)
    data = record(lab_dir)
    dead = subprocess.Popen(["true"])
    dead.wait()
    for watcher in ({"pid": dead.pid, "start": data["watcher"]["start"]},  # gone
                    {"pid": os.getpid(), "start": data["watcher"]["start"] - 1}):  # its pid, another process
        (lab_dir / crashloop.FILE).write_text(json.dumps({**data, "watcher": watcher}))
        assert crashloop.read(LAB, now) == {}
    # A new watcher's first write removes it; a running watcher's record is another's to remove
    (lab_dir / crashloop.FILE).write_text(json.dumps({**data, "watcher": {"pid": dead.pid, "start": 1}}))
    crashloop.remove(LAB)
    assert not (lab_dir / crashloop.FILE).exists()
    other = subprocess.Popen(["sleep", "30"])
    try:
        watcher = {"pid": other.pid, "start": processes.start_time(other.pid)}
        (lab_dir / crashloop.FILE).write_text(json.dumps({**data, "watcher": watcher}))
        assert set(crashloop.read(LAB, now)) == {"crash/main"}
        crashloop.remove(LAB)
        assert (lab_dir / crashloop.FILE).exists()
        crashloop.remove(LAB, anyone=True)  # the lab goes down
        assert not (lab_dir / crashloop.FILE).exists()
    finally:
        other.kill()
        other.wait()


def test_a_dead_watcher_that_is_still_a_zombie_is_no_watcher(lab_dir):
    """QA q10 3: a watcher killed whose parent had not reaped it yet (state Z) kept its pid and start time in /proc:
    status said "`netlab up --watch` (pid N) restarts it in Xs" and get pods CrashLoopBackOff, yet nobody would."""
    now = time.time()
    crashloop.write(LAB, {"crash/main": (now + 20, 20.0)}, up)
    data = record(lab_dir)
    zombie = subprocess.Popen(["true"])  # not waited for: a zombie until the test reaps it
    try:
        while processes.proc_state(zombie.pid) != "Z":
            time.sleep(0.01)
        watcher = {"pid": zombie.pid, "start": processes.start_time(zombie.pid)}
        (lab_dir / crashloop.FILE).write_text(json.dumps({**data, "watcher": watcher}))
        assert crashloop.read(LAB, now) == {}
        crashloop.remove(LAB)  # a dead watcher's record is anyone's to remove
        assert not (lab_dir / crashloop.FILE).exists()
    finally:
        zombie.wait()


def _corrupt(data: dict) -> list[bytes]:
    entry = data["containers"]["crash/main"]
    variants = [{**data, "version": 2}, {**data, "watcher": "me"}, {**data, "containers": []},
                {**data, "watcher": {"pid": True, "start": data["watcher"]["start"]}}]
    for bad in ({"until": "soon", "delay": 20.0}, {"until": entry["until"], "delay": None}, "x",
                {"until": float("inf"), "delay": 20.0}, {"until": entry["until"], "delay": -1}):
        variants.append({**data, "containers": {"crash/main": bad}})
    variants.append({**data, "containers": {"crash": entry}})  # not pod/container
    out = [json.dumps(v).encode() for v in variants]
    return out + [b"", b"{", b"\xff\xfe", b"[1, 2]", b"null", json.dumps(data).encode()[:-5],
                  b" " * (crashloop.MAX_BYTES + 1)]


def test_a_corrupt_record_is_no_record(lab_dir):
    now = time.time()
    crashloop.write(LAB, {"crash/main": (now + 20, 20.0)}, up)
    data = record(lab_dir)
    for raw in _corrupt(data):
        (lab_dir / crashloop.FILE).write_bytes(raw)
        assert crashloop.read(LAB, now) == {}, raw[:200]
    # Something else at its path: a directory, a symlink to a good record (never followed)
    (lab_dir / crashloop.FILE).unlink()
    (lab_dir / crashloop.FILE).mkdir()
    assert crashloop.read(LAB, now) == {}
    crashloop.remove(LAB)  # leaves what it cannot remove, and does not fail
    (lab_dir / crashloop.FILE).rmdir()
    (lab_dir / "good").write_text(json.dumps(data))
    (lab_dir / crashloop.FILE).symlink_to(lab_dir / "good")
    assert crashloop.read(LAB, now) == {}


def test_the_watchers_side_writes_when_the_held_containers_change(lab_dir, monkeypatch):
    writes = []
    real = crashloop.write_atomic
    monkeypatch.setattr(crashloop, "write_atomic", lambda path, data: (writes.append(data), real(path, data)))
    rec = crashloop.Record(LAB, up, log=lambda line: None)
    now = time.time()
    rec.hold({"crash/main": (now + 10, 10.0)})
    rec.hold({"crash/main": (now + 10.001, 10.0)})  # the same back-off, worked out again: not written again
    assert len(writes) == 1
    rec.restarted("crash/main")
    assert set(crashloop.read(LAB)) == {"crash/main"}  # until the apply that restarts it is done
    rec.write()
    assert not (lab_dir / crashloop.FILE).exists()
    rec.hold({"crash/main": (now + 20, 20.0)})
    assert len(writes) == 2 and set(crashloop.read(LAB)) == {"crash/main"}
    rec.close()
    assert not (lab_dir / crashloop.FILE).exists()


def test_a_record_that_cannot_be_written_is_said_once_and_keeps_the_watcher(lab_dir, monkeypatch):
    said = []

    def full(path, data):
        raise StateWriteFailed(path, "No space left on device")

    monkeypatch.setattr(crashloop, "write_atomic", full)
    rec = crashloop.Record(LAB, up, log=said.append)
    rec.hold({"crash/main": (time.time() + 10, 10.0)})
    rec.hold({"crash/main": (time.time() + 10, 10.0)})
    assert len(said) == 1 and said[0].startswith("warning: cannot record the containers in back-off")
    assert "No space left on device" in said[0]


@pytest.mark.parametrize("seconds, go", [(0.5, "500ms"), (1.5, "1.5s"), (10, "10s"), (80, "1m20s"),
                                         (300, "5m0s")])
def test_a_delay_is_said_as_the_kubelets_message_says_it(seconds, go):
    assert crashloop.go_duration(seconds) == go


TOPOLOGY = """\
name: cl1
nodes: [{name: n1}]
pods:
  - name: crash
    node: n1
    containers:
      - {name: main, command: [sh, -c, "exit 3"]}
  - name: fine
    node: n1
    containers:
      - {name: main, command: [sh, -c, "exit 3"]}
"""


def _exited_lab(lab_dir):
    """A lab whose two command containers have exited (their processes are gone), in a saved state."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    lab = resolve(validate_source(parse_yaml(TOPOLOGY, "t.yaml")))
    crec = {"pid": dead.pid, "start": 1, "argv": ["sh", "-c", "exit 3"], "restarts": 2}
    pods = {p.name: {"netns": p.netns, "containers": {"main": dict(crec)}} for p in lab.pods}
    return lab, LabState(LAB, extra={"workload": {"version": 1, "pods": pods}})


# The clock stands still: the back-off's end is said to the millisecond the record keeps (crashloop.write rounds
# it), and a moment within half a millisecond of a whole second (.9996 + 20 s) rounds into the next second.
@pytest.mark.parametrize(("now", "until_said"), [(1765000000.25, "2025-12-06T05:47:00.250Z"),
                                                 (1765000000.5, "2025-12-06T05:47:00.500Z"),
                                                 (1765000000.9996, "2025-12-06T05:47:01.000Z")])
def test_get_pods_says_crash_loop_back_off_for_a_held_container_while_its_watcher_runs(lab_dir, monkeypatch, now,
                                                                                         until_said):
    monkeypatch.setattr(time, "time", lambda: now)
    lab, state = _exited_lab(lab_dir)
    before = {p.name: p.status for p in views.pods(state, lab)}
    assert before == {"crash": "ContainerStatusUnknown", "fine": "ContainerStatusUnknown"}  # no echo server here
    until = time.time() + 20
    crashloop.write(LAB, {"crash/main": (until, 20.0)}, up)
    pods = {p.name: p for p in views.pods(state, lab)}
    assert pods["crash"].status == "CrashLoopBackOff" and pods["fine"].status == "ContainerStatusUnknown"
    c = to_json(pods["crash"])["containers"][0]
    assert (c["state"], c["restarts"], c["waiting_reason"]) == ("exited", 2, "CrashLoopBackOff")
    assert c["waiting_message"] == "back-off 20s restarting failed container=main pod=crash_default"
    assert c["back_off_until"] == until_said
    assert to_json(pods["fine"])["containers"][0]["waiting_reason"] is None
    # status names the wait in the container's line, with who restarts it and when
    line = next(x for x in drift(lab, state) if "pod crash container main" in x)
    assert line.endswith(f"; CrashLoopBackOff (back-off 20s): `netlab up --watch` (pid {os.getpid()}) restarts it in "
                         "20.0s")
    assert crashloop.said_in(line)
    assert not any(crashloop.said_in(x) for x in drift(lab, state) if "pod fine" in x)
    crashloop.remove(LAB)  # the watcher stopped
    assert views.pods(state, lab)[0].status == "ContainerStatusUnknown"
    assert not any(crashloop.said_in(x) for x in drift(lab, state))
