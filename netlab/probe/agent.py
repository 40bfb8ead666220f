"""The probing agent: a forked child that sends every probe of a run, all in flight at once.

How it works, and why (figures from this project's 2-core VM, 50 pods on one
bridge, 2,450 ICMP probes):

- The agent first joins one of the lab's namespaces (the underlay). Every
  socket it uses is opened inside a lab namespace (sockets.py), so no probe
  can leave the lab. Packets are written and read with ``struct`` (icmp.py):
  no packet library to load.
- Read-only set-up first: the neighbour entries each namespace holds before
  the run (never deleted, see budget.py), each pod's own address and MAC, the
  source address the kernel picks from a node or host towards each
  destination.
- Both cores: the units (job.py) are dealt to one worker per CPU (worker.py),
  forked from the agent, each with its share of the neighbour
  budget and sockets of its own; the agent is the first worker itself.
  Each worker's observations come back through netlab.kernel.child, within
  the run's time limit.
- Then the clean-up: the conntrack entries of its flows, by exact tuples in the nodes' namespaces and the
  balancer's (untrack.py), and every dynamic neighbour entry the run created that is still there (sweep.py).
- Interrupted (the parent's Ctrl-C or time limit reaches the agent as SIGTERM, netlab.kernel.child; a terminal's
  Ctrl-C as SIGINT), or failed, the agent still stops its workers and cleans up, in the grace the parent gives it
  (sweep.Sweeper.interrupted); SIGTERM makes each worker close its sockets and send back what it had sent
  (worker.py), so the conntrack entries of the connections still open go too.
"""

from __future__ import annotations

import contextlib
import gc
import os
import random
import resource
import signal
import time

from netlab import signals
from netlab.kernel import netns as nsmod
from netlab.kernel.child import Child, ChildError, readable, start_child
from netlab.probe import tasks
from netlab.probe import icmp
from netlab.probe import neighbours as nb
from netlab.probe import untrack as ct
from netlab.probe.held import HeldEntries
from netlab.probe.sockets import NsSockets
from netlab.probe.sweep import Snapshot, Sweeper
from netlab.probe.tasks import Job, Observation, Output, Unit
from netlab.probe.worker import Worker, WorkerResult, work

NONCE_LEN = 8
WORKER_GRACE = 0.3  # s: stopped workers send back what they had sent (out of the parent's tasks.AGENT_GRACE)
SWEEP_MARGIN = 0.15  # s: the interrupted agent's last sweep ends this long before the parent's SIGKILL
MIN_TASKS_PER_WORKER = 600  # below this a second worker costs more than it saves


