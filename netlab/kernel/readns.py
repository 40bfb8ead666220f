"""A namespace read whole, as the kernel reports it: one entry, then one dump per object kind.

``status`` and ``up``'s drift check read every namespace of a lab this way
(kernel/live.py keeps the sockets and adds the iptables and nftables text).
The namespace is entered once: to open its sockets (rtnetlink, if not open
yet, and nf_tables), read its legacy iptables tables and the sysctls that are
files (those of ``all`` and ``default``; an interface's come with its link).
Then one dump per object kind, the bridge ports' and the FDB only where a
bridge port or a VXLAN device makes them matter.

Most of a read is Python decoding the dumps, under the GIL: a second thread
only takes turns with the first (500 pods on 2 cores: ~0.5 s in one thread,
~0.7 s in two). Many namespaces are read by processes instead, one per core
(:func:`readers`, :func:`in_children`): this one and forked children, each
taking a few namespaces at a time from one :class:`Dealer` until none are
left, so a reader that starts late or has other work (the caller's
``meanwhile``) simply reads fewer. A child sends back what it read, pickled
(or what the caller's digest made of it: ``status`` compares a pod there).
"""

from __future__ import annotations

import errno
import fcntl
import os
import termios
from typing import Callable, Iterator, Sequence

from netlab.kernel import netlink, netns as nsmod, nfnl, rtnl, rtnl_parse, testhooks
from netlab.kernel.base import KernelError, Snapshot
from netlab.kernel.child import ChildError, start_child, write_all

LEGACY_TABLES = "/proc/thread-self/net/ip_tables_names"
MIN_SHARE = testhooks.READ_SHARE or 64  # namespaces per reader at least: fewer are read faster than a child forks
MAX_READERS = 4
SHARE_DEADLINE = 120.0  # seconds a child may take for its namespaces (~0.25 s for 250)

Reader = Callable[[Iterator[list[str]]], dict]


