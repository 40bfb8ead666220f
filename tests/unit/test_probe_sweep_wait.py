"""An interrupted probe's sweep waits for the resolutions its run began (sweep.py: Sweeper.settled).

Deleting an INCOMPLETE neighbour entry drops the packets queued behind it: a pod's SYN-ACK to a probe's SYN,
which TCP sends again a second later, when the agent has gone, and the ARP exchange in front of it leaves an
entry in each pod. The kernel side (no entry of an interrupted run is left) is
tests/integration/test_probe.py::test_ctrl_c_during_a_probe_leaves_no_neighbour_entry_of_it; here the wait:
what it waits for, what it does not, and that it ends. The agent's clock is a fake one here (:class:`Clock`):
its sleeps move it on, so the waits are counted as the agent counts them, whatever the machine's load. Its
times are sums of powers of two (a poll 1/1024 s): exact, as a float adds them.
"""

from __future__ import annotations

from netlab.kernel import rtnl
from netlab.kernel.rtnl_parse import NeighMsg
from netlab.probe import neighbours as nb
from netlab.probe import sweep


POLL = 1 / 1024


class Clock:
    """The agent's time module: monotonic() reads a fake clock, and sleep() moves it on by what was asked."""

    def __init__(self) -> None:
        self.now = 1024.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def clock(monkeypatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(sweep, "time", fake)
    return fake


def entry(dst: str, state: int, index: int = 2) -> NeighMsg:
    return NeighMsg(family=2, index=index, dst=dst, lladdr=None, state=state, flags=0, master=None)


def dumps(monkeypatch, *answers: list[NeighMsg]) -> list[int]:
    """nb.dump answers each of ``answers`` in turn, then the last one again; the list counts the dumps."""
    count = [0]

    def dump(conn):
        count[0] += 1
        return answers[min(count[0], len(answers)) - 1]

    monkeypatch.setattr(nb, "dump", dump)
    monkeypatch.setattr(sweep, "RESOLVING_POLL", POLL)
    clock(monkeypatch)
    return count


def test_it_waits_until_the_runs_resolution_has_ended(monkeypatch):
    resolved = [entry("10.244.0.3", rtnl.NUD_REACHABLE)]
    count = dumps(monkeypatch, [entry("10.244.0.3", rtnl.NUD_INCOMPLETE)],
                  [entry("10.244.0.3", rtnl.NUD_INCOMPLETE)], resolved)
    assert sweep.Sweeper.settled(None, set(), sweep.time.monotonic() + 5) == resolved
    assert count[0] == 3


def test_a_failed_resolution_or_one_the_run_found_is_not_waited_for(monkeypatch):
    found = entry("10.244.0.9", rtnl.NUD_INCOMPLETE)  # in the snapshot: another run's, or a user's ping
    failed = entry("10.244.0.3", rtnl.NUD_FAILED)
    permanent = entry("10.244.0.4", rtnl.NUD_PERMANENT)
    count = dumps(monkeypatch, [found, failed, permanent])
    assert sweep.Sweeper.settled(None, {(2, "10.244.0.9")}, sweep.time.monotonic() + 5) == [found, failed, permanent]
    assert count[0] == 1


def test_it_waits_no_longer_than_until(monkeypatch):
    count = dumps(monkeypatch, [entry("10.244.0.3", rtnl.NUD_INCOMPLETE)])  # an address nobody answers for
    t0 = sweep.time.monotonic()
    got = sweep.Sweeper.settled(None, set(), t0 + 50 * POLL)
    assert got == [entry("10.244.0.3", rtnl.NUD_INCOMPLETE)]
    assert sweep.time.monotonic() - t0 == 50 * POLL
    assert count[0] == 51  # one dump, then one after each of the 50 polls


def test_a_whole_runs_sweep_does_not_wait(monkeypatch):
    count = dumps(monkeypatch, [entry("10.244.0.3", rtnl.NUD_INCOMPLETE)])
    assert sweep.Sweeper.settled(None, set(), None) == [entry("10.244.0.3", rtnl.NUD_INCOMPLETE)]
    assert count[0] == 1


def test_a_namespace_that_does_not_answer_is_left(monkeypatch):
    def dump(conn):
        raise OSError("gone")

    monkeypatch.setattr(nb, "dump", dump)
    assert sweep.Sweeper.settled(None, set(), clock(monkeypatch).monotonic() + 5) is None


# What the interrupted agent does after its first sweep (reports, looks, QUIET, the parent's kill):
# test_probe_sweep_reports.py.
