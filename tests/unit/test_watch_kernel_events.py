"""What the watcher hears from the kernel, without root: rtnetlink and nf_tables notifications in words, and
taskstats' exit records."""

from __future__ import annotations

import struct
from socket import AF_INET

from netlab.kernel import events, netlink, rtnl, taskstats


def _msg(mtype: int, body: bytes) -> netlink.Msg:
    return netlink.Msg(mtype, 0, 0, body)


# Real notifications (kernel 6.18, RTNLGRP_NEIGH, a veth in a namespace of its own), each a change then a deletion in
# state FAILED: a dynamic entry 10.9.0.5 deleted, a PERMANENT one 10.9.0.6 deleted, and 10.9.0.7 that nothing answered
# (the kernel's GC says the same of the entries it forgets).
_FAILED = {
    ("10.9.0.5", rtnl.RTM_NEWNEIGH): "020000000300000020000001080001000a09000508000400000000001400030095010000950100009501000001000000",
    ("10.9.0.5", rtnl.RTM_DELNEIGH): "020000000300000020000001080001000a09000508000400000000001400030095010000950100009501000000000000",
    ("10.9.0.6", rtnl.RTM_NEWNEIGH): "020000000300000020000001080001000a09000608000400000000001400030094010000940100009401000001000000",
    ("10.9.0.6", rtnl.RTM_DELNEIGH): "020000000300000020000001080001000a09000608000400000000001400030094010000940100009401000000000000",
    ("10.9.0.7", rtnl.RTM_NEWNEIGH): "020000000300000020000001080001000a090007080004000600000014000300a2180000320100000000000001000000",
    ("10.9.0.7", rtnl.RTM_DELNEIGH): "020000000300000020000001080001000a09000708000400060000001400030003190000930100006000000000000000",
}


def test_only_the_labs_permanent_neighbours_are_drift():
    """A neighbour the lab holds PERMANENT, deleted, is said; the FAILED entries of the kernel's own (a dynamic
    entry deleted or forgotten, an address nothing answers) are not, though they come in the same shape."""
    held = frozenset({"10.9.0.6"})
    said = {(dst, t): events.describe(_msg(t, bytes.fromhex(body)), permanent=held)
            for (dst, t), body in _FAILED.items()}
    assert said == {("10.9.0.5", rtnl.RTM_NEWNEIGH): None, ("10.9.0.5", rtnl.RTM_DELNEIGH): None,
                    ("10.9.0.6", rtnl.RTM_NEWNEIGH): "neighbour 10.9.0.6 changed",
                    ("10.9.0.6", rtnl.RTM_DELNEIGH): "neighbour 10.9.0.6 deleted",
                    ("10.9.0.7", rtnl.RTM_NEWNEIGH): None, ("10.9.0.7", rtnl.RTM_DELNEIGH): None}


def test_notifications_in_words():
    route = rtnl.RTMSG.pack(AF_INET, 24, 0, 0, 254, 3, 0, 1, 0) + netlink.ipv4(rtnl.RTA_DST, "10.244.1.0")
    assert events.describe(_msg(rtnl.RTM_DELROUTE, route)) == "route 10.244.1.0/24 deleted"
    local = rtnl.RTMSG.pack(AF_INET, 32, 0, 0, 255, 2, 254, 2, 0) + netlink.ipv4(rtnl.RTA_DST, "10.244.0.1")
    # the local table's: the kernel's, made with an address, but the lab's too (`ip route del local ... table local`)
    assert events.describe(_msg(rtnl.RTM_NEWROUTE, local)) == "route local 10.244.0.1/32 table local added"
    brd = rtnl.RTMSG.pack(AF_INET, 32, 0, 0, 255, 2, 253, 3, 0) + netlink.ipv4(rtnl.RTA_DST, "10.244.0.255")
    assert events.describe(_msg(rtnl.RTM_DELROUTE, brd)) == "route broadcast 10.244.0.255/32 table local deleted"
    learned = rtnl.NDMSG.pack(AF_INET, 3, rtnl.NUD_REACHABLE, 0, 1) + netlink.ipv4(rtnl.NDA_DST, "10.244.0.3")
    assert events.describe(_msg(rtnl.RTM_NEWNEIGH, learned)) is None  # learned and forgotten all the time
    permanent = rtnl.NDMSG.pack(AF_INET, 3, rtnl.NUD_PERMANENT, 0, 1) + netlink.ipv4(rtnl.NDA_DST, "10.244.1.0")
    held = frozenset({"10.244.1.0", "aa:bb:cc:00:00:01"})
    assert events.describe(_msg(rtnl.RTM_DELNEIGH, permanent), permanent=held) == "neighbour 10.244.1.0 deleted"
    assert events.describe(_msg(rtnl.RTM_DELNEIGH, permanent)) is None  # a PERMANENT entry not the lab's
    # One of the lab's PERMANENT entries made REACHABLE by hand: the lab's change, said; a learned one is not.
    demoted = rtnl.NDMSG.pack(AF_INET, 3, rtnl.NUD_REACHABLE, 0, 1) + netlink.ipv4(rtnl.NDA_DST, "10.244.1.0")
    assert events.describe(_msg(rtnl.RTM_NEWNEIGH, demoted), permanent=held) == "neighbour 10.244.1.0 changed"
    assert events.describe(_msg(rtnl.RTM_NEWNEIGH, learned), permanent=held) is None
    fdb = rtnl.NDMSG.pack(rtnl.AF_BRIDGE, 3, rtnl.NUD_REACHABLE, 2, 0) + netlink.mac(rtnl.NDA_LLADDR,
                                                                         "aa:bb:cc:00:00:01")
    assert events.describe(_msg(rtnl.RTM_NEWNEIGH, fdb), permanent=held) == "fdb entry aa:bb:cc:00:00:01 changed"
    assert events.describe(_msg(rtnl.RTM_NEWNEIGH, fdb)) is None  # not the lab's
    link = rtnl.IFINFO.pack(0, 1, 2, 0, 0) + netlink.string(rtnl.IFLA_IFNAME, "eth0")
    assert events.describe(_msg(rtnl.RTM_NEWLINK, link)) == "link eth0 down"
    # The bridge's own word on a port (AF_BRIDGE, the same group): `bridge link set dev veth1 state learning`
    port = (rtnl.IFINFO.pack(rtnl.AF_BRIDGE, 1, 9, 0x10043, 0) + netlink.string(rtnl.IFLA_IFNAME, "veth1")
            + netlink.nested(rtnl.IFLA_PROTINFO, netlink.u8(rtnl.IFLA_BRPORT_STATE, 2)))
    assert events.describe(_msg(rtnl.RTM_NEWLINK, port)) == "bridge port veth1 learning"
    assert events.describe(_msg(rtnl.RTM_DELLINK, port)) == "bridge port veth1 released"  # not the link deleted
    assert events.describe(_msg((10 << 8) | 8, b"\0" * 4), netlink.NETLINK_NETFILTER) == "nf_tables rule deleted"
    assert events.describe(_msg((1 << 8) | 0, b"\0" * 4), netlink.NETLINK_NETFILTER) is None  # conntrack
    assert events.describe(_msg(events.RTM_NEWNETCONF, struct.pack("=Bxxx", 2))) == "forwarding or rp_filter changed"


