"""A worker's share of the neighbour budget: admission, reference counts, seeded pairs (no root)."""

from __future__ import annotations

from netlab.kernel import netlink as nl
from netlab.kernel import rtnl, rtnl_parse
from netlab.probe.budget import SEEDED_MAX, Budget
from netlab.probe.tasks import Seed, Unit
from netlab.probe import neighbours as nb
from netlab.probe.neighbours import Entry


class FakeNlSocket:
    def __init__(self):
        self.sent: list[bytes] = []

    def send(self, data: bytes) -> int:
        self.sent.append(data)
        return len(data)

    def recv(self, size: int, flags: int = 0) -> bytes:
        raise BlockingIOError  # no answers queued: the kernel accepted everything


class FakeNs:
    """The sockets of one namespace, as the budget uses them: interface indexes and a netlink socket."""

    def __init__(self, indexes: dict[str, int]):
        self.indexes = indexes
        self.nl = type("Conn", (), {"sock": FakeNlSocket()})()

    def index(self, ifname: str) -> int | None:
        return self.indexes.get(ifname)


def budget(limit: int = 3, snapshot=None, macs=None):
    spaces = {"a": FakeNs({"eth0": 2}), "b": FakeNs({"eth0": 2}), "n": FakeNs({"cni0": 3})}

    def sockets(name: str) -> FakeNs:
        if name not in spaces:
            raise FileNotFoundError(name)  # a namespace that is gone
        return spaces[name]

    return Budget(limit, snapshot or {}, macs or {}, sockets), spaces  # type: ignore[arg-type]


def sent(ns: FakeNs) -> list[tuple[int, int, str | None, str | None, int]]:
    """(message type, flags, ip, MAC, state) of each request the budget sent in that namespace."""
    out = []
    for data in ns.nl.sock.sent:
        (m,) = nl.split(data)
        n = rtnl_parse.parse_neigh(m)
        out.append((m.mtype, m.flags, n.dst, n.lladdr, n.state))
    return out


AB = Entry("a", "eth0", "10.244.0.3")
BA = Entry("b", "eth0", "10.244.0.2")
GW = Entry("n", "cni0", "10.244.0.2")


def test_a_unit_starts_only_when_its_new_entries_fit():
    b, _ = budget(limit=3)
    big = Unit(phases=[[0]], entries=[AB, BA, GW, Entry("a", "eth0", "10.244.0.9")])
    assert b.admits(big)  # nothing runs yet: a unit bigger than the budget still goes, alone
    b, _ = budget(limit=3)
    b.hold(Unit(phases=[[0]], entries=[AB, BA]))
    assert b.admits(Unit(phases=[[1]], entries=[GW]))  # 2 + 1 new fits 3
    assert not b.admits(Unit(phases=[[1]], entries=[GW, Entry("b", "eth0", "10.244.0.9")]))  # 2 + 2 does not
    assert b.admits(Unit(phases=[[1]], entries=[AB, BA]))  # entries already held cost nothing


def test_an_entry_is_deleted_when_the_last_unit_that_needs_it_is_done():
    b, spaces = budget(limit=10)
    u1, u2 = Unit(phases=[[0]], entries=[AB, BA]), Unit(phases=[[1]], entries=[AB])
    b.hold(u1)
    b.hold(u2)
    b.release(u1)
    assert sent(spaces["a"]) == [] and b.live == {AB: 1}  # u2 still needs A's entry for B
    assert sent(spaces["b"]) == [(rtnl.RTM_DELNEIGH, nl.NLM_F_REQUEST, "10.244.0.2", None, 0)]
    b.release(u2)
    assert sent(spaces["a"]) == [(rtnl.RTM_DELNEIGH, nl.NLM_F_REQUEST, "10.244.0.3", None, 0)]
    assert b.live == {} and b.deleted == 2


def test_entries_from_before_the_run_and_gone_namespaces_are_left_alone():
    b, spaces = budget(limit=10, snapshot={"a": {(2, "10.244.0.3")}})
    u = Unit(phases=[[0]], entries=[AB, Entry("gone", "eth0", "10.244.0.7")])
    b.hold(u)
    b.release(u)
    assert sent(spaces["a"]) == [] and b.deleted == 0


def test_seeded_pairs_make_permanent_entries_with_the_peers_mac_then_delete_them():
    macs = {"a": bytes.fromhex("0a580af40002"), "b": bytes.fromhex("0a580af40003")}
    b, spaces = budget(limit=10, macs=macs)
    pair = Unit(phases=[[0], [1]], seed=[Seed("a", "eth0", "10.244.0.3", "b"), Seed("b", "eth0", "10.244.0.2", "a")])
    b.hold(pair)
    (add,) = sent(spaces["a"])
    mtype, flags, ip, mac, state = add
    assert (mtype, ip, mac, state) == (rtnl.RTM_NEWNEIGH, "10.244.0.3", "0a:58:0a:f4:00:03", rtnl.NUD_PERMANENT)
    assert flags & nl.NLM_F_EXCL and not flags & nl.NLM_F_ACK  # an existing entry is used, never replaced
    assert b.live == {} and b.seeded == 1 and b.seeded_total == 2  # nothing counted against the budget
    b.release(pair)
    assert sent(spaces["a"])[-1][:3] == (rtnl.RTM_DELNEIGH, nl.NLM_F_REQUEST, "10.244.0.3")
    assert b.seeded == 0


