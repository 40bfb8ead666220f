"""An interrupted probe's agent and the entries its run's late packets make (sweep.py: Sweeper.sweep_until_quiet,
neigh_watch.py).

A packet of the run still in the kernel's queues when the agent stopped is delivered late on a loaded machine,
and its answer's ARP exchange makes an entry in each pod: REACHABLE in the asker, STALE in the answerer. In CI one
such pair was left (test_probe.py::test_ctrl_c_during_a_probe_leaves_no_neighbour_entry_of_it[real]): the sweeps
looked at each namespace once a round, and a round's look at the lab's servers' sockets (sock_diag walks every
socket of the machine, a tenth of a second of CPU in a lab of 40 pods) took the whole grace on a loaded machine;
the agent judged the lab quiet, or ran out of time, with the pair made after its last look.

Here a fake kernel: the namespaces' tables, the late packets' entries (made at a time of the agent's fake clock),
what the kernel reports of them (neigh_watch.NeighWatch's stand-in), the CPUs' backlogs and the servers' queues.
The clock moves only as the agent sleeps, waits for reports, or looks (a look costs what ``look`` says): the
times are sums of powers of two, exact as a float adds them.
"""

from __future__ import annotations

from types import SimpleNamespace

from netlab.kernel import netlink, rtnl
from netlab.kernel.rtnl_parse import NeighMsg, parse_neigh
from netlab.probe import neigh_watch as nw
from netlab.probe import neighbours as nb
from netlab.probe import sweep

T0 = 1024.0
QUIET = 3 / 16
GRACE = 2.0  # the parent's SIGKILL is far: the tests that need it say where it is
REACHABLE, STALE, INCOMPLETE = rtnl.NUD_REACHABLE, rtnl.NUD_STALE, rtnl.NUD_INCOMPLETE


class Kernel:
    """Neighbour tables of some namespaces, and what is still to come: ``late`` (time, netns, ip, state) entries
    the run's late packets make (an entry already there changes state), ``backlog`` packets in the CPUs' queues
    until that time, requests in the servers' sockets until ``serving`` ends; a look at the servers costs
    ``look`` seconds."""

    def __init__(self, late=(), backlog_until=0.0, serving_until=0.0, look=0.0, answers=()):
        self.now = T0
        self.tables: dict[str, dict[str, int]] = {"a": {}, "b": {}}
        self.late = sorted(late)
        # (time, netns, ip, its peer's netns, the peer's ip): a late answer from the peer to netns's pod, which
        # finds their pair of entries, or resolves again: the pair made anew (REACHABLE in the asker, STALE in the
        # answerer), reported, and counted in ``remade``
        self.answers = sorted(answers)
        self.remade: list[tuple[float, str, str]] = []
        self.reports: list[nw.Reported] = []
        self.deleted: list[tuple[float, str, str]] = []  # when, netns, ip
        self.backlog_until, self.serving_until, self.look = T0 + backlog_until, T0 + serving_until, look
        self.lost = False

    # the agent's time module
    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.move(self.now + seconds)

    def move(self, to: float) -> None:
        """The clock to ``to``: the late packets due by then make their entries, reported as they are made."""
        while self.late and T0 + self.late[0][0] <= to:
            at, netns, ip, state = self.late.pop(0)
            self.now = max(self.now, T0 + at)
            self.tables[netns][ip] = state
            self.reports.append(nw.Reported(netns, entry(ip, state)))
        while self.answers and T0 + self.answers[0][0] <= to:
            at, asker, ip, answerer, peer_ip = self.answers.pop(0)
            self.now = max(self.now, T0 + at)
            for netns, addr, state in ((answerer, peer_ip, REACHABLE), (asker, ip, STALE)):
                if addr not in self.tables[netns]:
                    self.tables[netns][addr] = state
                    self.reports.append(nw.Reported(netns, entry(addr, state)))
                    self.remade.append((self.now, netns, addr))
        self.now = max(self.now, to)

    def entries(self) -> dict[str, dict[str, int]]:
        return {ns: dict(t) for ns, t in self.tables.items() if t}


def entry(ip: str, state: int) -> NeighMsg:
    return NeighMsg(family=2, index=2, dst=ip, lladdr=None, state=state, flags=0, master=None)


