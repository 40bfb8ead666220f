"""The probe's connections fit the open-files limit (QA q50 3): a worker holds at most the sockets its limit leaves,
sends the rest as earlier ones close, and an EMFILE of the agent is the limit's one line, exit 3.

Before, a Service's distribution check opened its 200 connections at once, and under `ulimit -n 100` (which the
doctor accepted) the run failed with "the probe agent failed: OSError: [Errno 24] Too many open files".
"""

from __future__ import annotations

import contextlib
import errno
import socket

import pytest

from netlab.errors import EXIT_ENVIRONMENT, EnvironmentNotReady
from netlab.probe import room, runner
from netlab.probe import worker as wmod
from netlab.probe.tasks import Job, Task, Unit


def test_the_room_is_the_limit_less_what_is_held_the_namespaces_to_open_and_a_margin():
    assert room.socket_room(6, held=24, limit=106) == 106 - 24 - 6 * room.NS_FILES - room.MARGIN
    assert room.socket_room(6, held=60, limit=64) == 1  # one at least: one that does not fit says the limit
    assert room.open_now() > 0


class FakeNs:
    """A namespace's sockets without a namespace: real descriptors for the epoll set, nothing sent."""

    def __init__(self, name, idx, home_fd):
        self.name, self.idx, self.held = name, idx, contextlib.nullcontext()
        self.raw, self.udp = socket.socketpair()
        self.nl = type("Nl", (), {"sock": self.raw})()

    def close(self):
        self.raw.close()
        self.udp.close()


class FakeTcp:
    """Connections that answer at their deadline; counts how many are open at once."""

    def __init__(self, w):
        self.w, self.flows, self.by_task, self.peak = w, {}, {}, 0

    def send(self, t, s):
        self.flows[t.id] = s
        self.by_task[t.id] = t.id
        self.peak = max(self.peak, len(self.flows) + len(self.w.service_udp.flows))

    def expire(self, tid):
        if self.flows.pop(tid, None) is None:
            return False
        self.by_task.pop(tid)
        self.w.finish(tid, wmod.Observation(outcome="reply"))
        return True


def test_a_worker_holds_no_more_connections_than_its_room_and_sends_them_all(monkeypatch):
    monkeypatch.setattr(wmod, "NsSockets", FakeNs)
    monkeypatch.setattr(wmod, "Tcp", FakeTcp)
    monkeypatch.setattr(wmod, "tcp_socket", object)
    monkeypatch.setattr(wmod, "bind_service_port", lambda s: None)
    monkeypatch.setattr(room, "socket_room", lambda namespaces: 7)
    tasks = [Task(id=i, src="fk-client", dst="10.96.0.20", proto="tcp", port=80, service=True) for i in range(41)]
    ping = Task(id=41, src="fk-client", dst="10.244.1.2", proto="icmp")
    sent = []
    monkeypatch.setattr(wmod.Icmp, "send", lambda self, ns, t: sent.append(t.id))
    units = [Unit(phases=[[0], list(range(1, 41))]), Unit(phases=[[41]])]  # a distribution check, then a ping
    job = Job(tasks=tasks + [ping], units=units, home="fk-underlay", timeout=0.001)
    w = wmod.Worker(job, units, 100, b"x" * 16, b"n" * 8, 0, {}, {})
    res = w.run()
    assert w.tcp.peak == 7  # at most the room at once
    assert sorted(res.obs) == list(range(42)) and [res.obs[i].outcome for i in range(41)] == ["reply"] * 41
    assert sent == [41] and res.obs[41].outcome == "timeout" and not w.deferred  # the ping went, after them


class Failed:
    what = "the probe agent"

    def result(self, timeout):
        raise OSError(errno.EMFILE, "Too many open files")


def test_an_emfile_of_the_agent_is_the_limits_one_line_exit_3():
    with pytest.raises(EnvironmentNotReady) as caught:
        runner._fork_agent(Job(tasks=[], units=[], home="fk-underlay"), 10, child=Failed())  # type: ignore[arg-type]
    text = str(caught.value)
    assert caught.value.exit_code == EXIT_ENVIRONMENT and "\n" not in text
    assert "Too many open files (EMFILE)" in text and "`ulimit -n` now" in text and "ulimit -n 1024" in text, text
    assert "OSError" not in text, text