def exit_record(family: int, pid: int, ac_exitcode: int, kind: int = taskstats.TASKSTATS_TYPE_AGGR_PID) -> bytes:
    """A TASKSTATS_CMD_NEW message as the kernel sends it at a task's exit (struct taskstats cut short)."""
    stats = struct.pack("=HxxIBB", 1, ac_exitcode, 0, 0) + bytes(320)
    inner = netlink.u32(taskstats.TASKSTATS_TYPE_PID, pid) + netlink.attr(taskstats.TASKSTATS_TYPE_STATS, stats)
    body = taskstats.GENL_HDR.pack(taskstats.TASKSTATS_CMD_NEW, 1, 0) + netlink.nested(kind, inner)
    return netlink.message(family, 0, body)


def test_exit_records_give_each_pid_its_exit_code_as_wait_says_it():
    data = (exit_record(31, 100, 0x300) + exit_record(31, 101, 9) + exit_record(31, 102, 0)
            + exit_record(31, 103, 0x86)  # SIGABRT with a core
            + exit_record(31, 104, 0x100, kind=5)  # a thread group's total: the leader's own record says it
            + exit_record(32, 105, 0x100))  # another family's message
    assert list(taskstats.exits_in(data, 31)) == [(100, 3), (101, 137), (102, 0), (103, 134)]


def test_a_kernel_without_taskstats_gives_no_family_and_no_listener(monkeypatch):
    """The controller answers ENOENT for a family the kernel lacks: no listener, and the doctor says why."""
    import errno

    class NoFamily:
        timeout = 1.0

        def __init__(self, *args):
            self.closed = False

        def get(self, what, msg):
            raise netlink.NetlinkError(errno.ENOENT, what)

        def close(self):
            self.closed = True

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.close()

    monkeypatch.setattr(netlink, "Conn", NoFamily)
    assert taskstats.listen() is None
    assert taskstats.available() == (False, "the kernel has no TASKSTATS family (CONFIG_TASKSTATS)")


def test_a_local_table_route_said_with_its_address_is_the_address_s_change():
    """`ip addr del 10.244.0.1/24 dev cni0` takes its local and broadcast routes: the address's line says it (one
    line per address, not three); a local route deleted alone (or another address's) is said."""
    from netlab.api.watch_lines import summary

    def msg(mtype: int, body: bytes) -> events.Event:
        m = _msg(mtype, body)
        return events.Event("n1", events.describe(m) or "", events.address_of(m))

    addr = rtnl.IFADDR.pack(AF_INET, 24, 0, 0, 3) + netlink.ipv4(rtnl.IFA_LOCAL, "10.244.0.1")
    local = (rtnl.RTMSG.pack(AF_INET, 32, 0, 0, 255, 2, 254, 2, 0) + netlink.ipv4(rtnl.RTA_DST, "10.244.0.1")
             + netlink.ipv4(rtnl.RTA_PREFSRC, "10.244.0.1"))
    brd = (rtnl.RTMSG.pack(AF_INET, 32, 0, 0, 255, 2, 253, 3, 0) + netlink.ipv4(rtnl.RTA_DST, "10.244.0.255")
           + netlink.ipv4(rtnl.RTA_PREFSRC, "10.244.0.1"))
    gone = [msg(rtnl.RTM_DELADDR, addr), msg(rtnl.RTM_DELROUTE, local), msg(rtnl.RTM_DELROUTE, brd)]
    assert [e.address for e in gone] == ["10.244.0.1"] * 3
    assert summary(gone) == ["address 10.244.0.1/24 deleted in n1"]
    assert summary(gone[1:]) == ["route local 10.244.0.1/32 table local deleted in n1",
                                 "route broadcast 10.244.0.255/32 table local deleted in n1"]
    other = events.Event("n2", "address 10.244.0.1/24 deleted", "10.244.0.1")  # another namespace's
    assert summary([other, gone[1]]) == ["address 10.244.0.1/24 deleted in n2",
                                         "route local 10.244.0.1/32 table local deleted in n1"]