class Watch:
    """NeighWatch on the fake kernel: wait() moves the clock to the next report, or by the timeout."""

    def __init__(self, kernel: Kernel):
        self.kernel = kernel

    @property
    def lost(self) -> bool:
        return self.kernel.lost

    @lost.setter
    def lost(self, value: bool) -> None:
        self.kernel.lost = value

    def wait(self, timeout: float) -> list[nw.Reported]:
        k = self.kernel
        if not k.reports:
            due = k.now + max(0.0, timeout)
            nxt = [T0 + e[0] for e in (k.late[:1] + k.answers[:1])]
            k.move(min([due, *nxt]))
        out, k.reports = k.reports, []
        return out

    def __enter__(self) -> "Watch":
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class Sock:
    """A namespace's netlink socket: RTM_DELNEIGH deletes (reported, as the kernel does); nothing to read."""

    def __init__(self, kernel: Kernel, netns: str):
        self.kernel, self.netns = kernel, netns

    def send(self, msg: bytes) -> None:
        m = next(netlink.split(msg))
        assert m.mtype == rtnl.RTM_DELNEIGH
        n = parse_neigh(m)
        if self.kernel.tables[self.netns].pop(n.dst, None) is not None:
            self.kernel.deleted.append((self.kernel.now, self.netns, n.dst))
            self.kernel.reports.append(nw.Reported(self.netns, entry(n.dst, rtnl.NUD_FAILED), gone=True))

    def recv(self, size: int, flags: int = 0) -> bytes:
        raise BlockingIOError


class Ns:
    """An NsSockets of the fake kernel: its table through ``nl``, its servers through waiting()."""

    def __init__(self, kernel: Kernel, netns: str):
        self.kernel = kernel
        self.nl = SimpleNamespace(sock=Sock(kernel, netns), netns=netns)

    def waiting(self, ports) -> int:
        k = self.kernel
        k.move(k.now + k.look / 2)  # each of the two namespaces' look
        return 64 if k.now < k.serving_until else 0


def agent_on(kernel: Kernel, monkeypatch, snapshot: sweep.Snapshot | None = None) -> sweep.Sweeper:
    """The agent's sweeper of namespaces a and b (``snapshot``: what they held before the run; nothing)."""
    monkeypatch.setattr(sweep, "time", kernel)
    monkeypatch.setattr(sweep, "QUIET", QUIET)
    monkeypatch.setattr(sweep, "RESOLVING_POLL", 1 / 1024)
    monkeypatch.setattr(nb, "dump", lambda conn: [entry(ip, s) for ip, s in kernel.tables[conn.netns].items()])
    monkeypatch.setattr(nw, "backlog", lambda path=nw.SOFTNET_STAT: 7 if kernel.now < kernel.backlog_until else 0)
    opened = {ns: Ns(kernel, ns) for ns in ("a", "b")}
    job = SimpleNamespace(sweep=["a", "b"], tasks=[], units=[])
    return sweep.Sweeper(job, snapshot or {"a": set(), "b": set()}, opened.__getitem__, opened)


def stop(kernel: Kernel, monkeypatch, grace: float = GRACE) -> None:
    """The agent's clean-up after its first sweep (which found the tables empty), until the parent's kill."""
    agent_on(kernel, monkeypatch).sweep_until_quiet(T0 + grace, Watch(kernel))


def interrupted(kernel: Kernel, monkeypatch, grace: float = GRACE) -> None:
    """The whole clean-up of a stopped run (Sweeper.interrupted), until the parent's kill."""
    sweeper = agent_on(kernel, monkeypatch)
    monkeypatch.setattr(sweep.Sweeper, "watch", lambda self: Watch(kernel))
    sweeper.interrupted(T0 + grace, lambda: None)


def test_a_stopped_runs_late_answers_land_before_its_first_sweep(monkeypatch):
    """The run's pair of entries, and the lab's echo server, run late, still answering the run's requests for half a
    second. The first sweep came at once, before: each answer then found its pair gone and made it again (CI: a
    REACHABLE and a STALE entry left in two pods, the server answering on after the agent's grace). Now the answers
    land first, on the run's entries, and the sweep comes once the server is done."""
    answers = [(k / 16, "a", "10.244.0.3", "b", "10.244.0.2") for k in range(1, 9)]
    kernel = Kernel(serving_until=1 / 2, answers=answers, look=1 / 16)
    kernel.tables = {"a": {"10.244.0.3": REACHABLE}, "b": {"10.244.0.2": STALE}}
    interrupted(kernel, monkeypatch)
    assert kernel.remade == []  # each answer found its entries
    assert kernel.entries() == {}
    assert min(t for t, _, _ in kernel.deleted) >= T0 + 1 / 2 + QUIET  # once the server was quiet
    assert kernel.now < T0 + GRACE  # it ended by itself


