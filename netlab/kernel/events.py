"""What the kernel tells a listener when a lab's namespaces change: rtnetlink and nf_tables notifications.

``ip monitor`` and ``nft monitor`` in code. One NETLINK_ROUTE socket per
namespace joins the multicast groups of the objects a lab is made of (links,
and in their group the bridge ports' STP state, IPv4 addresses and routes,
neighbours and FDB entries, qdiscs, and the ``netconf`` group that reports
``forwarding`` and ``rp_filter`` changes), and one NETLINK_NETFILTER socket
joins NFNLGRP_NFTABLES, which carries every change iptables-nft makes. The
kernel sends each change as it happens; the watcher sleeps in ``select`` until
one comes (no polling). Changes a lab does not own are dropped here:
neighbour entries the kernel learns and forgets all the time (only PERMANENT
ones are the lab's), bridge FDB entries it learns.

A socket keeps its namespace alive: :meth:`Listener.close` must run before
the lab goes, and the watcher reopens its sockets after a repair that made
a namespace again (a new namespace). A namespace deleted with ``ip netns
del`` sends no message at all: an inotify watch on /run/netns reports it.
A full receive buffer (ENOBUFS) means changes were lost: reported as an
event of its own, so the watcher reads the whole lab.
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass
from typing import Iterable, Sequence

from netlab.kernel import fdwait, libc, netlink, netns as nsmod, rtnl, rtnl_bridge, rtnl_parse, testhooks
from netlab.kernel.link_echo import Links

# Multicast groups (linux/rtnetlink.h RTNLGRP_*), as bit masks for bind() where they fit in 32 bits.
RTNLGRP_LINK, RTNLGRP_NEIGH, RTNLGRP_TC, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV4_ROUTE = 1, 3, 4, 5, 7
RTNLGRP_IPV4_NETCONF = 24
NFNLGRP_NFTABLES = 7
NETLINK_ADD_MEMBERSHIP = 1
RTM_NEWQDISC, RTM_DELQDISC = 36, 37
RTM_NEWNETCONF = 80
NFNL_SUBSYS_NFTABLES = 10
NFT_MSG_NAMES = {0: "table", 3: "chain", 6: "rule", 9: "set", 12: "element", 16: "generation"}

_ROUTE_GROUPS = (RTNLGRP_LINK, RTNLGRP_NEIGH, RTNLGRP_TC, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV4_ROUTE)


def _mask(groups: Iterable[int]) -> int:
    return sum(1 << (g - 1) for g in groups)


@dataclass(frozen=True)
class Event:
    """One change the kernel reported: where, and what in ``ip monitor``'s words."""

    netns: str
    what: str
    # The address an address's notification is of, or a local-table route's (its prefsrc): the kernel makes and
    # removes an address's local-table routes with it, whose notifications then say nothing more (watch_lines)
    address: str = ""


