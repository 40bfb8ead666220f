"""The watcher's start: it listens (sockets subscribed, then the links dumped), then compares the lab with the plan,
and a difference found then is the first round's to repair at once. It dropped what it heard until the links stood
still (up to 2 s) as its apply's echo, and compared nothing: a change made meanwhile waited for the periodic check.
The root test (a real change held at the listener's test hook) is tests/integration/test_watch_first_check.py."""

from __future__ import annotations

import errno
import types

import pytest

from netlab.api import watch as watch_mod
from netlab.api import watch_repair
from netlab.api.watch import FIRST_CHECK, Watcher
from netlab.kernel.base import KernelError
from netlab.lab.up import UpResult

CHANGE = "different: link veth1 in fk-n1 (master none (want cni0))"


def _started(monkeypatch, changed_as_it_listens: bool, unreadable: bool = False
             ) -> tuple[Watcher, list[str], list[str]]:
    steps: list[str] = []
    kernel = {"drift": []}
    monkeypatch.setattr(watch_mod, "become_subreaper", lambda: None)
    monkeypatch.setattr(watch_mod, "stale", types.SimpleNamespace(watching=lambda name, on=True: None))
    monkeypatch.setattr(watch_mod, "load", lambda path: types.SimpleNamespace(lab=None, source=path, origin=path))
    monkeypatch.setattr(watch_mod, "load_state", lambda name: types.SimpleNamespace(name=name))
    monkeypatch.setattr(watch_mod, "served_lab", lambda state: None)
    monkeypatch.setattr(watch_mod, "lab_lock_stamp", lambda name: None)
    monkeypatch.setattr(watch_mod.lifecycle, "up",
                        lambda lab, source, features: steps.append("apply") or UpResult("fk"))

    def relisten(self, lab, made, own=()):
        steps.append("listen")
        self.listener = types.SimpleNamespace(drain=lambda: [])
        if changed_as_it_listens:  # a hand's change between the subscription and the dump (or just before)
            kernel["drift"] = [CHANGE]
        return []

    def drift(state):
        steps.append("compare")
        if unreadable:  # a namespace deleted as it is read: the kernel layer's error, no NetlabError
            raise KernelError(None, errno.ENOENT, "namespace fk-n1 not found")
        return list(kernel["drift"])

    monkeypatch.setattr(Watcher, "_relisten", relisten)
    monkeypatch.setattr(watch_repair, "drift", drift)
    monkeypatch.setattr(Watcher, "exited_before", lambda self: {})
    monkeypatch.setattr(Watcher, "held_before", lambda self, lab, state, before: "")
    monkeypatch.setattr(Watcher, "failed_starts", lambda self, lab, state: [])
    monkeypatch.setattr(Watcher, "_neighbours", lambda self, lab, was, done: "")  # test_watch_budget_warning.py
    # what it heard is no longer waited for nor read away before it says it watches
    monkeypatch.setattr(watch_mod.time, "sleep", lambda s: pytest.fail("start() slept"))
    lines: list[str] = []
    w = Watcher("/x/fk.yaml", "fk", lines.append)
    w.kids = types.SimpleNamespace(listen_for_exits=lambda: None, track=lambda lab, state: None)
    w.writes = types.SimpleNamespace(watch=lambda path: None)
    monkeypatch.setattr(Watcher, "_file_id", lambda self: None)
    w.start()
    return w, steps, lines


def test_a_change_made_as_it_listens_is_the_first_rounds_at_once(monkeypatch):
    w, steps, lines = _started(monkeypatch, changed_as_it_listens=True)
    assert steps == ["apply", "listen", "compare"]  # compared once it listens: the change is found
    assert w.pending == [FIRST_CHECK]  # the loop's first round runs at once (no wait), reads the lab and repairs
    [line] = lines
    assert line.endswith("; watching"), line


def test_a_lab_as_planned_once_it_listens_waits_for_notifications(monkeypatch):
    w, steps, lines = _started(monkeypatch, changed_as_it_listens=False)
    assert steps == ["apply", "listen", "compare"]
    assert w.pending == []



def test_a_lab_it_cannot_read_once_it_listens_is_the_first_rounds_to_say(monkeypatch):
    """A read that fails does not end the watcher before it watches: the first round reads the lab again at once,
    and its line says why that failed (a round's check that fails is said and retried after its back-off)."""
    w, steps, lines = _started(monkeypatch, changed_as_it_listens=False, unreadable=True)
    assert steps == ["apply", "listen", "compare"]
    assert w.pending == [FIRST_CHECK] and lines[-1].endswith("; watching"), (w.pending, lines)
