"""A worker: one epoll loop that sends a share of the run's units, all their probes in flight at once.

Units start while their neighbour entries fit the worker's budget (budget.py)
and while fewer than MAX_INFLIGHT probes are out; a unit's phases run one
after the other, and its entries are released when its last phase is done.
A connection (TCP, Service UDP) holds a socket of its own while in flight: those beyond what the open-files limit
leaves (room.py) wait their turn, sent as earlier ones close (no new unit starts meanwhile).
Every wait is bounded: each probe has a deadline (``timeout`` after it was
sent, then it is a timeout), and the worker stops at a hard deadline (what is
left is "skipped"). The transports (transports.py) send and read; the worker
keeps the results.

Stopped (SIGTERM from the agent, a terminal's SIGINT: the agent's handlers, which a forked worker keeps), a
worker closes its sockets and returns what it has: the observations so far and the source address and port of
each connection it had not judged, whose conntrack entries the agent then deletes (untrack.py).
"""

from __future__ import annotations

import select
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from netlab.kernel import netns as nsmod
from netlab.probe import neighbours as nb
from netlab.probe import room
from netlab.probe.budget import Budget
from netlab.probe.held import HeldEntries
from netlab.probe.sockets import NsSockets, bind_service_port, tcp_socket, udp_socket
from netlab.probe.tasks import Job, Observation, Task, Unit
from netlab.probe.transports import UNREACH, Icmp, ServiceUdp, Tcp, Udp, errname

MAX_INFLIGHT = 2048  # probes in flight at once per worker (sockets, queued packets)
SAMPLE_EVERY = 0.02  # seconds between two reads of the machine's neighbour-table counters


@dataclass
class WorkerResult:
    obs: dict[int, Observation]
    stats: dict  # deleted, peak_entries, peak_live (and seeded, when pairs were seeded)
    unfinished: dict[int, str] = field(default_factory=dict)  # stopped: task id -> "ip:port" of an open flow


class _Running:
    __slots__ = ("unit", "phase", "pending")

    def __init__(self, unit: Unit):
        self.unit, self.phase, self.pending = unit, 0, 0


