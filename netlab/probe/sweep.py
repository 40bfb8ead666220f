"""The neighbour entries a probe run made, swept from the lab's namespaces (agent.py): at the end of a whole run, and
an interrupted run's until its late packets are all in.

Every dynamic neighbour entry the run created that is still there is swept: those there before it (the
snapshot the agent read at its start) are left alone (budget.py), and so is what the lab holds itself (PERMANENT
entries but those of the run's seeded pairs).

Interrupted (the parent's Ctrl-C or time limit reaches the agent as SIGTERM, netlab.kernel.child; a terminal's
Ctrl-C as SIGINT), or failed, the agent still stops its workers and sweeps, in the grace the parent gives it. It lets
the run's packets still on their way land first, deleting nothing (:meth:`Sweeper.settle`: a loaded machine's kernel
delivers a packet sent before the stop late, and the lab's echo server answers late; with the run's entries still
there, they make none), then sweeps; then it deletes each entry the kernel reports the run's late packets make (an
answer that comes after the sweep resolves again: neigh_watch.py), until nothing of the run was reported for QUIET,
no packet waits in the CPUs' backlogs and no request of the run in the lab's servers' sockets, and a last sweep
finds nothing. Before, it was SIGKILLed, and the run's entries (hundreds in a lab of 60 pods) stayed in the
machine's one table. A later run leaves alone what was there before it, so they stayed until the kernel's garbage
collector got to them, and the half-done resolutions among them failed that run's first packets.
"""

from __future__ import annotations

import time
from typing import Callable

from netlab.kernel import netlink, rtnl, rtnl_parse
from netlab.probe import neigh_watch as nb_watch
from netlab.probe import neighbours as nb
from netlab.probe.neigh_watch import NeighWatch
from netlab.probe.sockets import NsSockets
from netlab.probe.tasks import Job

RESOLVING_POLL = 0.005  # s: between two looks at a namespace's resolutions under way
RESOLVING_WAIT = 0.25  # s: at most, an interrupted run's resolutions under way end before its first sweep
QUIET = 0.3  # s: with nothing new to sweep, an interrupted run's packets have all arrived
LOOK_AGAIN = 0.05  # s: between two looks at the queues while they hold packets or requests of the run
AFTER_SETTLE = 0.45  # s: an interrupted run's packets land until this long before its end, then its sweeps

Snapshot = dict[str, set[tuple[int, str]]]  # netns -> (ifindex, ip) of the entries there before the run