def test_answers_that_outlast_the_wait_are_deleted_as_they_come(monkeypatch):
    # A server slower still: the run's packets land until AFTER_SETTLE before the end, then the sweep; the answers
    # after it make the pair again, deleted as the kernel reports them, and a last sweep.
    answers = [(k / 8, "a", "10.244.0.3", "b", "10.244.0.2") for k in range(1, 12)]
    kernel = Kernel(serving_until=11 / 8, answers=answers, look=1 / 16)
    kernel.tables = {"a": {"10.244.0.3": REACHABLE}, "b": {"10.244.0.2": STALE}}
    interrupted(kernel, monkeypatch)
    assert kernel.entries() == {}
    assert min(t for t, _, _ in kernel.deleted) >= T0 + GRACE - sweep.AFTER_SETTLE


def test_a_pair_a_late_answer_makes_while_the_agent_looks_at_the_servers_goes(monkeypatch):
    # A loaded machine: the look at the servers takes half a second; the late answer's ARP exchange is made in it.
    kernel = Kernel(late=[(1 / 4, "a", "10.244.0.3", REACHABLE), (1 / 4, "b", "10.244.0.2", STALE)], look=1 / 2)
    stop(kernel, monkeypatch)
    assert kernel.entries() == {}
    assert kernel.now < T0 + GRACE  # it ended by itself, quiet


def test_a_pair_made_after_the_last_look_goes(monkeypatch):
    # Made after the agent looked at both namespaces, as it waits for QUIET: deleted as the kernel reports it.
    kernel = Kernel(late=[(1 / 8, "a", "10.244.0.3", REACHABLE), (1 / 8, "b", "10.244.0.2", STALE)], look=1 / 16)
    stop(kernel, monkeypatch)
    assert kernel.entries() == {}
    assert [(t - T0, ns) for t, ns, _ in kernel.deleted] == [(1 / 8, "a"), (1 / 8, "b")]


def test_a_resolution_reported_under_way_goes_once_resolved(monkeypatch):
    # Deleting an INCOMPLETE entry drops the packets queued behind it (a SYN-ACK TCP sends again a second later).
    kernel = Kernel(late=[(1 / 8, "a", "10.244.0.3", INCOMPLETE), (3 / 8, "a", "10.244.0.3", REACHABLE)])
    stop(kernel, monkeypatch)
    assert kernel.entries() == {}
    assert kernel.deleted == [(T0 + 3 / 8, "a", "10.244.0.3")]


def test_a_resolution_nobody_answers_goes_after_its_wait(monkeypatch):
    kernel = Kernel(late=[(1 / 8, "a", "10.244.0.9", INCOMPLETE)])
    monkeypatch.setattr(sweep, "RESOLVING_WAIT", 1 / 4)
    stop(kernel, monkeypatch)
    assert kernel.deleted == [(T0 + 1 / 8 + 1 / 4, "a", "10.244.0.9")]


def test_packets_in_the_cpus_backlogs_keep_it_waiting(monkeypatch):
    # The veths' receive work has not run on them yet: their answers are still to come.
    kernel = Kernel(backlog_until=1.0, late=[(1 + 1 / 16, "b", "10.244.0.2", STALE)])
    stop(kernel, monkeypatch)
    assert kernel.entries() == {}
    assert kernel.now >= T0 + 1 + QUIET


def test_requests_the_servers_hold_keep_it_waiting(monkeypatch):
    kernel = Kernel(serving_until=3 / 4, late=[(7 / 8, "a", "10.244.0.3", REACHABLE)])
    stop(kernel, monkeypatch)
    assert kernel.entries() == {}
    assert kernel.now >= T0 + 7 / 8 + QUIET


def test_an_entry_never_reported_is_found_by_the_last_sweep(monkeypatch):
    kernel = Kernel()
    kernel.tables["b"]["10.244.0.7"] = STALE  # made after the first sweep, its report lost
    stop(kernel, monkeypatch)
    assert kernel.entries() == {}


def test_it_ends_at_the_parents_kill_when_entries_keep_coming(monkeypatch):
    # A lab that never goes quiet (another prober's traffic): no wait past the deadline.
    late = [(k / 16, "a", f"10.244.0.{k % 200 + 2}", REACHABLE) for k in range(1, 1000)]
    kernel = Kernel(late=late, look=1 / 8)
    stop(kernel, monkeypatch, grace=1.0)
    assert kernel.now <= T0 + 1.0 + 1 / 8  # at most one look begun before the deadline


