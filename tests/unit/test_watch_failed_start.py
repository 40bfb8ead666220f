"""A container that cannot start, under `netlab up --watch`: each failed try is a run of its own, so the kubelet's
back-off counts from it (0, 10, 20, 40, 80 s), and the delay `status`, `get pods` and backoff.json say is the one
being waited. Each try's record has no process: every one was taken for the first, so the back-off counted from
that one (waits 0, 10, 10, 20, 40, 80 s) and the delay said was twice the wait (QA q10 4). And a container an apply
stopped (taken out of the topology) is not said as a container that exited. No root: fake records and processes."""

from __future__ import annotations

import subprocess
import types

import netlab.api.watch_restart as wr
from netlab.api.watch import Watcher
from netlab.api.watch_children import Children
from netlab.kernel import processes
from netlab.model.lab import resolve
from netlab.model.load import parse_yaml, validate_source
from netlab.workload.tasks import FAILED_START

TEXT = "name: w\nnodes: [{name: n}]\npods:\n  - {name: b, node: n, containers: [{name: bad, command: [/nonexistent/x]}]}\n"


def test_a_container_that_cannot_start_waits_the_kubelets_back_off_from_each_failed_try(monkeypatch):
    lab = resolve(validate_source(parse_yaml(TEXT, "t.yaml")))
    pod = lab.pods[0]
    now = [1000.0]
    record = {"argv": ["/nonexistent/x"], "restarts": 0, "error": "No such file or directory"}
    w = Watcher(None, "w", log=lambda line: None, clock=lambda: now[0])
    w.kids = Children(lambda: now[0], None)
    shown: dict[str, tuple[float, float]] = {}
    w.waiting = types.SimpleNamespace(hold=shown.update, restarted=lambda key: None)
    monkeypatch.setattr(wr.workload, "containers", lambda lab_, state: [(pod, pod.containers[0], dict(record))])
    monkeypatch.setattr(wr.workload, "why_replace", lambda crec, argv, netns: FAILED_START)
    waits = []
    for _ in range(6):  # each round: restart it when due (its try fails at once: a new record), else wait
        due, _lines, next_due = w._held(lab, None)  # type: ignore[arg-type]
        if not due:
            assert next_due is not None
            wait = next_due - now[0]
            until, delay = shown["b/bad"]
            assert delay == wait, (delay, wait)  # the delay said is the one waited
            waits.append(wait)
            now[0] = next_due
            due, _lines, _ = w._held(lab, None)  # type: ignore[arg-type]
        else:
            waits.append(0.0)
        assert due == ["container b/bad failed to start"], due
        assert w.hold(pod, pod.containers[0], dict(record), FAILED_START) is None  # the apply restarts it
        record["restarts"] += 1  # and it fails again at once
    assert waits == [0.0, 10.0, 20.0, 40.0, 80.0, 160.0]


def test_a_container_an_apply_stopped_is_not_said_as_an_exit(monkeypatch):
    """The file took container b/main out of pod b: the apply stopped it ("stopped container b/main (no longer in
    the topology)"); its pidfd, read next, said "saw: container b/main exited (exit 143)" as news."""
    import netlab.api.watch_children as wc

    text = "name: w\nnodes: [{name: n}]\npods:\n  - {name: b, node: n, containers: [{name: main, command: [sleep]}]}\n"
    lab = resolve(validate_source(parse_yaml(text, "t.yaml")))
    pod = lab.pods[0]
    child = subprocess.Popen(["sleep", "60"])
    try:
        crec = {"pid": child.pid, "start": processes.start_time(child.pid), "argv": ["sleep"]}
        records = [(pod, pod.containers[0], crec)]
        monkeypatch.setattr(wc.workload, "containers", lambda lab_, state: records)
        monkeypatch.setattr(wc.workload, "why_replace", lambda crec_, argv, netns: None)
        kids = Children(lambda: 0.0, None)
        kids.track(lab, None)  # type: ignore[arg-type]
        assert len(kids.fds()) == 1
        records[:] = []  # the apply took it out of the record, and stops it
        kids.track(lab, None)  # type: ignore[arg-type]
        child.terminate()
        child.wait()
        assert kids.reaped(kids.fds()) == []  # its exit was the apply's: not news
        assert kids.fds() == []
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_a_container_a_file_apply_could_not_start_is_tried_again_by_the_next_round_at_once(monkeypatch):
    """The kubelet's first retry of a container that cannot start is at once (back-off 0 s, then 10, 20 ...). A
    file apply that only changed a command sends no notification and the container no exit: the retry waited for
    the periodic check (up to --resync, 10 s). The apply now leaves it for the next round, which the loop runs at
    once (``pending``); once tried, the back-off holds it (10 s), and nothing more is left for at once."""
    import netlab.api.watch_converge as wconv  # _file_changed's module: where it looks these up

    lab = resolve(validate_source(parse_yaml(TEXT, "t.yaml")))
    pod = lab.pods[0]
    now = [1000.0]
    record = {"argv": ["/nonexistent/x"], "restarts": 0, "error": "No such file or directory"}
    lines: list[str] = []
    w = Watcher("t.yaml", "w", log=lines.append, clock=lambda: now[0])
    w.kids = Children(lambda: now[0], None)
    w.kids.track = lambda *a: None  # type: ignore[method-assign]
    w.waiting = types.SimpleNamespace(hold=lambda waiting: None, restarted=lambda key: None, write=lambda: None)
    monkeypatch.setattr(Watcher, "_relisten", lambda self, lab_, made, own=(), heard=(): [])
    monkeypatch.setattr(Watcher, "_did", lambda self, done, nothing, said=(): "could not start container b/bad")

    def apply_file(reading, name, features):  # the file changed b/bad's command; its start failed
        reading.loaded = types.SimpleNamespace(lab=lab)
        return types.SimpleNamespace(created_netns=[], remade_netns=[])

    monkeypatch.setattr(wconv.watch_repair, "apply_file", apply_file)
    monkeypatch.setattr(wconv.watch_repair, "file_id", lambda path: (1, 2, 3))
    monkeypatch.setattr(wconv, "load_state", lambda name: object())
    monkeypatch.setattr(wconv, "served_lab", lambda state: lab)
    monkeypatch.setattr(wr.workload, "containers", lambda lab_, state: [(pod, pod.containers[0], dict(record))])
    monkeypatch.setattr(wr.workload, "why_replace", lambda crec, argv, netns: FAILED_START)
    w._file_changed()
    assert lines == ["saw: t.yaml changed; did: could not start container b/bad"], lines
    assert w.pending == ["container b/bad failed to start"]  # the loop's next round: at once
    due, _lines, _ = w._held(lab, None)  # type: ignore[arg-type]
    assert due == ["container b/bad failed to start"]  # and that round restarts it
    assert w.hold(pod, pod.containers[0], dict(record), FAILED_START) is None  # (its repair's start)
    assert w.failed_starts(lab, None) == []  # type: ignore[arg-type]  # tried: its back-off holds it now
    _due, _lines, next_due = w._held(lab, None)  # type: ignore[arg-type]
    assert next_due == now[0] + 10.0