class Listener:
    """Sockets subscribed to the changes of some namespaces; :meth:`wait` returns what changed."""

    def __init__(self, namespaces: Sequence[str]):
        self._socks: dict[int, tuple[str, socket.socket, int]] = {}  # fd -> (netns, socket, proto)
        self.namespaces = sorted(namespaces)
        # netns -> the neighbours' addresses and FDB entries' MACs the lab holds PERMANENT there: a change
        # of one of those to another state (demoted by hand) is the lab's too (the owner sets it anew).
        self.permanent: dict[str, frozenset[str]] = {}
        # netns -> the last word of each of its links: a notification that only says a link came to run (the
        # link watch's, late on a busy machine) is no change (link_echo.py)
        self.links: dict[str, Links] = {}
        self.names: NetnsNames | None = None
        dumping: list[tuple[str, netlink.Conn]] = []
        try:
            self.names = NetnsNames(self.namespaces)
            for ns in self.namespaces:
                conn = self._open(ns)
                if conn is not None:
                    dumping.append((ns, conn))
            # Every socket listens: a change from now on is a notification, and is in the dumps below too (which
            # a notification of it then matches: link_echo takes it for no change; the watcher's comparison of
            # the lab with the plan once it listens sees it)
            testhooks.fault_point("watch-subscribed")
            for ns, conn in dumping:
                try:
                    self.links[ns] = Links(conn.dump(f"links in {ns}", rtnl.link_dump()))
                except OSError:
                    self.links[ns] = Links()  # every link unknown: each notification said, as before
        except BaseException:
            self.close()
            raise
        finally:
            for _, conn in dumping:
                conn.close()

    def _open(self, netns: str) -> netlink.Conn | None:
        """The namespace's sockets, subscribed; returns a connection of that namespace for the dump of its
        links (None: it is gone already, or could not be opened)."""
        if not nsmod.is_netns_mount(netns):
            return None  # gone already: the resync sees it
        with nsmod.entered(netns):
            route = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, netlink.NETLINK_ROUTE)
            route.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            route.bind((0, _mask(_ROUTE_GROUPS)))
            route.setsockopt(netlink.SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, RTNLGRP_IPV4_NETCONF)
            self._socks[route.fileno()] = (netns, route, netlink.NETLINK_ROUTE)
            self._open_nft(netns)
            try:
                return netlink.Conn()
            except OSError:
                self.links[netns] = Links()  # every link unknown: each notification said, as before
                return None

    def _open_nft(self, netns: str) -> None:
        """In the namespace: a socket on its nf_tables changes (none without nfnetlink: legacy iptables changes
        are seen by the periodic resync only)."""
        try:
            nft = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, netlink.NETLINK_NETFILTER)
        except OSError:
            return
        nft.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        try:
            nft.bind((0, _mask([NFNLGRP_NFTABLES])))
        except OSError:
            nft.close()
            return
        self._socks[nft.fileno()] = (netns, nft, netlink.NETLINK_NETFILTER)

    def fileno_list(self) -> list[int]:
        return list(self._socks)

    def close(self) -> None:
        for _, sock, _ in self._socks.values():
            sock.close()
        self._socks.clear()
        if self.names is not None:
            self.names.close()
            self.names = None

    def _fds(self) -> list[int]:
        return list(self._socks) + ([self.names.fd] if self.names is not None else [])

    def __enter__(self) -> "Listener":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait(self, timeout: float, extra: Sequence[int] = ()) -> tuple[list[Event], list[int]]:
        """Sleep until the kernel reports a change (or one of ``extra`` fds is readable), at most ``timeout`` s.

        Returns the lab's changes and the ``extra`` fds that are readable.
        """
        mine = self._fds()
        try:
            ready = fdwait.ready(mine + list(extra), max(timeout, 0))  # past descriptor 1023 in a big lab
        except InterruptedError:
            return [], []
        events = []
        for fd in ready:
            if fd in self._socks:
                events += self._read(fd)
            elif self.names is not None and fd == self.names.fd:
                events += self._let_go(self.names.read())
        return events, [fd for fd in ready if fd not in mine]

    def drain(self) -> list[Event]:
        """Read what is queued now, without waiting (the echo of the watcher's own repairs)."""
        out = self._let_go(self.names.read()) if self.names is not None else []
        for fd in list(self._socks):
            out += self._read(fd)
        return out

    def _let_go(self, events: list[Event]) -> list[Event]:
        """A namespace deleted (its name unmounted) lives on while a socket is in it, and so do its links: a
        node's veths, whose pods' eth0 then stay paired with them, so that a repair cannot make the pair again.
        Its sockets are closed at once; a listener made after the repair listens to the namespace made again."""
        for e in events:
            if e.what == "namespace deleted":
                for fd in [fd for fd, (ns, _, _) in self._socks.items() if ns == e.netns]:
                    self._socks.pop(fd)[1].close()
        return events

    def _read(self, fd: int) -> list[Event]:
        netns, sock, proto = self._socks[fd]
        out: list[Event] = []
        for data in netlink.queued(sock):
            if data is None:
                out.append(Event(netns, "changes were lost (receive buffer full)"))
                continue
            for m in netlink.split(data):
                what = describe(m, proto, self.permanent.get(netns, frozenset()), self.links.get(netns))
                if what:
                    out.append(Event(netns, what, address_of(m) if proto == netlink.NETLINK_ROUTE else ""))
        return out