def test_the_last_sweep_ends_by_the_deadline_on_a_machine_where_a_sweep_takes_long(monkeypatch):
    # Each namespace's dump takes 1/8 s (a loaded machine's sweep of 40 pods took 0.17 s), and the lab never goes
    # quiet: the last sweep began at the deadline, and the parent's SIGKILL came in its middle.
    late = [(k / 16, "a", f"10.244.0.{k % 200 + 2}", REACHABLE) for k in range(1, 1000)]
    kernel = Kernel(late=late, look=1 / 8)
    sweeper = agent_on(kernel, monkeypatch)
    dump = sweep.nb.dump

    def slow(conn):
        kernel.move(kernel.now + 1 / 8)
        return dump(conn)

    monkeypatch.setattr(sweep.nb, "dump", slow)
    swept = sweep.Sweeper.sweep
    ends: list[float] = []

    def timed(self, until=None):
        n = swept(self, until)
        ends.append(kernel.now)
        return n

    monkeypatch.setattr(sweep.Sweeper, "sweep", timed)
    sweeper.sweep()  # the first sweep, as an interrupted run's: 1/4 s
    sweeper.sweep_until_quiet(T0 + 1.0, Watch(kernel))
    assert ends[-1] <= T0 + 1.0, ends[-1] - T0


def test_entries_found_or_the_labs_own_changing_are_not_the_runs(monkeypatch):
    kernel = Kernel(late=[(1 / 8, "a", "10.244.0.1", STALE), (1 / 8, "a", "10.244.1.0", rtnl.NUD_PERMANENT)])
    a = agent_on(kernel, monkeypatch, {"a": {(2, "10.244.0.1")}, "b": set()})
    a.sweep_until_quiet(T0 + GRACE, Watch(kernel))
    assert kernel.deleted == []


def test_the_cpus_backlogs_are_read_from_softnet_stat(tmp_path):
    stat = tmp_path / "softnet_stat"
    zeros = " ".join(["00000000"] * 6)
    stat.write_text(f"057cfdaa 00075160 00000016 {zeros} 00000000 00000000 00000003 00000000 00000003 00000000\n"
                    f"05937311 0011c763 0000001f {zeros} 00000000 00000000 00000011 00000001 00000010 00000001\n")
    assert nw.backlog(str(stat)) == 3 + 17
    stat.write_text(f"057cfdaa 00075160 00000016 {zeros} 00000000 00000000\n")  # an older kernel: not counted
    assert nw.backlog(str(stat)) == 0
    assert nw.backlog(str(tmp_path / "none")) == 0


class Datagrams:
    def __init__(self, *data: bytes):
        self.data = list(data)

    def recv(self, size: int, flags: int = 0) -> bytes:
        if not self.data:
            raise BlockingIOError
        return self.data.pop(0)

    def fileno(self) -> int:
        return 99

    def close(self) -> None:
        pass


def report(mtype: int, state: int, pid: int) -> bytes:
    body = rtnl.NDMSG.pack(2, 5, state, 0, 0) + netlink.ipv4(rtnl.NDA_DST, "10.244.0.3")
    return netlink.HDR.pack(16 + len(body), mtype, 0, 0, pid) + body


def test_a_deletion_the_agent_asked_for_is_not_a_new_entry():
    # The kernel reports a deletion asked for as the entry FAILED (with the asker's port), then deleted; a
    # resolution that failed by itself (the kernel's own change, port 0) is an entry of the run to delete.
    sock = Datagrams(report(rtnl.RTM_NEWNEIGH, rtnl.NUD_FAILED, 4242) + report(rtnl.RTM_DELNEIGH, rtnl.NUD_FAILED, 4242)
                     + report(rtnl.RTM_NEWNEIGH, rtnl.NUD_FAILED, 0) + report(rtnl.RTM_NEWNEIGH, STALE, 0))
    got = nw.NeighWatch({"a": sock})._read(99)
    assert [(r.gone, r.entry.state, r.entry.index, r.entry.dst) for r in got] == [
        (True, rtnl.NUD_FAILED, 5, "10.244.0.3"), (True, rtnl.NUD_FAILED, 5, "10.244.0.3"),
        (False, rtnl.NUD_FAILED, 5, "10.244.0.3"), (False, STALE, 5, "10.244.0.3")]


def test_reports_lost_to_a_full_buffer_are_said():
    class Full(Datagrams):
        def recv(self, size: int, flags: int = 0) -> bytes:
            if self.data == ["full"]:
                self.data = []
                raise OSError(105, "No buffer space available")
            return super().recv(size, flags)

    watch = nw.NeighWatch({"a": Full("full")})
    assert watch._read(99) == [] and watch.lost

