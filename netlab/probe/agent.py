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
- Then the clean-up, in the nodes' namespaces and the balancer's, by exact
  tuples only (kernel/conntrack.py):
  - a Service flow that got no answer leaves a conntrack entry holding its
    NAT decision (SYN_SENT, 2 minutes), which a later flow reusing the tuple
    would inherit;
  - a UDP flow that got an answer leaves an entry that has seen its reply
    (30 s, 120 s once assured). Each run's UDP sockets get random source
    ports: a later run's socket that gets the same one (1 in ~28,000 per pod
    for the matrix, 1 in ~4,500 per Service probe, but a suite probes
    hundreds of times) would be ESTABLISHED at once, keep the old endpoint
    and pass a NetworkPolicy that now denies it (policies judge new flows
    only, plan/policy.py). Those entries are deleted too, so every run
    probes new flows. (A direct TCP flow needs nothing: the prober closes
    with RST, and a new SYN reopens a closed entry as a new connection.)
  - a TCP Service flow that got its answer leaves its DNAT for 10 s in the
    client's node, with the endpoint in its reply tuple: the next run's flow
    from that port to another address of the endpoint (ClusterIP, NodePort)
    would clash with it, and conntrack would move it to another port.
  And every dynamic neighbour entry the run created that is still there is
  swept.
