"""The probing agent: forked children that send every probe of a run, all in flight at once.

How it works, and why (figures from this project's 2-core VM, 50 pods on one
bridge, 2,450 ICMP probes):

- The child first joins one of the lab's namespaces (the underlay), *then*
  imports scapy: scapy reads interfaces and routes at import, and those must
  never be the host's. Every socket the agent uses is opened inside a lab
  namespace, so no probe can leave the lab.
- Sockets are opened once per source namespace (enter with setns, create,
  come back; a socket keeps its namespace): a raw ICMP socket (with an
  ICMP_FILTER so the kernel only hands it echo replies and errors), one UDP
  socket, a netlink socket for the neighbour table. TCP probes are real kernel
  connections (the echo server must accept them; each sends one line, which
  the echo server answers at once), created in the source's
  namespace the same way. One epoll loop drives them all: a scapy process per
  namespace costs 50 s here, this well under a second.
- Service probes (``Task.service``) and conntrack: after a Service's DNAT, two
  flows from one client port to two Service addresses with a common endpoint
  share a reply tuple, and conntrack rewrites the second one's source port
  (the kernel's connect() does reuse a port towards another address, and a
  closed flow stays in conntrack for a while: UDP 30 to 120 s, so a flow of
  one run meets the next run's). So Service probes bind an explicit source
  port from a range of their own, above the namespace's ephemeral range
  (32768-60999, the kernel's default in every new namespace): the pod
  matrix's kernel-chosen ports never meet a DNATed flow of the prober's, and
  its "no port translation" check stays exact. UDP Service probes get a
  socket each, connected to the Service address (a new source port, so a new
  random endpoint, per probe; across runs a reused port reuses its flow's
  conntrack entry, and so its endpoint). A Service flow that got no answer leaves a
  conntrack entry holding its NAT decision (SYN_SENT, 2 minutes): a later
  flow that happened to reuse the tuple would inherit it. The run deletes
  those entries, its own flows' exact tuples only, in the namespaces that
  translate (nodes, balancer) through ctnetlink at the end.
- Packets: scapy builds the echo request (one template per run: ICMP header
  and a payload carrying the run's nonce); each probe gets its own ICMP id,
  unique in the run, so conntrack never merges two probes, and the checksum
  is recomputed with scapy's ``checksum``. Replies are matched on the fixed
  ICMP header fields; anything else (destination unreachable, time exceeded)
  is dissected by scapy to find which probe the quoted header belongs to and
  who reported it. Dissecting every reply with scapy would cost about 100 us
  each, more than all the I/O of a probe.
- The neighbour table (see neighbours.py): probes come in *units* (runner.py
  plans them) that name the dynamic neighbour entries their packets create: a
  pair of pods on one bridge (its first direction goes before the second, so
  one ARP exchange serves both), a node and one of its pods, or a batch of
  routed probes from one source. A unit starts only when the entries it adds
  fit the run's budget; entries are reference-counted, and deleted as soon as
  no running unit needs them (TCP probes close with RST, so no late FIN
  re-creates them). Entries that existed before the run are never deleted;
  anything else the run caused is swept at the end.
- Both cores: the units are dealt to one worker process per CPU (forked after
  scapy was imported, each with its share of the budget and its own sockets).
- Every wait is bounded: each probe has a deadline (``timeout`` after it was
  sent), and each worker stops at a hard deadline.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import random
import resource
import select
import socket
import struct
import time
from collections import deque
from dataclasses import dataclass, field

from netlab.kernel import conntrack, netlink, rtnl
from netlab.kernel import netns as nsmod
from netlab.probe import neighbours as nb
from netlab.probe.matrix import Observation

SOL_RAW = 255
ICMP_FILTER = 1
# Types the raw sockets receive: echo reply, destination unreachable, time exceeded.
ICMP_WANTED = (0, 3, 11)
SIOCGIFADDR = 0x8915
MAX_INFLIGHT = 2048  # probes in flight at once per worker (sockets, queued packets)
NONCE_LEN = 8
LINGER_RST = struct.pack("ii", 1, 0)  # close() sends RST: nothing is left to resolve later
MIN_TASKS_PER_WORKER = 600  # below this a second worker costs more than it saves
SIOCGIFHWADDR = 0x8927
SEEDED_MAX = 512  # seeded pairs in flight per worker (their PERMANENT entries are not GC-counted, but stay few)
SERVICE_PORTS = (61000, 65535)  # source ports of Service probes: above the default ephemeral 32768-60999
NEIGH_TIMEOUT = 2.0  # seconds a neighbour dump may take

Entry = tuple[str, str, str]  # (netns, ifname, ip): one neighbour entry


@dataclass
class Task:
    """One probe as the agent sees it."""

    id: int
    src: str  # source namespace
    dst: str  # destination IP
    proto: str  # icmp | tcp | udp
    port: int = 0
    service: bool = False  # a Service probe: source port from SERVICE_PORTS; udp: a socket of its own
    wait_reply: bool = True  # tcp: wait for an echo line after connect (False: no echo server there)


@dataclass
class Unit:
    """Probes started together; ``phases`` run one after the other (task ids)."""

    phases: list[list[int]]
    entries: list[Entry] = field(default_factory=list)  # dynamic neighbour entries its packets create
    # Seeded pairs: PERMANENT entries (netns, ifname, ip, netns whose ifname MAC to use) made before
    # the first phase and deleted after the last; no ARP between the two, nothing GC-counted.
    seed: list[tuple[str, str, str, str]] = field(default_factory=list)


@dataclass
class Job:
    tasks: list[Task]
    units: list[Unit]
    home: str  # namespace the agent joins before importing scapy
    timeout: float = 1.0
    budget: int = 400  # dynamic neighbour entries the run may hold at once
    workers: int = 0  # 0: one per CPU (for big jobs)
    self_ip: dict[str, str] = field(default_factory=dict)  # pod netns -> ifname to read its address (and MAC) from
    route_src: list[tuple[str, str]] = field(default_factory=list)  # (netns, dst): kernel's source address
    sweep: list[str] = field(default_factory=list)  # namespaces whose new dynamic entries are removed at the end
    untrack: list[str] = field(default_factory=list)  # namespaces where unanswered Service flows are deleted


@dataclass
class Output:
    obs: dict[int, Observation]
    self_ip: dict[str, str | None]
    route_src: dict[tuple[str, str], str | None]
    stats: dict


class _Ns:
    """Sockets of one namespace, opened once."""

    def __init__(self, name: str, idx: int, home_fd: int, probing: bool = True):
        self.name, self.idx = name, idx
        self.held = nsmod.Held(name, home_fd)
        self.raw = self.udp = None
        self.udp_port = 0
        self.ifindex: dict[str, int | None] = {}
        with self.entered():
            if probing:
                self.raw = socket.socket(socket.AF_INET, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
                                         socket.IPPROTO_ICMP)
                mask = 0xFFFFFFFF
                for t in ICMP_WANTED:
                    mask &= ~(1 << t)
                self.raw.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("I", mask))
                _bufs(self.raw)
                self.udp = socket.socket(socket.AF_INET,
                                         socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
                _bufs(self.udp)
                self.udp.bind(("0.0.0.0", 0))
                self.udp_port = self.udp.getsockname()[1]
            # Neighbour requests go out without NLM_F_ACK, with sequence number 0: the
            # socket's own dumps never use 0, so the kernel's error answers to them
            # (entry exists, no such entry) are never taken for a dump's messages.
            self.nl = netlink.Conn(timeout=NEIGH_TIMEOUT)

    def entered(self) -> nsmod.Held:
        return self.held

    def sources_for(self, dsts: list[str]) -> dict[str, str | None]:
        """The address the kernel sends from towards each dst: connect a fresh UDP socket (that
        sends nothing) and read its local address. Fresh each time: a connected socket keeps
        the first source address it was given."""
        out: dict[str, str | None] = {}
        with self.entered():
            for dst in dsts:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                    try:
                        s.connect((dst, 9))
                        out[dst] = s.getsockname()[0]
                    except OSError:
                        out[dst] = None
        return out

    def address_of(self, ifname: str) -> str | None:
        """IPv4 address of an interface, read inside this namespace (ioctl on a socket that lives here)."""
        import fcntl

        with self.entered():
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                try:
                    res = fcntl.ioctl(s.fileno(), SIOCGIFADDR, struct.pack("256s", ifname.encode()))
                except OSError:
                    return None
        return socket.inet_ntoa(res[20:24])

    def mac_of(self, ifname: str) -> bytes | None:
        import fcntl

        with self.entered():
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                try:
                    res = fcntl.ioctl(s.fileno(), SIOCGIFHWADDR, struct.pack("256s", ifname.encode()))
                except OSError:
                    return None
        return res[18:24]

    def index(self, ifname: str) -> int | None:
        if ifname not in self.ifindex:
            with self.entered():
                try:
                    self.ifindex[ifname] = socket.if_nametoindex(ifname)
                except OSError:
                    self.ifindex[ifname] = None
        return self.ifindex[ifname]

    def close(self) -> None:
        for s in (self.raw, self.udp, self.nl):
            if s is not None:
                s.close()
        self.held.close()


def _bufs(s: socket.socket) -> None:
    for opt, force, size in ((socket.SO_SNDBUF, 32, 4 << 20), (socket.SO_RCVBUF, 33, 8 << 20)):
        try:
            s.setsockopt(socket.SOL_SOCKET, force, size)  # SO_SNDBUFFORCE / SO_RCVBUFFORCE (root)
        except OSError:
            s.setsockopt(socket.SOL_SOCKET, opt, size)


class _Running:
    __slots__ = ("unit", "phase", "pending")

    def __init__(self, unit: Unit):
        self.unit, self.phase, self.pending = unit, 0, 0


class Worker:
    """Sends a share of the units, within a share of the neighbour budget."""

    def __init__(self, job: Job, units: list[Unit], budget: int, template: bytes, checksum, nonce: bytes,
                 id_base: int, snapshot: dict[str, set[tuple[int, str]]], macs: dict[str, bytes | None]):
        self.job, self.units, self.budget, self.macs = job, units, budget, macs
        self.seeded = 0
        self.template, self.checksum, self.nonce = template, checksum, nonce
        self.id_base, self.snapshot = id_base, snapshot
        self.tasks = {t.id: t for t in job.tasks}
        self.now = time.monotonic
        self.home_fd = nsmod.current_fd()
        self.ns: dict[str, _Ns] = {}
        self.ep = select.epoll()
        self.by_fd: dict[int, tuple] = {}
        self.obs: dict[int, Observation] = {}
        self.icmp_wait: dict[tuple[int, int], Task] = {}
        self.udp_wait: dict[tuple[int, str, int], Task] = {}
        self.tcp: dict[int, tuple[Task, socket.socket, bytearray]] = {}  # fd -> (task, socket, buffer)
        self.tcp_fd: dict[int, int] = {}  # task id -> fd
        self.fresh: dict[int, tuple[Task, socket.socket, str]] = {}  # fd -> (task, socket, local address)
        self.fresh_fd: dict[int, int] = {}  # task id -> fd
        self.local_of: dict[int, str] = {}  # task id -> "ip:port" a TCP probe sent from
        self.connected: dict[int, tuple[float, str]] = {}  # task id -> (rtt, local address)
        self.sent_at: dict[int, float] = {}
        self.running_of: dict[int, _Running] = {}
        self.phase_done: list[_Running] = []
        self.deadlines: deque[tuple[float, int]] = deque()
        self.live: dict[Entry, int] = {}  # neighbour entry -> running units that need it
        self.inflight = 0
        self.stats = {"deleted": 0, "peak_entries": 0, "peak_live": 0}

    def _ns(self, name: str) -> _Ns:
        ns = self.ns.get(name)
        if ns is None:
            ns = self.ns[name] = _Ns(name, len(self.ns), self.home_fd)
            ns.nl.sock.setblocking(False)
            self.ep.register(ns.raw.fileno(), select.EPOLLIN)
            self.by_fd[ns.raw.fileno()] = ("raw", ns)
            self.ep.register(ns.udp.fileno(), select.EPOLLIN)
            self.by_fd[ns.udp.fileno()] = ("udp", ns)
        return ns

    # --- the loop ---------------------------------------------------------------

    def run(self) -> dict[int, Observation]:
        queue = deque(self.units)
        total = sum(len(p) for u in self.units for p in u.phases)
        t0 = self.now()
        hard_deadline = t0 + 60 + self.job.timeout * (2 + total / 50)
        next_sample = 0.0
        while len(self.obs) < total:
            now = self.now()
            if now > hard_deadline:
                break
            # Start units while their new neighbour entries fit the budget (at least one runs).
            while queue and self.inflight < MAX_INFLIGHT:
                unit = queue[0]
                new = sum(1 for e in set(unit.entries) if e not in self.live)
                if self.live and len(self.live) + new > self.budget:
                    break
                if unit.seed and self.seeded >= SEEDED_MAX:
                    break
                queue.popleft()
                for e in set(unit.entries):
                    self.live[e] = self.live.get(e, 0) + 1
                if unit.seed:
                    self._seed(unit, add=True)
                self._start_phase(_Running(unit))
            self.stats["peak_live"] = max(self.stats["peak_live"], len(self.live))
            if now >= next_sample:
                s = nb.table_stats()
                if s:
                    self.stats["peak_entries"] = max(self.stats["peak_entries"], s.entries)
                next_sample = now + 0.02
            wait = 0.05
            if self.deadlines:
                wait = min(wait, max(0.0, self.deadlines[0][0] - now))
            for fd, ev in self.ep.poll(wait, 1024):
                kind = self.by_fd.get(fd)
                if kind is None:
                    continue
                if kind[0] == "raw":
                    self._read_raw(kind[1])
                elif kind[0] == "udp":
                    self._read_udp(kind[1])
                elif kind[0] == "fresh":
                    self._read_fresh(fd)
                else:
                    self._tcp_event(fd, ev)
            now = self.now()
            while self.deadlines and self.deadlines[0][0] <= now:
                _, tid = self.deadlines.popleft()
                if tid not in self.obs:
                    self._expire(tid)
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
        return self.obs

    def _advance(self) -> None:
        """Units whose phase completed: start the next phase, or release their neighbour entries."""
        done, self.phase_done = self.phase_done, []
        for run in done:
            run.phase += 1
            if run.phase < len(run.unit.phases):
                self._start_phase(run)
                continue
            if run.unit.seed:
                self._seed(run.unit, add=False)
            for e in set(run.unit.entries):
                left = self.live.get(e, 1) - 1
                if left > 0:
                    self.live[e] = left
                else:
                    self.live.pop(e, None)
                    self._delete_entry(e)

    def _seed(self, unit: Unit, add: bool) -> None:
        """Make (or remove) a seeded pair's PERMANENT entries, with the MACs the pods carry."""
        self.seeded += 1 if add else -1
        for netns, ifname, ip, peer in unit.seed:
            if add:
                mac = self.macs.get(peer)
                if mac is None:
                    continue  # no MAC known: this pair resolves by ARP after all
                ns = self._ns(netns)
                idx = ns.index(ifname)
                if idx is not None:
                    # NLM_F_EXCL: an entry that exists (the learner's) is used, never replaced.
                    ns.nl.sock.send(rtnl.neigh_add(idx, ip, mac.hex(":")))
                    netlink.drain(ns.nl.sock)
            else:
                self._delete_entry((netns, ifname, ip))
        self.stats["seeded"] = self.stats.get("seeded", 0) + (len(unit.seed) if add else 0)

    def _delete_entry(self, entry: Entry) -> None:
        netns, ifname, ip = entry
        ns = self.ns.get(netns)
        if ns is None:
            try:
                ns = self._ns(netns)
            except OSError:
                return
        idx = ns.index(ifname)
        if idx is None or (idx, ip) in self.snapshot.get(netns, ()):
            return  # the entry was there before the run: not ours to delete
        try:
            ns.nl.sock.send(rtnl.neigh_del(idx, ip))
            self.stats["deleted"] += 1
        except OSError:
            pass
        netlink.drain(ns.nl.sock)

    # --- sending ----------------------------------------------------------------

    def _start_phase(self, run: _Running) -> None:
        ids = run.unit.phases[run.phase]
        run.pending = len(ids)
        if not ids:
            self.phase_done.append(run)
            return
        tasks = [self.tasks[i] for i in ids]
        by_src: dict[str, list[Task]] = {}
        for t in tasks:
            by_src.setdefault(t.src, []).append(t)
        for src, group in by_src.items():
            ns = self._ns(src)
            socks: dict[int, socket.socket] = {}
            own = [t for t in group if t.proto == "tcp" or (t.proto == "udp" and t.service)]
            if own:
                with ns.entered():
                    for t in own:
                        if t.proto == "tcp":
                            s = socket.socket(socket.AF_INET,
                                              socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
                            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
                        else:
                            s = socket.socket(socket.AF_INET,
                                              socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
                        if t.service:
                            _bind_service_port(s)
                        socks[t.id] = s
            for t in group:
                self.running_of[t.id] = run
                self.inflight += 1
                now = self.now()
                self.sent_at[t.id] = now
                self.deadlines.append((now + self.job.timeout, t.id))
                try:
                    if t.proto == "icmp":
                        self._send_icmp(ns, t)
                    elif t.proto == "udp" and t.service:
                        self._send_udp_fresh(t, socks[t.id])
                    elif t.proto == "udp":
                        self._send_udp(ns, t)
                    else:
                        self._send_tcp(t, socks[t.id])
                except OSError as exc:
                    self._finish(t.id, Observation(outcome="unreachable" if exc.errno in _UNREACH else "error",
                                                   detail=f"{_errname(exc)} at the sender"))

    def _icmp_id(self, t: Task) -> int:
        return (self.id_base + t.id) & 0xFFFF

    def _send_icmp(self, ns: _Ns, t: Task) -> None:
        ident = self._icmp_id(t)
        pkt = bytearray(self.template)
        struct.pack_into("!HH", pkt, 2, 0, ident)
        struct.pack_into("!H", pkt, 2, self.checksum(bytes(pkt)))
        self.icmp_wait[(ns.idx, ident)] = t
        ns.raw.sendto(pkt, (t.dst, 0))

    def _send_udp(self, ns: _Ns, t: Task) -> None:
        self.udp_wait[(ns.idx, t.dst, t.port)] = t
        ns.udp.sendto(b"netlab probe %d\n" % t.id, (t.dst, t.port))

    def _send_udp_fresh(self, t: Task, s: socket.socket) -> None:
        """A socket of its own, connected: the kernel hands it only replies from dst:port
        (a Service's replies come back un-DNATed, from the Service address) and reports
        an ICMP port unreachable as ECONNREFUSED on it."""
        try:
            s.connect((t.dst, t.port))
            local = "%s:%d" % s.getsockname()
            s.send(b"netlab probe %d\n" % t.id)
        except OSError:
            s.close()
            raise
        fd = s.fileno()
        self.fresh[fd] = (t, s, local)
        self.fresh_fd[t.id] = fd
        self.by_fd[fd] = ("fresh",)
        self.ep.register(fd, select.EPOLLIN)

    def _read_fresh(self, fd: int) -> None:
        entry = self.fresh.get(fd)
        if entry is None:
            return
        t, s, local = entry
        try:
            data = s.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except ConnectionRefusedError:
            self._fresh_close(fd)
            self._finish(t.id, Observation(outcome="refused", detail="port unreachable (connection refused)",
                                           rtt=self.now() - self.sent_at[t.id], local=local))
            return
        except OSError as exc:
            self._fresh_close(fd)
            self._finish(t.id, Observation(outcome="unreachable" if exc.errno in _UNREACH else "error",
                                           detail=_errname(exc), rtt=self.now() - self.sent_at[t.id], local=local))
            return
        obs = Observation(outcome="reply", rtt=self.now() - self.sent_at[t.id], reply_from=t.dst, local=local)
        _echo_fields(obs, data)
        self._fresh_close(fd)
        self._finish(t.id, obs)

    def _fresh_close(self, fd: int) -> None:
        entry = self.fresh.pop(fd, None)
        self.by_fd.pop(fd, None)
        if entry is None:
            return
        self.fresh_fd.pop(entry[0].id, None)
        try:
            self.ep.unregister(fd)
        except (OSError, ValueError):
            pass
        entry[1].close()

    def _send_tcp(self, t: Task, s: socket.socket) -> None:
        fd = s.fileno()
        self.tcp[fd] = (t, s, bytearray())
        self.tcp_fd[t.id] = fd
        self.by_fd[fd] = ("tcp",)
        err = s.connect_ex((t.dst, t.port))
        if err not in (0, errno.EINPROGRESS):
            self._tcp_close(fd)
            raise OSError(err, os.strerror(err))
        try:
            self.local_of[t.id] = "%s:%d" % s.getsockname()
        except OSError:
            pass
        self.ep.register(fd, select.EPOLLOUT | select.EPOLLIN)

    # --- receiving --------------------------------------------------------------

    def _read_raw(self, ns: _Ns) -> None:
        nonce = b"netlab" + self.nonce
        while True:
            try:
                data = ns.raw.recv(2048)
            except (BlockingIOError, InterruptedError):
                return
            now = self.now()
            if len(data) < 28:
                continue
            ihl = (data[0] & 0x0F) * 4
            if data[ihl] == 0:  # echo reply: fixed header, matched by id; the payload proves it is this run's
                ident = struct.unpack_from("!H", data, ihl + 4)[0]
                t = self.icmp_wait.get((ns.idx, ident))
                if t is None or data[ihl + 8:ihl + 8 + len(nonce)] != nonce or t.id in self.obs:
                    continue
                self._finish(t.id, Observation(outcome="reply", rtt=now - self.sent_at[t.id],
                                               reply_from=socket.inet_ntoa(data[12:16]), ttl=data[8]))
            else:
                self._icmp_error(ns, data)

    def _icmp_error(self, ns: _Ns, data: bytes) -> None:
        """Destination unreachable / time exceeded: scapy dissects it and the quoted header names the probe."""
        from scapy.layers.inet import ICMP, IP, ICMPerror, IPerror, UDPerror

        pkt = IP(data)
        if not pkt.haslayer(IPerror):
            return
        what = pkt[ICMP].sprintf("%ICMP.type%: %ICMP.code%").replace("dest-unreach", "destination unreachable")
        detail = f"{what} (ICMP from {pkt.src})"
        inner = pkt[IPerror]
        t = None
        outcome = "unreachable"
        if pkt.haslayer(ICMPerror) and pkt[ICMPerror].type == 8:
            t = self.icmp_wait.get((ns.idx, pkt[ICMPerror].id))
        elif pkt.haslayer(UDPerror) and pkt[UDPerror].sport == ns.udp_port:
            t = self.udp_wait.get((ns.idx, inner.dst, pkt[UDPerror].dport))
            if pkt[ICMP].type == 3 and pkt[ICMP].code == 3:
                outcome = "refused"
        if t is not None and t.id not in self.obs and t.dst == inner.dst:
            self._finish(t.id, Observation(outcome=outcome, detail=detail, rtt=self.now() - self.sent_at[t.id]))

    def _read_udp(self, ns: _Ns) -> None:
        while True:
            try:
                data, (ip, port) = ns.udp.recvfrom(4096)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue
            t = self.udp_wait.get((ns.idx, ip, port))
            if t is None or t.id in self.obs:
                continue
            obs = Observation(outcome="reply", rtt=self.now() - self.sent_at[t.id], reply_from=ip,
                              local=f":{ns.udp_port}")
            _echo_fields(obs, data)
            self._finish(t.id, obs)

    def _tcp_event(self, fd: int, ev: int) -> None:
        entry = self.tcp.get(fd)
        if entry is None:
            return
        t, s, buf = entry
        if t.id not in self.connected:
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self._tcp_close(fd)
                refused = err == errno.ECONNREFUSED
                self._finish(t.id, Observation(outcome="refused" if refused else "unreachable",
                                               detail="connection refused" if refused else os.strerror(err).lower(),
                                               rtt=self.now() - self.sent_at[t.id], local=self.local_of.get(t.id)))
                return
            if not ev & (select.EPOLLOUT | select.EPOLLIN):
                return
            self.connected[t.id] = (self.now() - self.sent_at[t.id], "%s:%d" % s.getsockname())
            if t.wait_reply:
                # The echo server answers a client's first line at once (one that stays silent
                # waits for echo.GREETING_WAIT): say something that is not an HTTP request.
                try:
                    s.send(b"netlab probe %d\n" % t.id)
                except OSError:
                    pass  # the reply (or its absence) still says what happened
            if not t.wait_reply:  # no echo server there: the connect is the whole answer
                rtt, local = self.connected[t.id]
                self._tcp_close(fd)
                self._finish(t.id, Observation(outcome="reply", rtt=rtt, local=local, reply_from=t.dst,
                                               detail="connected (not netlab's echo server: no client address "
                                                      "to check)"))
                return
            self.ep.modify(fd, select.EPOLLIN)
        try:
            chunk = s.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        buf += chunk
        if b"\n" in buf or not chunk or len(buf) > 4096:
            rtt, local = self.connected[t.id]
            o = Observation(outcome="reply", rtt=rtt, local=local, reply_from=t.dst)
            _echo_fields(o, bytes(buf))
            if o.answered_by is None:
                o.detail = "connected; the server sent no echo reply"
            self._tcp_close(fd)
            self._finish(t.id, o)

    def _tcp_close(self, fd: int) -> None:
        entry = self.tcp.pop(fd, None)
        self.by_fd.pop(fd, None)
        if entry is None:
            return
        self.tcp_fd.pop(entry[0].id, None)
        try:
            self.ep.unregister(fd)
        except (OSError, ValueError):
            pass
        entry[1].close()  # SO_LINGER 0: RST, the connection is gone at once

    # --- completion -------------------------------------------------------------------

    def _expire(self, tid: int) -> None:
        conn = self.connected.get(tid)
        fd = self.tcp_fd.get(tid)
        if fd is not None:
            self._tcp_close(fd)
        ffd = self.fresh_fd.get(tid)
        if ffd is not None:
            local = self.fresh[ffd][2]
            self._fresh_close(ffd)
            self._finish(tid, Observation(outcome="timeout", local=local))
            return
        if conn:  # connected, but no echo line: some other server; reachable all the same
            rtt, local = conn
            self._finish(tid, Observation(outcome="reply", rtt=rtt, local=local,
                                          detail="connected; the server sent no echo reply"))
        else:
            self._finish(tid, Observation(outcome="timeout", local=self.local_of.get(tid)))

    def _finish(self, tid: int, obs: Observation) -> None:
        if tid in self.obs:
            return
        self.obs[tid] = obs
        self.inflight -= 1
        run = self.running_of.pop(tid, None)
        if run is not None:
            run.pending -= 1
            if run.pending == 0:
                self.phase_done.append(run)


class Agent:
    """The run: set-up, workers, then the sweep."""

    def __init__(self, job: Job):
        self.job = job
        self.home_fd = nsmod.current_fd()

    def run(self) -> Output:
        job = self.job
        now = time.monotonic
        t0 = now()
        stats0 = nb.table_stats()
        # scapy is imported here, in the child, after it joined a lab namespace.
        from scapy.layers.inet import ICMP
        from scapy.packet import Raw
        from scapy.utils import checksum

        nonce = os.urandom(NONCE_LEN)
        template = bytes(ICMP(type="echo-request", code=0, id=0, seq=1) / Raw(load=b"netlab" + nonce))
        t_import = now() - t0

        # Read-only set-up on sockets that are closed before the workers fork.
        setup: dict[str, _Ns] = {}

        def ns(name: str) -> _Ns:
            if name not in setup:
                setup[name] = _Ns(name, len(setup), self.home_fd, probing=False)
            return setup[name]

        snapshot: dict[str, set[tuple[int, str]]] = {}
        for name in job.sweep:
            try:
                snapshot[name] = {(n.index, n.dst) for n in nb.dump(ns(name).nl)}
            except OSError:
                pass
        self_ip = {name: ns(name).address_of(ifname) for name, ifname in job.self_ip.items()}
        macs: dict[str, bytes | None] = {}
        if any(u.seed for u in job.units):
            macs = {name: ns(name).mac_of(ifname) for name, ifname in job.self_ip.items()}
        route_src: dict[tuple[str, str], str | None] = {}
        by_src: dict[str, list[str]] = {}
        for name, dst in job.route_src:
            by_src.setdefault(name, []).append(dst)
        for name, dsts in by_src.items():
            for dst, src in ns(name).sources_for(dsts).items():
                route_src[(name, dst)] = src
        t_setup = now() - t0

        workers = job.workers or max(1, min(os.cpu_count() or 1, 4, len(job.tasks) // MIN_TASKS_PER_WORKER))
        shares: list[list[Unit]] = [[] for _ in range(workers)]
        for i, unit in enumerate(job.units):
            shares[i % workers].append(unit)
        budget = max(8, job.budget // workers)
        id_base = random.randrange(1 << 16)
        children: list[tuple[int, int]] = []
        for share in shares[1:]:
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(r)
                code = 0
                try:
                    wk = Worker(job, share, budget, template, checksum, nonce, id_base, snapshot, macs)
                    payload = pickle.dumps((wk.run(), wk.stats))
                except BaseException as exc:  # noqa: BLE001 - reported to the leader
                    payload = pickle.dumps(exc)
                    code = 1
                _write_all(w, payload)
                os._exit(code)
            os.close(w)
            children.append((pid, r))
        leader = Worker(job, shares[0], budget, template, checksum, nonce, id_base, snapshot, macs)
        obs = leader.run()
        stats = dict(leader.stats)
        for pid, r in children:
            data = _read_all(r, deadline=now() + 60 + job.timeout * (2 + len(job.tasks) / 50))
            if not data:
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
            os.waitpid(pid, 0)
            msg = pickle.loads(data) if data else RuntimeError("a probe worker died without a result")
            if isinstance(msg, BaseException):
                raise msg
            obs.update(msg[0])
            for key in ("deleted", "seeded"):
                stats[key] = stats.get(key, 0) + msg[1].get(key, 0)
            for key in ("peak_entries", "peak_live"):
                stats[key] = max(stats[key], msg[1][key])
        t_probe = now() - t0
        stats["untracked"] = self._untrack(obs)
        stats["swept"] = self._sweep(setup, ns, snapshot)
        for s in setup.values():
            s.close()
        stats1 = nb.table_stats()
        if stats0 and stats1:
            stats.update(table_fulls=stats1.table_fulls - stats0.table_fulls,
                         forced_gc_runs=stats1.forced_gc_runs - stats0.forced_gc_runs,
                         entries_before=stats0.entries, entries_after=stats1.entries)
        stats.update(import_s=round(t_import, 4), setup_s=round(t_setup, 4), probe_s=round(t_probe, 4),
                     total_s=round(now() - t0, 4), probes=len(job.tasks), units=len(job.units),
                     budget=job.budget, workers=workers)
        return Output(obs, self_ip, route_src, stats)

    def _untrack(self, obs: dict[int, Observation]) -> int:
        """Delete the conntrack entries of Service flows that got no answer (their exact tuples)."""
        flows = []
        for t in self.job.tasks:
            o = obs.get(t.id)
            if not t.service or o is None or o.reached or not o.local or o.local.startswith(("0.0.0.0", ":")):
                continue
            ip, _, port = o.local.rpartition(":")
            proto = socket.IPPROTO_TCP if t.proto == "tcp" else socket.IPPROTO_UDP
            flows.append(conntrack.Flow(proto, ip, int(port), t.dst, t.port))
        if not flows:
            return 0
        for name in self.job.untrack:
            try:
                conntrack.delete_flows(name, flows)
            except OSError:
                continue  # the namespace is gone: so are its entries
        return len(flows)

    def _sweep(self, setup, ns, snapshot) -> int:
        """Delete dynamic entries the run created in the lab's namespaces (not in the snapshot)."""
        swept = 0
        for name in self.job.sweep:
            if name not in snapshot:
                continue
            conn = ns(name).nl
            netlink.drain(conn.sock)
            try:
                entries = nb.dump(conn)
            except OSError:
                continue  # no answer: nothing known to sweep there
            for n in entries:
                if nb.dynamic(n) and (n.index, n.dst) not in snapshot[name]:
                    conn.sock.send(rtnl.neigh_del(n.index, n.dst))
                    swept += 1
            netlink.drain(conn.sock)
        return swept


def _bind_service_port(s: socket.socket) -> None:
    """Bind a free source port from SERVICE_PORTS: an explicit port, above the namespace's ephemeral range.

    Not ``IP_LOCAL_PORT_RANGE``: the kernel only lets a socket *narrow* its
    namespace's ``ip_local_port_range`` (inet_sk_get_local_port_range ignores a
    per-socket bound outside it), so a range above 60999 silently gave ordinary
    ephemeral ports, shared with the pod matrix's flows. An explicit bind may use
    any port; the kernel never picks one outside the namespace's range itself.
    """
    lo, hi = SERVICE_PORTS
    span = hi - lo + 1
    start = random.randrange(span)
    for k in range(span):
        try:
            s.bind(("0.0.0.0", lo + (start + k) % span))
            return
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
    raise OSError(errno.EADDRINUSE, f"no free source port in {lo}-{hi} for a Service probe")


_UNREACH = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EHOSTDOWN, errno.ENETDOWN, errno.EADDRNOTAVAIL}


def _errname(exc: OSError) -> str:
    """"network is unreachable", as a sentence fragment."""
    text = exc.strerror or errno.errorcode.get(exc.errno or 0, str(exc))
    return text[:1].lower() + text[1:]


def _echo_fields(obs: Observation, data: bytes) -> None:
    """Fill pod/client/server from an echo server's JSON line (leave them empty for anything else)."""
    line = data.split(b"\n", 1)[0]
    try:
        msg = json.loads(line)
    except ValueError:
        return
    if isinstance(msg, dict):
        obs.answered_by = msg.get("pod") if isinstance(msg.get("pod"), str) else None
        obs.seen_client = msg.get("client") if isinstance(msg.get("client"), str) else None
        obs.server = msg.get("server") if isinstance(msg.get("server"), str) else None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.close(fd)


def _read_all(fd: int, deadline: float) -> bytes:
    chunks = []
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return b""
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)


def run_job(job: Job) -> Output:
    """Run a job in this process (the caller is the forked child). Joins job.home first."""
    nb.keep_stats_open()
    nsmod.join(job.home)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return Agent(job).run()