def describe(m: netlink.Msg, proto: int = netlink.NETLINK_ROUTE, permanent: frozenset[str] = frozenset(),
             links: Links | None = None) -> str | None:
    """A notification in words, or None for a change the lab does not own. ``permanent``: the neighbours'
    addresses and FDB entries' MACs the lab holds PERMANENT in that namespace; ``links``: the last word of its
    links, which a link's notification updates (None: every link notification said), and by which one that only
    says a link came to run (its carrier up, nothing else changed) is no change."""
    if proto == netlink.NETLINK_NETFILTER:
        subsys, msg = m.mtype >> 8, m.mtype & 0xFF
        if subsys != NFNL_SUBSYS_NFTABLES:
            return None
        verb = "deleted" if msg in (2, 5, 8, 11, 14) else "changed"
        return f"nf_tables {NFT_MSG_NAMES.get(msg - (msg % 3) if msg < 15 else 16, 'object')} {verb}"
    t = m.mtype
    if links is not None and links.note(m):
        return None
    if t in (rtnl.RTM_NEWLINK, rtnl.RTM_DELLINK) and m.body[:1] == bytes([rtnl.AF_BRIDGE]):
        # The bridge's own word on a port (br_ifinfo_notify): its STP state changed (`bridge link set ...
        # state`, or the kernel's as the port or its bridge goes down or up), or it left the bridge.
        name = rtnl_parse.parse_link(m).name
        if t == rtnl.RTM_DELLINK:
            return f"bridge port {name} released"
        port = rtnl_parse.parse_bridge_port(m)
        return f"bridge port {name} {port.state or 'changed'}" + (f" ({', '.join(port.settings)})" if port.settings
                                                                  else "")
    if t in (rtnl.RTM_NEWLINK, rtnl.RTM_DELLINK):
        link = rtnl_parse.parse_link(m)
        if t == rtnl.RTM_DELLINK:
            return f"link {link.name} deleted"
        return f"link {link.name} {'up' if link.up else 'down'}"
    if t in (rtnl.RTM_NEWADDR, rtnl.RTM_DELADDR):
        a = rtnl_parse.parse_addr(m)
        return f"address {a.address}/{a.prefixlen} {'deleted' if t == rtnl.RTM_DELADDR else 'added'}"
    if t in (rtnl.RTM_NEWROUTE, rtnl.RTM_DELROUTE):
        r = rtnl_parse.parse_route(m)
        dst = "default" if r.dst_len == 0 else f"{r.dst}/{r.dst_len}"
        verb = "deleted" if t == rtnl.RTM_DELROUTE else "added"
        if r.table == rtnl.RT_TABLE_LOCAL:
            # The kernel's own, made and removed with addresses, but also the lab's (realize/diff.diff_local): one
            # deleted by hand (`ip route del local ADDR table local`) drops what comes to that address
            return f"route {_ROUTE_TYPE_WORDS.get(r.type, str(r.type))} {dst} table local {verb}"
        return f"route {dst} {verb}"
    if t in (rtnl.RTM_NEWNEIGH, rtnl.RTM_DELNEIGH):
        n = rtnl_parse.parse_neigh(m)
        # Learned and forgotten by the kernel all the time: only the lab's PERMANENT entries are its own. One of
        # those deleted by hand is reported FAILED (first as a change, then as the deletion); made REACHABLE or
        # STALE by hand (`ip neigh replace ... nud reachable`) it is reported in that state (the kernel never learns
        # over a PERMANENT entry, so such a change is someone's). The kernel's neighbour GC and an address nothing
        # answers report FAILED too (a new FAILED, then its deletion), of entries the lab never made: not drift
        # (QA reap57 2: dozens of "neighbour X changed; neighbour X deleted" began the lines and each woke a full
        # check).
        fdb = n.family == rtnl.AF_BRIDGE
        if fdb and n.master and t == rtnl.RTM_NEWNEIGH and rtnl_bridge.kept_state(n.state, n.flags):
            # an entry of a bridge made to stay (`bridge fdb add ... master static`: plan/bridge_fdb.py), or a
            # port's own MAC as the port joins (that port's link says it too)
            return f"fdb entry {n.lladdr} {rtnl_bridge.kept_state(n.state, n.flags)} added"
        if (n.lladdr if fdb else n.dst) not in permanent:
            return None
        kind = "fdb entry" if fdb else "neighbour"
        return f"{kind} {n.dst or n.lladdr} {'deleted' if t == rtnl.RTM_DELNEIGH else 'changed'}"
    if t in (RTM_NEWQDISC, RTM_DELQDISC):
        return f"qdisc {'deleted' if t == RTM_DELQDISC else 'changed'}"
    if t == RTM_NEWNETCONF:
        return "forwarding or rp_filter changed"
    return None