class Sweeper:
    """The run's neighbour entries in the namespaces it sweeps (``job.sweep``): ``snapshot`` holds those there before
    it; ``ns`` opens a namespace's sockets (kept in ``opened``, the agent's)."""

    def __init__(self, job: Job, snapshot: Snapshot, ns: Callable[[str], NsSockets], opened: dict[str, NsSockets]):
        self.job = job
        self.snapshot = snapshot
        self._ns = ns
        self.opened = opened
        self.took = 0.0  # s: the longest sweep so far

    def interrupted(self, stop_at: float, untrack: Callable[[], object]) -> None:
        """A stopped run's clean-up, until ``stop_at`` at most: its flows' conntrack entries (``untrack``), then its
        packets still on their way land (:meth:`settle`), then a first sweep and what comes late
        (:meth:`sweep_until_quiet`: a second sweep once nothing came for QUIET, a last one ending by ``stop_at``)."""
        with self.watch() as watch:  # before anything: what the run's late packets make is reported
            untrack()
            self.settle(watch, stop_at - AFTER_SETTLE)
            self.sweep(until=min(stop_at, time.monotonic() + RESOLVING_WAIT))
            self.sweep_until_quiet(stop_at, watch)

    def settle(self, watch: NeighWatch, until: float) -> None:
        """Wait, deleting nothing, until the stopped run's packets have landed: none waits in the CPUs' backlogs,
        no request of the run in the lab's servers, and the kernel reported no entry of the run made or changed
        for QUIET after such a look; or until ``until``.

        The first sweep came at once, before: each packet still on its way then (an echo request in a backlog, a
        request the lab's echo server, run late by a loaded machine, had still to answer: hundreds of them in a
        lab of 40 pods) found its neighbours gone, and its answer's ARP exchange made a pair of entries again
        (REACHABLE in the asker, STALE in the answerer), each to be heard and deleted; the server answered on after
        the agent's grace, and its last pairs stayed (CI: a REACHABLE and a STALE entry between two pods of a
        node). Landing before the sweep, they find the run's entries there and make none."""
        while time.monotonic() < until:
            heard: list[int] = []

            def hear() -> None:
                heard.append(self._ours(watch.wait(0)))

            lost, watch.lost = watch.lost, False  # reports dropped: something came
            if nb_watch.backlog() or self._waiting(hear, until) or any(heard) or lost:
                self._ours(watch.wait(max(0.0, min(LOOK_AGAIN, until - time.monotonic()))))
                continue
            end = min(time.monotonic() + QUIET, until)  # a clean look: quiet once nothing of the run is reported
            while (left := end - time.monotonic()) > 0:
                if self._ours(watch.wait(left)):
                    break  # something of the run still moves: look again
            else:
                return

    def _ours(self, reports: list[nb_watch.Reported]) -> int:
        """How many of ``reports`` are of entries of the run (made or changed: not the lab's own, nor one there
        before the run, nor a deletion)."""
        return sum(1 for r in reports if not r.gone and nb.dynamic(r.entry)
                   and (r.entry.index, r.entry.dst) not in self.snapshot.get(r.netns, ()))

    def _seeded(self) -> dict[str, set[tuple[int, str]]]:
        """netns -> (ifindex, ip) of the PERMANENT entries the job's seeded pairs make (budget.py)."""
        out: dict[str, set[tuple[int, str]]] = {}
        for unit in self.job.units:
            for seed in unit.seed:
                if seed.netns in self.opened:  # every namespace swept was read at the start
                    idx = self.opened[seed.netns].index(seed.ifname)
                    if idx is not None:
                        out.setdefault(seed.netns, set()).add((idx, seed.ip))
        return out

    def sweep(self, until: float | None = None) -> int:
        """Delete dynamic entries the run created in the lab's namespaces (not in the snapshot), and the
        PERMANENT ones of its seeded pairs (a pair interrupted before its end still holds them); how many.

        With ``until`` (an interrupted run: a time.monotonic()), first wait, until then at most, for the
        resolutions the run began in a namespace to end. Deleting an INCOMPLETE entry drops the packets queued
        behind it: a pod's SYN-ACK to a probe's SYN, which TCP sends again a second later, when the agent is
        gone; the ARP exchange in front of it then leaves an entry in each pod."""
        snapshot = self.snapshot
        t0 = time.monotonic()
        waited = [0.0]  # s: of it, the wait for resolutions under way
        seeded = self._seeded()
        swept = 0
        for name in self.job.sweep:
            if name not in snapshot:
                continue
            conn = self._ns(name).nl
            netlink.drain(conn.sock)
            entries = self.settled(conn, snapshot[name], until, waited)
            if entries is None:
                continue  # no answer: nothing known to sweep there
            for n in entries:
                ours = nb.dynamic(n) or (n.index, n.dst) in seeded.get(name, ())
                if ours and (n.index, n.dst) not in snapshot[name]:
                    conn.sock.send(rtnl.neigh_del(n.index, n.dst))
                    swept += 1
            netlink.drain(conn.sock)
        self.took = max(self.took, time.monotonic() - t0 - waited[0])
        return swept

    def watch(self) -> NeighWatch:
        """The kernel's reports of the neighbour entries of every namespace swept (neigh_watch.py)."""
        opened = {}
        for name in (n for n in self.job.sweep if n in self.snapshot):
            try:
                opened[name] = self._ns(name).neigh_reports()
            except OSError:
                continue  # the namespace is gone: nothing to sweep there
        return NeighWatch(opened)

    def sweep_until_quiet(self, stop_at: float, watch: NeighWatch) -> None:
        """Delete each entry of the run the kernel reports (``watch``, joined before the first sweep), until
        QUIET has passed with none reported, and then no packet waits in the CPUs' backlogs, no request of the
        run in the lab's servers, and a last sweep finds nothing; or until ``stop_at``.

        A packet of the run still in the kernel's queues when the agent stopped (a busy machine runs the veths'
        receive work late), or an answer the lab's echo server, run late, sends after the sweeps (:meth:`_waiting`),
        needs its neighbour again: the ARP exchange leaves an entry in each pod (neigh_watch.py). Sweeps alone
        looked at each namespace once a round, and a loaded machine's round took the whole grace: an entry made
        after a namespace's look stayed. A reported entry still resolving (INCOMPLETE) is deleted once resolved,
        or RESOLVING_WAIT after it was reported (deleting it drops the packets queued behind it: see sweep).

        The last sweep begins early enough to end by ``stop_at``: a loaded machine's sweep of 40 pods took 0.17 s, and
        the parent's SIGKILL, SWEEP_MARGIN after ``stop_at``, came in the middle of it."""
        resolving: dict[tuple[str, int, str], float] = {}  # (netns, ifindex, ip) -> when to delete it anyway

        def end() -> float:  # the last sweep begins as long before stop_at as the longest sweep took
            return stop_at - self.took

        active = time.monotonic()  # when the run's last entry was reported, or something of it was found
        looked = False  # at the queues and the servers, since ``active``
        next_look = active
        while True:
            if time.monotonic() >= end():  # what was reported, and the kernel's lists, once more (milliseconds)
                self._reported(watch, resolving, 0, end())
                self.sweep()
                return
            if not looked and not resolving and time.monotonic() >= next_look:
                # As the quiet wait begins, hearing reports between two namespaces' looks at their servers (a look
                # walks the machine's sockets: a loaded machine's, in 40 pods, took the whole grace).
                heard = []

                def hear() -> None:
                    heard.append(self._reported(watch, resolving, 0, end()))

                lost, watch.lost = watch.lost, False  # reports dropped: the next clean look's sweep reads all
                looked = not (nb_watch.backlog() or self._waiting(hear, end()) or any(heard) or lost
                              or self.sweep(until=min(end(), time.monotonic() + RESOLVING_WAIT)))
                if not looked:  # packets or requests of the run still to come: look again in a while
                    active = time.monotonic()
                    next_look = active + LOOK_AGAIN
                continue
            now = time.monotonic()
            if looked and now - active >= QUIET and not resolving:
                # The kernel's own lists last: an entry made and never reported (an INCOMPLETE one).
                if not (self._reported(watch, resolving, 0, end()) or self.sweep()):
                    return
                active, looked = time.monotonic(), False
                continue
            ahead = [active + QUIET] if looked else [] if resolving else [next_look]  # quiet, or the next look
            due = min([end(), *resolving.values(), *ahead])
            if self._reported(watch, resolving, due - now, end()):
                active, looked = time.monotonic(), False
            for key, until in list(resolving.items()):
                if until <= time.monotonic():  # nobody answers for it, or the grace ends: it goes now
                    del resolving[key]
                    self._delete(*key)
                    active, looked = time.monotonic(), False

    def _reported(self, watch: NeighWatch, resolving: dict[tuple[str, int, str], float], timeout: float,
                  stop_at: float) -> int:
        """Delete each entry of the run the kernel reports within ``timeout`` (those still resolving once they
        are resolved: ``resolving``); how many it reported."""
        ours = 0
        for r in watch.wait(timeout):
            n = r.entry
            key = (r.netns, n.index, n.dst or "")
            if r.gone:
                resolving.pop(key, None)
                continue
            if not nb.dynamic(n) or (n.index, n.dst) in self.snapshot.get(r.netns, ()):
                continue  # the lab's own, or there before the run
            ours += 1
            if n.state & rtnl.NUD_INCOMPLETE:
                resolving.setdefault(key, min(stop_at, time.monotonic() + RESOLVING_WAIT))
            else:
                resolving.pop(key, None)
                self._delete(*key)
        return ours

    def _delete(self, netns: str, index: int, dst: str) -> None:
        conn = self._ns(netns).nl
        conn.sock.send(rtnl.neigh_del(index, dst))
        netlink.drain(conn.sock)  # the kernel's refusal, when the entry went meanwhile

    def _waiting(self, between: Callable[[], object] | None = None, until: float | None = None) -> int:
        """What the lab's servers on the run's ports hold unanswered, in every namespace swept (datagrams' bytes
        and connections: NsSockets.waiting); ``between`` is called after each namespace's look, and the look
        stops at ``until`` (then at least 1: not known to be none)."""
        ports = {t.port for t in self.job.tasks if t.port} | {p for t in self.job.tasks for _, p in t.behind}
        held = 0
        for name in self.job.sweep:
            if until is not None and time.monotonic() >= until:
                return held or 1
            if name in self.opened:
                held += self.opened[name].waiting(ports)
                if between is not None:
                    between()
        return held

    @staticmethod
    def settled(conn: netlink.Conn, known: set[tuple[int, str]], until: float | None,
                waited: list[float] | None = None) -> list[rtnl_parse.NeighMsg] | None:
        """The namespace's neighbour entries, once none the run made is INCOMPLETE or ``until`` has come
        (None: at once); None when the kernel does not answer. An address nobody answers for stays INCOMPLETE
        for 3 s (then FAILED): an interrupted run waits for it until ``until`` (adding the time to ``waited``)."""
        while True:
            t0 = time.monotonic()
            try:
                entries = nb.dump(conn)
            except OSError:
                return None
            if until is None or time.monotonic() >= until or not any(
                    n.state & rtnl.NUD_INCOMPLETE and nb.dynamic(n) and (n.index, n.dst) not in known
                    for n in entries):
                return entries
            time.sleep(RESOLVING_POLL)
            if waited is not None:  # this dump and the pause after it: the next dump is the one that counts
                waited[0] += time.monotonic() - t0