class Worker:
    """Sends a share of the units, within a share of the neighbour budget."""

    def __init__(self, job: Job, units: list[Unit], budget: int, template: bytes,
                 nonce: bytes, id_base: int, snapshot: dict[str, set[tuple[int, str]]],
                 macs: dict[str, bytes | None], held: HeldEntries | None = None):
        self.job, self.units = job, units
        self.tasks = {t.id: t for t in job.tasks}
        self.now = time.monotonic
        self.home_fd = nsmod.current_fd()
        self.ns: dict[str, NsSockets] = {}
        self.ep = select.epoll()
        self.handlers: dict[int, Callable[[int], None]] = {}  # fd -> what to do when it is ready
        self.obs: dict[int, Observation] = {}
        self.sent_at: dict[int, float] = {}
        self.running_of: dict[int, _Running] = {}
        self.phase_done: list[_Running] = []
        self.deadlines: deque[tuple[float, int]] = deque()
        self.inflight = 0
        self.peak_entries = self.peak_live = 0
        self.budget = Budget(budget, snapshot, macs, self.sockets, held)
        self.udp = Udp(self)
        self.icmp = Icmp(self, template, nonce, id_base, self.udp)
        self.service_udp = ServiceUdp(self)
        self.tcp = Tcp(self)
        # Connections' sockets held at once: what the open-files limit leaves once the namespaces are open
        self.room = room.socket_room(len(_namespaces(units, self.tasks)))
        self.deferred: deque[Task] = deque()  # connections waiting for room, in the order they were due

    # --- sockets and the epoll set ---------------------------------------------------

    def sockets(self, name: str) -> NsSockets:
        """The sockets of namespace ``name``, opened on first use."""
        ns = self.ns.get(name)
        if ns is None:
            ns = self.ns[name] = NsSockets(name, len(self.ns), self.home_fd)
            ns.nl.sock.setblocking(False)
            self.watch(ns.raw.fileno(), select.EPOLLIN, lambda ev: self.icmp.read(ns))
            self.watch(ns.udp.fileno(), select.EPOLLIN, lambda ev: self.udp.read(ns))
        return ns

    def watch(self, fd: int, events: int, handler: Callable[[int], None]) -> None:
        self.ep.register(fd, events)
        self.handlers[fd] = handler

    def modify(self, fd: int, events: int) -> None:
        self.ep.modify(fd, events)

    def unwatch(self, fd: int) -> None:
        self.handlers.pop(fd, None)
        try:
            self.ep.unregister(fd)
        except (OSError, ValueError):
            pass

    # --- the loop ---------------------------------------------------------------------

    def run(self) -> WorkerResult:
        queue = deque(self.units)
        total = sum(len(p) for u in self.units for p in u.phases)
        hard_deadline = self.now() + 60 + self.job.timeout * (2 + total / 50)
        next_sample = 0.0
        budget = self.budget
        while len(self.obs) < total:
            now = self.now()
            if now > hard_deadline:
                break
            # Start units while their new neighbour entries fit the budget (at least one runs).
            while queue and not self.deferred and self.inflight < MAX_INFLIGHT and budget.admits(queue[0]):
                unit = queue.popleft()
                budget.hold(unit)
                self._start_phase(_Running(unit))
            self.peak_live = max(self.peak_live, len(budget.live))
            if now >= next_sample:
                s = nb.table_stats()
                if s:
                    self.peak_entries = max(self.peak_entries, s.entries)
                next_sample = now + SAMPLE_EVERY
            wait = 0.05
            if self.deadlines:
                wait = min(wait, max(0.0, self.deadlines[0][0] - now))
            for fd, ev in self.ep.poll(wait, 1024):
                handler = self.handlers.get(fd)
                if handler is not None:
                    handler(ev)
            now = self.now()
            while self.deadlines and self.deadlines[0][0] <= now:
                _, tid = self.deadlines.popleft()
                if tid not in self.obs:
                    self._expire(tid)
            self._send_deferred()
            self._advance()
        for tid in list(self.sent_at):
            if tid not in self.obs:
                self._expire(tid)
        for u in self.units:
            for phase in u.phases:
                for tid in phase:
                    if tid not in self.obs:
                        self.obs[tid] = Observation(outcome="skipped", detail="not sent: the run hit its time limit")
        for ns in self.ns.values():
            ns.close()
        return WorkerResult(self.obs, self.stats())

    def stats(self) -> dict:
        stats = {"deleted": self.budget.deleted, "peak_entries": self.peak_entries, "peak_live": self.peak_live}
        if self.budget.seeded_total:
            stats["seeded"] = self.budget.seeded_total
        return stats

    def unfinished(self) -> dict[int, str]:
        """Task id -> "ip:port" of each TCP and Service UDP flow sent and not judged yet: a stopped run's
        connections, whose conntrack entries (a SYN_SENT one: two minutes) outlive the socket."""
        out = {}
        for flows in (self.tcp.flows, self.service_udp.flows):
            for flow in flows.values():
                local = flow.local
                if local is None:  # stopped between its connect and the kernel's answer of where from
                    try:
                        local = "%s:%d" % flow.sock.getsockname()
                    except OSError:
                        continue
                out[flow.task.id] = local
        return out

    def close(self) -> None:
        """Every socket, the connections' too (an interrupted run: closed now, before the agent's sweep, not at
        its exit, where their last packets, a TCP connection's RST, would resolve the neighbours again)."""
        for flows in (self.tcp.flows, self.service_udp.flows):
            for flow in flows.values():
                flow.sock.close()
            flows.clear()
        for ns in self.ns.values():
            ns.close()
        self.ep.close()

    def _advance(self) -> None:
        """Units whose phase completed: start the next phase, or release their neighbour entries."""
        done, self.phase_done = self.phase_done, []
        for run in done:
            run.phase += 1
            if run.phase < len(run.unit.phases):
                self._start_phase(run)
            else:
                self.budget.release(run.unit)

    # --- sending -----------------------------------------------------------------------

    def _start_phase(self, run: _Running) -> None:
        ids = run.unit.phases[run.phase]
        run.pending = len(ids)
        if not ids:
            self.phase_done.append(run)
            return
        by_src: dict[str, list[Task]] = {}
        for i in ids:
            t = self.tasks[i]
            self.running_of[t.id] = run
            by_src.setdefault(t.src, []).append(t)
        for src, group in by_src.items():
            self._send(src, group)

    def _flows(self) -> int:
        """Connections' sockets open now."""
        return len(self.tcp.flows) + len(self.service_udp.flows)

    def _send_deferred(self) -> None:
        """Connections that waited for room, as far as the room goes now."""
        while self.deferred:
            fit = self.room - self._flows()
            if fit <= 0:
                return
            by_src: dict[str, list[Task]] = {}
            for _ in range(min(fit, len(self.deferred))):
                t = self.deferred.popleft()
                by_src.setdefault(t.src, []).append(t)
            for src, group in by_src.items():
                self._send(src, group, waited=True)

    def _send(self, src: str, group: list[Task], waited: bool = False) -> None:
        """Send ``group``, probes of one source; its connections that find no room (or others waiting before
        them, unless they are those: ``waited``) wait in ``deferred``."""
        ns = self.sockets(src)
        own = [t for t in group if t.proto == "tcp" or (t.proto == "udp" and t.service)]
        fit = max(0, self.room - self._flows()) if waited or not self.deferred else 0
        if len(own) > fit:
            later = own[fit:]
            self.deferred.extend(later)
            wait = {t.id for t in later}
            own = own[:fit]
            group = [t for t in group if t.id not in wait]
        socks = {}
        if own:
            with ns.held:  # one trip into the namespace for all the sockets of the group
                for t in own:
                    s = socks[t.id] = tcp_socket() if t.proto == "tcp" else udp_socket()
                    if t.service:
                        bind_service_port(s)
        for t in group:
            self.inflight += 1
            now = self.now()
            self.sent_at[t.id] = now
            self.deadlines.append((now + self.job.timeout, t.id))
            try:
                if t.proto in ("icmp", "mtu"):
                    self.icmp.send(ns, t)
                elif t.proto == "udp" and t.service:
                    self.service_udp.send(t, socks[t.id])
                elif t.proto == "udp":
                    self.udp.send(ns, t)
                else:
                    self.tcp.send(t, socks[t.id])
            except OSError as exc:
                self.finish(t.id, Observation(outcome="unreachable" if exc.errno in UNREACH else "error",
                                              detail=f"{errname(exc)} at the sender"))

    # --- completion ---------------------------------------------------------------------

    def _expire(self, tid: int) -> None:
        if not self.tcp.expire(tid) and not self.service_udp.expire(tid):
            self.finish(tid, Observation(outcome="timeout"))

    def finish(self, tid: int, obs: Observation) -> None:
        if tid in self.obs:
            return
        self.obs[tid] = obs
        self.inflight -= 1
        run = self.running_of.pop(tid, None)
        if run is not None:
            run.pending -= 1
            if run.pending == 0:
                self.phase_done.append(run)


def _namespaces(units: list[Unit], tasks: dict[int, Task]) -> set[str]:
    """The namespaces whose sockets a worker opens for ``units``: their sources', and where their neighbour
    entries are (budget.py)."""
    names = {tasks[i].src for u in units for phase in u.phases for i in phase}
    return names | {e.netns for u in units for e in u.entries} | {s.netns for u in units for s in u.seed}


def work(job: Job, units: list[Unit], budget: int, template: bytes, nonce: bytes,
         id_base: int, snapshot: dict[str, set[tuple[int, str]]], macs: dict[str, bytes | None],
         held: HeldEntries | None = None) -> WorkerResult:
    """A worker's whole life, in a forked child (agent.py): its own sockets, its share of the units. Stopped, its
    sockets closed and what it had sent, judged or not (``unfinished``), for the agent to clean up after."""
    worker = Worker(job, units, budget, template, nonce, id_base, snapshot, macs, held)
    try:
        return worker.run()
    except KeyboardInterrupt:  # agent.run_job's handlers (the first signal; the next ones are ignored)
        unfinished = worker.unfinished()
        worker.close()
        return WorkerResult(worker.obs, worker.stats(), unfinished)