_ROUTE_TYPE_WORDS = {number: word for word, number in rtnl.ROUTE_TYPES.items()}


def address_of(m: netlink.Msg) -> str:
    """The address an address's notification is of, or the prefsrc of a local-table route's (the address the
    kernel made it for); '' for any other."""
    if m.mtype in (rtnl.RTM_NEWADDR, rtnl.RTM_DELADDR):
        return rtnl_parse.parse_addr(m).address or ""
    if m.mtype in (rtnl.RTM_NEWROUTE, rtnl.RTM_DELROUTE):
        r = rtnl_parse.parse_route(m)
        if r.table == rtnl.RT_TABLE_LOCAL:
            return r.prefsrc or ""
    return ""


# inotify(7): a namespace deleted with `ip netns del` sends no netlink message (and a socket of
# ours keeps it alive), but its name leaves /run/netns.
IN_CREATE, IN_DELETE, IN_NONBLOCK, IN_CLOEXEC = 0x100, 0x200, 0o4000, 0o2000000
_INOTIFY_EVENT = struct.Struct("=iIII")  # wd, mask, cookie, len


class NetnsNames:
    """An inotify descriptor on /run/netns: readable when a namespace name is added or removed."""

    def __init__(self, namespaces: Iterable[str]):
        self.namespaces = set(namespaces)
        self.fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        try:
            libc.inotify_add_watch(self.fd, nsmod.NETNS_DIR, IN_CREATE | IN_DELETE)
        except OSError:
            os.close(self.fd)
            raise

    def read(self) -> list[Event]:
        """The lab's namespaces whose names went away (or came back) since the last read."""
        out = []
        while True:
            try:
                data = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                return out
            off = 0
            while off + _INOTIFY_EVENT.size <= len(data):
                _wd, mask, _cookie, length = _INOTIFY_EVENT.unpack_from(data, off)
                name = data[off + _INOTIFY_EVENT.size:off + _INOTIFY_EVENT.size + length].split(b"\0", 1)[0]
                off += _INOTIFY_EVENT.size + length
                netns = name.decode(errors="replace")
                if netns in self.namespaces:
                    out.append(Event(netns, "namespace deleted" if mask & IN_DELETE else "namespace added"))

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def pidfd(pid: int) -> int | None:
    """A descriptor that becomes readable when process ``pid`` exits (None if it is gone already)."""
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None


PIDFD_THREAD = os.O_EXCL  # include/uapi/linux/pidfd.h: a pidfd of one thread, readable when that thread exits


def thread_pidfd(tid: int) -> int | None:
    """A descriptor that becomes readable when thread ``tid`` exits (Linux 6.9 and later: PIDFD_THREAD); None if
    it is gone already, or the kernel has no thread pidfds (EINVAL)."""
    try:
        return os.pidfd_open(tid, PIDFD_THREAD)
    except (ProcessLookupError, OSError):
        return None