- Interrupted (the parent's Ctrl-C or time limit reaches the agent as SIGTERM,
  netlab.kernel.child; a terminal's Ctrl-C as SIGINT), or failed, the agent
  still stops its workers and sweeps, in the grace the parent gives it; then it deletes each entry the kernel
  reports the run's late packets make (a busy machine's kernel delivers a packet sent before the stop late, and
  its answer resolves again: neigh_watch.py), until nothing of the run was reported for QUIET, no packet waits in
  the CPUs' backlogs and no request of the run in the lab's servers' sockets (the echo server, run late by a busy
  machine, answers after the sweeps). Before, it was
  SIGKILLed, and the run's entries (hundreds in a lab of 60 pods) stayed
  in the machine's one table. A later run leaves alone what was there before
  it, so they stayed until the kernel's garbage collector got to them, and
  the half-done resolutions among them failed that run's first packets.
  The conntrack entries go too: those of the flows judged, as after a whole
  run, and those of every connection still open (SIGTERM makes each worker
  close its sockets and send back what it had sent, worker.py). A SYN the
  stop caught unanswered left its entry in SYN_SENT for two minutes in the
  nodes (a Service's DNAT decision with it), and the next run's connection
  from the same port met it.
"""

from __future__ import annotations

import contextlib
import gc
import os
import random
import resource
import signal
import socket
import time
from typing import Callable

from netlab import signals
from netlab.kernel import conntrack, netlink, rtnl, rtnl_parse
from netlab.kernel import netns as nsmod
from netlab.kernel.child import Child, ChildError, readable, start_child
from netlab.probe import icmp
from netlab.probe import neigh_watch as nb_watch
from netlab.probe import neighbours as nb
from netlab.probe.held import HeldEntries
from netlab.probe.neigh_watch import NeighWatch
from netlab.probe.sockets import NsSockets
from netlab.probe.tasks import Job, Observation, Output, Unit
from netlab.probe.worker import Worker, WorkerResult, work

NONCE_LEN = 8
AGENT_GRACE = 1.5  # s: an interrupted agent stops its workers and sweeps its neighbour entries (start())
WORKER_GRACE = 0.3  # s: stopped workers send back what they had sent (out of the parent's AGENT_GRACE)
RESOLVING_POLL = 0.005  # s: between two looks at a namespace's resolutions under way
RESOLVING_WAIT = 0.25  # s: at most, an interrupted run's resolutions under way end before its first sweep
QUIET = 0.3  # s: with nothing new to sweep, an interrupted run's packets have all arrived
LOOK_AGAIN = 0.05  # s: between two looks at the queues while they hold packets or requests of the run
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

        snapshot: dict[str, set[tuple[int, str]]] = {}
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
        t_setup = now() - t0

        workers = job.workers or max(1, min(os.cpu_count() or 1, 4, len(job.tasks) // MIN_TASKS_PER_WORKER))
        shares: list[list[Unit]] = [[] for _ in range(workers)]
        for i, unit in enumerate(job.units):
            shares[i % workers].append(unit)
        budget = max(8, job.budget // workers)
        # One node's entry for a pod serves every source of it, whichever worker's: counted across them (held.py).
        shared = HeldEntries(e for u in job.units for e in u.entries) if workers > 1 else None
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
                stop_at = now() + AGENT_GRACE - SWEEP_MARGIN  # the parent's SIGKILL comes at AGENT_GRACE
                if leader is not None:
                    obs.update(leader.obs)
                    unfinished.update(leader.unfinished())
                    leader.close()  # now: at the agent's exit, its connections' RSTs would resolve again
                self._stop_workers(pending, obs, unfinished)
                with self._watch(snapshot) as watch:  # before the first sweep: what comes after it is reported
                    self._sweep(snapshot, until=min(stop_at, now() + RESOLVING_WAIT))
                    self._untrack(obs, self_ip, route_src, unfinished)
                    self._sweep_until_quiet(snapshot, stop_at, watch)
            raise
        t_probe = now() - t0
        with held:
            stats["untracked"], stats["untracked_udp"] = self._untrack(obs, self_ip, route_src, unfinished)
            stats["swept"], stats["forgotten"] = self._sweep(snapshot), forgotten
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

    def _untrack(self, obs: dict[int, Observation], self_ip: dict[str, str | None],
                 route_src: dict[tuple[str, str], str | None],
                 unfinished: dict[int, str] | None = None) -> tuple[int, int]:
        """Delete, by exact tuple, the conntrack entries of the Service flows that got no answer, of every
        UDP flow that got one, and of the TCP Service flows that got one, and those of a stopped run's flows
        still open (``unfinished``: task id -> "ip:port", as unanswered); how many of the first two (the
        unfinished Service flows among the first).

        A TCP Service flow that got its answer, closed with RST, stays in the client's node for 10 s holding its
        DNAT, with the endpoint in its reply tuple: the next run's Service flow from the same port to another
        Service address with that endpoint would share the reply tuple, and conntrack would move it to a port
        of its own choosing, where a direct flow later meets it (probe/sockets.py). So it goes too.

        A Service flow DNATed on the client's node reaches the endpoint's node as a flow of its own, client
        to endpoint, which that node tracks too. One that got no answer (a SYN lost at a port set down) stays
        there in SYN_SENT for two minutes; the next run's flow from the same port to that endpoint (Service
        probes draw their ports from a range of 4,536) would meet it, and the node would drop its ACKs as
        out of the old connection's window (kube-proxy's KUBE-FORWARD drops ctstate INVALID): "connected;
        the server sent no echo reply". So each endpoint's tuple of the flow goes too, and so does what a
        masquerade made of it (a NodePort's node or the load balancer sends it on from its own address and a
        port of its choosing, at random: ``--random-fully``): read from the namespaces' entries before they
        go (:func:`conntrack.onward`)."""
        unanswered: list[conntrack.Flow] = []
        answered: list[conntrack.Flow] = []  # UDP flows and TCP Service flows that got an answer
        flows = udp = 0  # unanswered Service flows (each has a tuple per endpoint besides its own); answered UDP
        for t in self.job.tasks:
            o = obs.get(t.id)
            if o is None or not o.local or not (t.service or t.proto == "udp" and o.reached):
                continue
            proto = socket.IPPROTO_TCP if t.proto == "tcp" else socket.IPPROTO_UDP
            ip, _, port = o.local.rpartition(":")
            if not t.service:
                # The namespace's one UDP socket: the observation knows its port; the source address is
                # the one the route picks from a node or host, else the pod's own.
                ip = route_src.get((t.src, t.dst)) or self_ip.get(t.src) or ""
            if not ip or ip == "0.0.0.0":
                continue
            (answered if o.reached else unanswered).append(conntrack.Flow(proto, ip, int(port), t.dst, t.port))
            udp += t.proto == "udp" and o.reached
            if t.service and not o.reached:
                flows += 1
                unanswered += [conntrack.Flow(proto, ip, int(port), ep, ep_port) for ep, ep_port in t.behind]
        if unfinished:
            tasks = {t.id: t for t in self.job.tasks}
            for tid, local in unfinished.items():
                t = tasks.get(tid)
                ip, _, port = local.rpartition(":")
                if t is None or tid in obs or not ip or ip == "0.0.0.0" or not port.isdigit():
                    continue
                proto = socket.IPPROTO_TCP if t.proto == "tcp" else socket.IPPROTO_UDP
                unanswered.append(conntrack.Flow(proto, ip, int(port), t.dst, t.port))
                if t.service:
                    flows += 1
                    unanswered += [conntrack.Flow(proto, ip, int(port), ep, ep_port) for ep, ep_port in t.behind]
        if flows:
            unanswered += self._onward(unanswered)
        if unanswered or answered:
            for name in self.job.untrack:
                try:
                    conntrack.delete_flows(name, unanswered + answered)
                except OSError:
                    continue  # the namespace is gone: so are its entries
        return flows, udp

    def _onward(self, flows: list[conntrack.Flow]) -> list[conntrack.Flow]:
        """The tuples these flows went on as after a NAT, as the lab's nodes and balancer track them."""
        out: list[conntrack.Flow] = []
        for proto in {f.proto for f in flows}:
            entries = []
            for name in self.job.untrack:
                try:
                    entries += conntrack.tuples(name, proto)
                except OSError:
                    continue  # the namespace is gone: so are its entries
            out += conntrack.onward([f for f in flows if f.proto == proto], entries)
        return out

    def _seeded(self) -> dict[str, set[tuple[int, str]]]:
        """netns -> (ifindex, ip) of the PERMANENT entries the job's seeded pairs make (budget.py)."""
        out: dict[str, set[tuple[int, str]]] = {}
        for unit in self.job.units:
            for seed in unit.seed:
                if seed.netns in self.setup:  # every namespace swept was read at the start
                    idx = self.setup[seed.netns].index(seed.ifname)
                    if idx is not None:
                        out.setdefault(seed.netns, set()).add((idx, seed.ip))
        return out

    def _sweep(self, snapshot: dict[str, set[tuple[int, str]]], until: float | None = None) -> int:
        """Delete dynamic entries the run created in the lab's namespaces (not in the snapshot), and the
        PERMANENT ones of its seeded pairs (a pair interrupted before its end still holds them); how many.

        With ``until`` (an interrupted run: a time.monotonic()), first wait, until then at most, for the
        resolutions the run began in a namespace to end. Deleting an INCOMPLETE entry drops the packets queued
        behind it: a pod's SYN-ACK to a probe's SYN, which TCP sends again a second later, when the agent is
        gone; the ARP exchange in front of it then leaves an entry in each pod."""
        seeded = self._seeded()
        swept = 0
        for name in self.job.sweep:
            if name not in snapshot:
                continue
            conn = self._ns(name).nl
            netlink.drain(conn.sock)
            entries = self._settled(conn, snapshot[name], until)
            if entries is None:
                continue  # no answer: nothing known to sweep there
            for n in entries:
                ours = nb.dynamic(n) or (n.index, n.dst) in seeded.get(name, ())
                if ours and (n.index, n.dst) not in snapshot[name]:
                    conn.sock.send(rtnl.neigh_del(n.index, n.dst))
                    swept += 1
            netlink.drain(conn.sock)
        return swept

    def _watch(self, snapshot: dict[str, set[tuple[int, str]]]) -> NeighWatch:
        """The kernel's reports of the neighbour entries of every namespace swept (neigh_watch.py)."""
        opened = {}
        for name in (n for n in self.job.sweep if n in snapshot):
            try:
                opened[name] = self._ns(name).neigh_reports()
            except OSError:
                continue  # the namespace is gone: nothing to sweep there
        return NeighWatch(opened)

    def _sweep_until_quiet(self, snapshot: dict[str, set[tuple[int, str]]], stop_at: float,
                           watch: NeighWatch) -> None:
        """Delete each entry of the run the kernel reports (``watch``, joined before the first sweep), until
        QUIET has passed with none reported, and then no packet waits in the CPUs' backlogs, no request of the
        run in the lab's servers, and a last sweep finds nothing; or until ``stop_at``.

        A packet of the run still in the kernel's queues when the agent stopped (a busy machine runs the veths'
        receive work late), or an answer the lab's echo server, run late, sends after the sweeps (:meth:`_waiting`),
        needs its neighbour again: the ARP exchange leaves an entry in each pod (neigh_watch.py). Sweeps alone
        looked at each namespace once a round, and a loaded machine's round took the whole grace: an entry made
        after a namespace's look stayed. A reported entry still resolving (INCOMPLETE) is deleted once resolved,
        or RESOLVING_WAIT after it was reported (deleting it drops the packets queued behind it: see _sweep)."""
        resolving: dict[tuple[str, int, str], float] = {}  # (netns, ifindex, ip) -> when to delete it anyway
        active = time.monotonic()  # when the run's last entry was reported, or something of it was found
        looked = False  # at the queues and the servers, since ``active``
        next_look = active
        while True:
            if time.monotonic() >= stop_at:  # what was reported, and the kernel's lists, once more (milliseconds)
                self._reported(watch, snapshot, resolving, 0, stop_at)
                self._sweep(snapshot)
                return
            if not looked and not resolving and time.monotonic() >= next_look:
                # As the quiet wait begins, hearing reports between two namespaces' looks at their servers (a look
                # walks the machine's sockets: a loaded machine's, in 40 pods, took the whole grace).
                heard = []

                def hear() -> None:
                    heard.append(self._reported(watch, snapshot, resolving, 0, stop_at))

                lost, watch.lost = watch.lost, False  # reports dropped: the next clean look's sweep reads all
                looked = not (nb_watch.backlog() or self._waiting(hear, stop_at) or any(heard) or lost
                              or self._sweep(snapshot, until=min(stop_at, time.monotonic() + RESOLVING_WAIT)))
                if not looked:  # packets or requests of the run still to come: look again in a while
                    active = time.monotonic()
                    next_look = active + LOOK_AGAIN
                continue
            now = time.monotonic()
            if looked and now - active >= QUIET and not resolving:
                # The kernel's own lists last: an entry made and never reported (an INCOMPLETE one).
                if not (self._reported(watch, snapshot, resolving, 0, stop_at) or self._sweep(snapshot)):
                    return
                active, looked = time.monotonic(), False
                continue
            ahead = [active + QUIET] if looked else [] if resolving else [next_look]  # quiet, or the next look
            due = min([stop_at, *resolving.values(), *ahead])
            if self._reported(watch, snapshot, resolving, due - now, stop_at):
                active, looked = time.monotonic(), False
            for key, until in list(resolving.items()):
                if until <= time.monotonic():  # nobody answers for it, or the grace ends: it goes now
                    del resolving[key]
                    self._delete(*key)
                    active, looked = time.monotonic(), False

    def _reported(self, watch: NeighWatch, snapshot: dict[str, set[tuple[int, str]]],
                  resolving: dict[tuple[str, int, str], float], timeout: float, stop_at: float) -> int:
        """Delete each entry of the run the kernel reports within ``timeout`` (those still resolving once they
        are resolved: ``resolving``); how many it reported."""
        ours = 0
        for r in watch.wait(timeout):
            n = r.entry
            key = (r.netns, n.index, n.dst or "")
            if r.gone:
                resolving.pop(key, None)
                continue
            if not nb.dynamic(n) or (n.index, n.dst) in snapshot.get(r.netns, ()):
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
            if name in self.setup:
                held += self.setup[name].waiting(ports)
                if between is not None:
                    between()
        return held

    @staticmethod
    def _settled(conn: netlink.Conn, known: set[tuple[int, str]],
                 until: float | None) -> list[rtnl_parse.NeighMsg] | None:
        """The namespace's neighbour entries, once none the run made is INCOMPLETE or ``until`` has come
        (None: at once); None when the kernel does not answer. An address nobody answers for stays INCOMPLETE
        for 3 s (then FAILED): an interrupted run waits for it until ``until``."""
        while True:
            try:
                entries = nb.dump(conn)
            except OSError:
                return None
            if until is None or time.monotonic() >= until or not any(
                    n.state & rtnl.NUD_INCOMPLETE and nb.dynamic(n) and (n.index, n.dst) not in known
                    for n in entries):
                return entries
            time.sleep(RESOLVING_POLL)


def start(job: Job) -> Child:
    """The agent on ``job``, in a forked child; its :meth:`~netlab.kernel.child.Child.result` within
    ``job.limit()``. Interrupted (Ctrl-C), or at its time limit, it gets SIGTERM and AGENT_GRACE seconds to sweep
    what it made in the machine's neighbour table."""
    return start_child(run_job, (job,), what="the probe agent", grace=AGENT_GRACE)


def run_job(job: Job) -> Output:
    """Run a job in this process (a forked child: see runner.py). Joins job.home first.

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