def readers(count: int) -> int:
    """How many processes read ``count`` namespaces: one per core (up to MAX_READERS), at least
    MIN_SHARE namespaces each."""
    return max(1, min(os.cpu_count() or 1, MAX_READERS, count // MIN_SHARE))


class Dealer:
    """Namespaces handed out a few at a time to whichever reader asks next, across fork.

    A pipe holds one two-byte token per part, its write end closed before any
    reader starts; every reader reads tokens from it until end-of-file. The
    kernel hands each read of a pipe whole to one reader, and every read here
    takes exactly one token, so no part is read twice or lost. Parts are dealt
    in the order the names are listed (a lab's nodes, the biggest, first), a
    few namespaces each (one syscall a part; the last part is the most a reader
    can be left waiting for another).
    """

    PART = 16  # namespaces a part at most, unless there are more than TOKENS parts of them
    TOKENS = 2048  # parts at most: 4 KiB of tokens, what the smallest pipe holds

    def __init__(self, names: Sequence[str], readers: int = 1):
        self.names = list(names)
        self.size = max(-(-len(self.names) // self.TOKENS), min(self.PART, len(self.names) // (4 * readers)), 1)
        count = -(-len(self.names) // self.size)
        self.fd, w = os.pipe2(os.O_CLOEXEC)
        try:
            write_all(w, b"".join(i.to_bytes(2, "little") for i in range(count)))
        finally:
            os.close(w)

    def parts(self) -> Iterator[list[str]]:
        """The parts this reader gets, one by one, as it asks for them."""
        while token := os.read(self.fd, 2):
            i = int.from_bytes(token, "little")
            yield self.names[i * self.size:(i + 1) * self.size]

    def left(self) -> int:
        """Parts no reader has taken yet."""
        return int.from_bytes(fcntl.ioctl(self.fd, termios.FIONREAD, bytes(4)), "little") // 2

    def close(self) -> None:
        os.close(self.fd)


def in_children(names: Sequence[str], here: Reader, there: Reader,
                meanwhile: Callable[[], None] | None = None) -> dict:
    """The namespaces ``names`` read by :func:`readers` processes: ``here(parts)`` in this one and
    ``there(parts)`` in each forked child (it leaves nothing behind here), each reading the parts its
    iterator deals it, together every name once. ``meanwhile()``, the caller's other work, runs here first,
    while the children start reading (they are forked before it runs, so nothing it starts is in them).
    The first failure is raised (a child's KernelError as itself) once every child is reaped."""
    count = readers(len(names))
    dealer = Dealer(names, count)
    waiting = []
    try:
        waiting = [start_child(there, (dealer.parts(),), what="a reader of namespaces") for _ in range(count - 1)]
        if meanwhile is not None:
            meanwhile()
        out = here(dealer.parts())
        while waiting:
            child = waiting.pop(0)
            try:
                out.update(child.result(SHARE_DEADLINE))
            except ChildError as exc:
                raise KernelError(None, errno.EIO, f"reading namespaces: {exc}") from None
        return out
    finally:
        for child in waiting:
            child.stop()
        dealer.close()


def read_netns(netns: str, sysctls: Sequence[str], tables: bool, timeout: float,
                conn: netlink.Conn | None) -> tuple[Snapshot, netlink.Conn, list[str]]:
    """One namespace as the kernel reports it (its iptables-save text aside), the socket that read it,
    and the legacy iptables tables it has (their text is read by the caller)."""
    snap = Snapshot(netns=netns)
    what = f"dump of {netns}"
    nf = None
    legacy: list[str] = []
    with nsmod.entered(netns):
        if conn is None:
            conn = netlink.Conn(timeout=timeout)
        snap.links = {link.name: link for link in rtnl_parse.dump_links(conn, netns)}
        files = []
        for key in sysctls:
            dev, _, name = _interface_sysctl(key)
            if dev is not None and dev not in snap.links:
                snap.sysctls[key] = None  # no such interface
            elif dev is not None and name in snap.links[dev].inet_conf:
                snap.sysctls[key] = snap.links[dev].inet_conf[name]
            else:
                files.append(key)
        read = nsmod.read_sysctls_here(files)
        snap.sysctls.update((key, read[key]) for key in files)  # in the order asked
        if tables:
            legacy = _legacy_tables()
            nf = netlink.Conn(netlink.NETLINK_NETFILTER, timeout=timeout)
    if nf is not None:
        with nf:
            snap.nft_tables = nfnl.nft_tables(nf, f"nf_tables in {netns}")
    links = snap.links.values()
    if any(link.master for link in links):
        for m in conn.dump(what, rtnl.link_dump(rtnl.AF_BRIDGE)):
            index, hairpin = rtnl_parse.parse_bridge_port(m)
            snap.hairpin[index] = hairpin
    snap.addrs = [rtnl_parse.parse_addr(m) for m in conn.dump(what, rtnl.addr_dump())]
    snap.routes = [rtnl_parse.parse_route(m) for m in conn.dump(what, rtnl.route_dump())]
    snap.neighs = [rtnl_parse.parse_neigh(m) for m in conn.dump(what, rtnl.neigh_dump(rtnl.AF_INET))]
    if any(link.kind == "vxlan" for link in links):
        snap.fdb = [rtnl_parse.parse_neigh(m) for m in conn.dump(what, rtnl.neigh_dump(rtnl.AF_BRIDGE))]
    snap.rules = [rtnl_parse.parse_rule(m) for m in conn.dump(what, rtnl.rule_dump())]
    return snap, conn, legacy


def _interface_sysctl(key: str) -> tuple[str | None, str, str]:
    """``net.ipv4.conf.flannel.1.arp_ignore`` -> ("flannel.1", "", "arp_ignore"); (None, "", key) for others."""
    parts = key.split(".")
    if parts[:3] != ["net", "ipv4", "conf"] or len(parts) < 5 or parts[3] in ("all", "default"):
        return None, "", key
    return ".".join(parts[3:-1]), "", parts[-1]


def _legacy_tables() -> list[str]:
    """Tables of the legacy iptables backend loaded in the calling thread's namespace."""
    try:
        with open(LEGACY_TABLES) as fh:
            return [line.strip() for line in fh if line.strip()]
    except FileNotFoundError:
        return []