def test_seeded_pairs_in_flight_are_capped():
    b, _ = budget(limit=10)
    b.seeded = SEEDED_MAX
    assert not b.admits(Unit(phases=[[0]], seed=[Seed("a", "eth0", "10.244.0.3", "b")]))
    assert b.admits(Unit(phases=[[0]], entries=[AB]))


def test_a_pair_whose_mac_is_unknown_resolves_by_arp():
    b, spaces = budget(limit=10, macs={"a": None})
    b.hold(Unit(phases=[[0]], seed=[Seed("b", "eth0", "10.244.0.2", "a")]))
    assert sent(spaces["b"]) == []



def test_only_unresolved_entries_from_before_the_run_are_forgotten():
    """INCOMPLETE and FAILED entries are deleted before a run (a repaired fault's half-done resolution would fail
    its first packets); resolved, PERMANENT and NOARP ones stay."""
    ns = FakeNs({"cni0": 3})
    entries = [rtnl_parse.NeighMsg(2, 3, f"10.244.0.{i}", None, state, 0, None)
               for i, state in enumerate([rtnl.NUD_INCOMPLETE, rtnl.NUD_FAILED, rtnl.NUD_REACHABLE, rtnl.NUD_STALE,
                                          rtnl.NUD_PERMANENT, rtnl.NUD_NOARP], start=2)]
    assert nb.forget_unresolved(ns.nl, entries) == 2  # type: ignore[arg-type]
    assert [(t, ip) for t, _, ip, _, _ in sent(ns)] == [(rtnl.RTM_DELNEIGH, "10.244.0.2"),
                                                        (rtnl.RTM_DELNEIGH, "10.244.0.3")]


# --- entries two workers hold (held.py) ---------------------------------------------------


def test_an_entry_two_workers_hold_is_deleted_only_when_both_are_done():
    """Node n's entry for a pod (GW) serves a unit of each worker: the first worker done must not delete it
    while the other's packets may wait behind it (a deleted INCOMPLETE entry fails them: host unreachable)."""
    from netlab.probe.held import HeldEntries

    held = HeldEntries([AB, GW])
    a, spaces = budget(limit=10)
    b = Budget(10, {}, {}, lambda name: spaces[name], held)  # type: ignore[arg-type]
    a.held = held
    ua, ub = Unit(phases=[[0]], entries=[GW, AB]), Unit(phases=[[1]], entries=[GW])
    a.hold(ua)
    b.hold(ub)
    a.release(ua)
    assert sent(spaces["n"]) == []  # b's unit still needs it
    assert sent(spaces["a"]) == [(rtnl.RTM_DELNEIGH, nl.NLM_F_REQUEST, "10.244.0.3", None, 0)]  # a's alone
    b.release(ub)
    assert sent(spaces["n"]) == [(rtnl.RTM_DELNEIGH, nl.NLM_F_REQUEST, "10.244.0.2", None, 0)]
    assert list(held.counts) == [0, 0]
    held.close()


def test_only_entries_two_units_name_are_counted_and_the_others_take_no_lock(monkeypatch):
    """A unit is one worker's whole: an entry no other unit names is no other worker's, made and deleted by its
    own with no lock. Pods on one bridge share no entry (each pair its own two): every unit's start and end took
    the shared lock, two lockf calls each (5,100 of 50 pods' ICMP run)."""
    import fcntl

    from netlab.probe import held as held_mod
    from netlab.probe.held import HeldEntries

    held = HeldEntries.of_units([Unit(phases=[[0]], entries=[GW, AB]), Unit(phases=[[1]], entries=[GW]),
                                 Unit(phases=[[2]], entries=[BA, BA])])
    assert held.index == {GW: 0}  # BA twice in one unit: still that unit's alone
    locks = []
    monkeypatch.setattr(held_mod.fcntl, "lockf", lambda fd, op: locks.append(op))
    deleted: list[Entry] = []
    held.hold([AB])
    held.release([AB], deleted.append)
    assert deleted == [AB] and locks == []
    held.hold([GW, AB])
    held.release([AB, GW], deleted.append)
    assert deleted == [AB, AB, GW] and locks == [fcntl.LOCK_EX, fcntl.LOCK_UN] * 2 and list(held.counts) == [0]
    held.close()


def test_the_held_counts_and_their_lock_are_shared_with_a_forked_worker():
    import fcntl
    import os

    from netlab.probe.held import HeldEntries

    held = HeldEntries([GW])
    locked_r, locked_w = os.pipe()  # the worker -> this process: "I hold the entry and the lock"
    done_r, done_w = os.pipe()  # this process -> the worker: "tried it, you may go"
    pid = os.fork()
    if pid == 0:  # the worker
        try:
            held.hold([GW])
            fcntl.lockf(held.fd, fcntl.LOCK_EX)
            os.write(locked_w, b"x")
            os.read(done_r, 1)
        finally:
            os._exit(0)  # with the lock held: the kernel drops it
    try:
        assert os.read(locked_r, 1) == b"x"
        try:
            fcntl.lockf(held.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            locked_out = False
        except OSError:
            locked_out = True
        assert locked_out  # the worker's lock excludes this process
    finally:
        os.write(done_w, b"x")
        os.waitpid(pid, 0)
        for fd in (locked_r, locked_w, done_r, done_w):
            os.close(fd)
    deleted: list[Entry] = []
    held.hold([GW])
    held.release([GW], deleted.append)
    assert deleted == [] and held.counts[0] == 1  # the worker's hold is seen here; its lock is gone with it
    held.release([GW], deleted.append)
    assert deleted == [GW]
    held.close()