class Agent:
    """The run: set-up, workers, then the clean-up."""

    def __init__(self, job: Job):
        self.job = job
        self.home_fd = nsmod.current_fd()
        self.setup: dict[str, NsSockets] = {}  # read-only sockets, closed before the end

    def _ns(self, name: str) -> NsSockets:
        if name not in self.setup:
            self.setup[name] = NsSockets(name, len(self.setup), self.home_fd, probing=False)
        return self.setup[name]

    def run(self) -> Output:
        job = self.job
        now = time.monotonic
        t0 = now()
        stats0 = nb.table_stats()
        nonce = os.urandom(NONCE_LEN)
        template = icmp.echo_request(b"netlab" + nonce)

        snapshot: Snapshot = {}
        forgotten = 0
        for name in job.sweep:
            try:
                entries = nb.dump(self._ns(name).nl)
            except OSError:
                continue
            forgotten += nb.forget_unresolved(self._ns(name).nl, entries)
            snapshot[name] = {(n.index, n.dst) for n in entries if not (nb.dynamic(n) and nb.unresolved(n))}
        self_ip = {name: self._ns(name).address_of(ifname) for name, ifname in job.self_ip.items()}
        macs: dict[str, bytes | None] = {}
        if any(u.seed for u in job.units):
            macs = {name: self._ns(name).mac_of(ifname) for name, ifname in job.self_ip.items()}
        route_src: dict[tuple[str, str], str | None] = {}
        by_src: dict[str, list[str]] = {}
        for name, dst in job.route_src:
            by_src.setdefault(name, []).append(dst)
        for name, dsts in by_src.items():
            for dst, src in self._ns(name).sources_for(dsts).items():
                route_src[(name, dst)] = src
        sweeper = Sweeper(job, snapshot, self._ns, self.setup)
        t_setup = now() - t0

        workers = job.workers or max(1, min(os.cpu_count() or 1, 4, len(job.tasks) // MIN_TASKS_PER_WORKER))
        shares: list[list[Unit]] = [[] for _ in range(workers)]
        for i, unit in enumerate(job.units):
            shares[i % workers].append(unit)
        budget = max(8, job.budget // workers)
        # One node's entry for a pod serves every source of it, whichever worker's: counted across them (held.py).
        shared = HeldEntries.of_units(job.units) if workers > 1 else None
        args = (template, nonce, random.randrange(1 << 16), snapshot, macs, shared)
        pending: list[Child] = []  # workers whose result has not been read
        leader: Worker | None = None
        obs: dict[int, Observation] = {}
        unfinished: dict[int, str] = {}  # flows a stopped worker had sent and not judged
        held = contextlib.ExitStack()  # the stop signals dropped for the run's own clean-up (below)
        try:
            for k, share in enumerate(shares[1:], start=1):
                pending.append(start_child(work, (job, share, budget, *args), what=f"probe worker {k}"))
            leader = Worker(job, shares[0], budget, *args)
            mine = leader.run()
            obs, stats = mine.obs, dict(mine.stats)
            limit = 60 + job.timeout * (2 + len(job.tasks) / 50)
            while pending:
                # A stop that comes while the agent waits finds the worker still pending, and gets what it sent
                # (Child.result, stopped, would SIGKILL it).
                if not readable(pending[0].fd, limit):
                    child = pending.pop(0)
                    child.stop()
                    raise RuntimeError(f"{child.what} did not finish within {limit:g} s; killed it")
                try:
                    res: WorkerResult = pending.pop(0).result(timeout=limit)
                except ChildError as exc:  # the agent's own failure, in words (not a timeout of the agent)
                    raise RuntimeError(str(exc)) from None
                obs.update(res.obs)
                unfinished.update(res.unfinished)
                for key in ("deleted", "seeded"):
                    stats[key] = stats.get(key, 0) + res.stats.get(key, 0)
                for key in ("peak_entries", "peak_live"):
                    stats[key] = max(stats[key], res.stats[key])
            # The probes are done: the run's own clean-up below (its flows' conntrack entries, then the neighbour
            # entries it made) runs whole whatever stop signal comes now. One raised in its middle (the parent's
            # SIGTERM to an early agent the run did not claim, a Ctrl-C as the run ends) cut the sweep before it
            # began, and the run's entries stayed in the machine's table. One that came before this line sweeps in
            # the except block below.
            held.enter_context(signals.handled(signals.ignore))
        except BaseException:
            # Stopped (SIGTERM/SIGINT: see run_job) or failed: no worker probes on, and what the run made goes.
            with signals.handled(signals.ignore):  # not SIG_IGN: a second signal may wait to run (_stop)
                stop_at = now() + tasks.AGENT_GRACE - SWEEP_MARGIN  # the parent's SIGKILL comes at AGENT_GRACE
                if leader is not None:
                    obs.update(leader.obs)
                    unfinished.update(leader.unfinished())
                    leader.close()  # now: at the agent's exit, its connections' RSTs would resolve again
                self._stop_workers(pending, obs, unfinished)
                sweeper.interrupted(stop_at, lambda: ct.untrack(job, obs, self_ip, route_src, unfinished))
            raise
        t_probe = now() - t0
        with held:
            stats["untracked"], stats["untracked_udp"] = ct.untrack(job, obs, self_ip, route_src, unfinished)
            stats["swept"], stats["forgotten"] = sweeper.sweep(), forgotten
        for s in self.setup.values():
            s.close()
        if shared is not None:  # every worker is done with it (a stopped run's agent exits: the kernel frees it)
            shared.close()
        stats1 = nb.table_stats()
        if stats0 and stats1:
            stats.update(table_fulls=stats1.table_fulls - stats0.table_fulls,
                         forced_gc_runs=stats1.forced_gc_runs - stats0.forced_gc_runs,
                         entries_before=stats0.entries, entries_after=stats1.entries)
        stats.update(setup_s=round(t_setup, 4), probe_s=round(t_probe, 4),
                     total_s=round(now() - t0, 4), probes=len(job.tasks), units=len(job.units),
                     budget=job.budget, workers=workers)
        return Output(obs, self_ip, route_src, stats)

    @staticmethod
    def _stop_workers(pending: list[Child], obs: dict[int, Observation], unfinished: dict[int, str]) -> None:
        """SIGTERM each worker still at work and read what it had sent, within WORKER_GRACE (together, and
        50 ms each at least: one that answered already is read); one that does not answer in time is SIGKILLed
        (the kernel closes its sockets as it ends)."""
        for child in pending:
            child.interrupt()
        end = time.monotonic() + WORKER_GRACE
        for child in pending:
            try:
                res: WorkerResult = child.result(timeout=max(0.05, end - time.monotonic()))
            except Exception:  # noqa: BLE001 - killed, or it failed: its flows' entries are left to expire
                continue
            obs.update(res.obs)
            unfinished.update(res.unfinished)


def run_job(job: Job) -> Output:
    """Run a job in this process (a forked child: spawn.start). Joins job.home first.

    SIGTERM (the parent's way to stop it), SIGINT and SIGHUP (a terminal's Ctrl-C or hangup reaches the whole
    group; a SIGHUP nohup ignored stays so) raise KeyboardInterrupt here, whatever the parent's handlers were:
    Agent.run unwinds and sweeps. The first is enough: the parent's SIGTERM after a Ctrl-C, raised as the first
    unwound, cut the clean-up before it began (nothing swept, no conntrack entry deleted). Workers: worker.work."""
    for sig in signals.STOPPING:
        if sig != signal.SIGHUP or signal.getsignal(sig) is not signal.SIG_IGN:  # nohup's stays ignored
            signal.signal(sig, _stop)
    if not gc.isenabled():  # forked by the CLI while it loads, its cycle collector off (netlab/launch.py)
        gc.freeze()  # what it inherited stays shared with the parent, untouched by collections
        gc.enable()
    nb.keep_stats_open()  # the machine's ARP counters are visible from the host's namespace only
    nsmod.join(job.home)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return Agent(job).run()


def _stop(signum: int, frame: object) -> None:
    """The first stop signal: KeyboardInterrupt; the next ones are dropped, so the clean-up runs whole (the
    parent's SIGKILL ends its grace). Dropped by a Python handler (signals.ignore), not SIG_IGN: a terminal's
    Ctrl-C and the parent's SIGTERM often come together, and Python runs SIGTERM's handler after this one's raise;
    finding SIG_IGN then, it printed ``OSError: Signal 15 ignored due to race condition`` and a traceback."""
    for sig in signals.STOPPING:
        signal.signal(sig, signals.ignore)
    raise KeyboardInterrupt(f"probe agent: {signal.Signals(signum).name}")
