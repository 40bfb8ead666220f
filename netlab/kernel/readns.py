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
import pickle
import termios
from typing import Any, Callable, Iterator, Sequence

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
        self.fd = -1


class Readers:
    """Forked children reading the namespaces ``names`` as a :class:`Dealer` deals them, from their start
    until :meth:`finish` (this process then reads what is left) or :meth:`stop`."""

    def __init__(self, names: Sequence[str], there: Reader, count: int | None = None):
        self.names = list(names)
        count = readers(len(self.names)) if count is None else count
        self.dealer = Dealer(self.names, count)
        self.waiting: list = []
        try:
            self.waiting = [start_child(there, (self.dealer.parts(),), what="a reader of namespaces")
                            for _ in range(count - 1)]
        except BaseException:
            self.stop()
            raise

    def finish(self, here: Reader, meanwhile: Callable[[], None] | None = None) -> dict:
        """``meanwhile()``, then ``here(parts)`` of the parts no child has taken, then every child's
        entries; the first failure is raised (a child's KernelError as itself) once every child is
        reaped."""
        try:
            if meanwhile is not None:
                meanwhile()
            out = here(self.dealer.parts())
            while self.waiting:
                child = self.waiting.pop(0)
                try:
                    out.update(child.result(SHARE_DEADLINE))
                except ChildError as exc:
                    raise KernelError(None, errno.EIO, f"reading namespaces: {exc}") from None
            return out
        finally:
            self.stop()

    def stop(self) -> None:
        """Kill and reap the children still reading (nothing they read is wanted), close the dealer."""
        for child in self.waiting:
            child.stop()
        self.waiting = []
        if self.dealer.fd >= 0:
            self.dealer.close()


def in_children(names: Sequence[str], here: Reader, there: Reader,
                meanwhile: Callable[[], None] | None = None) -> dict:
    """The namespaces ``names`` read by :func:`readers` processes: ``here(parts)`` in this one and
    ``there(parts)`` in each forked child (it leaves nothing behind here), each reading the parts its
    iterator deals it, together every name once. ``meanwhile()``, the caller's other work, runs here first,
    while the children start reading (they are forked before it runs, so nothing it starts is in them).
    The first failure is raised (a child's KernelError as itself) once every child is reaped."""
    return Readers(names, there).finish(here, meanwhile)


class Ahead:
    """Namespaces read by forked children before the caller knows what it will ask of them: with the
    sysctl files ``sysctls`` and the iptables tables (``status``' CLI starts them while Python loads the
    plan's modules, kernel/live.py's read_ahead)."""

    def __init__(self, names: Sequence[str], sysctls: Sequence[str], there: Reader):
        self.sysctls = list(sysctls)

        def pickled(parts: Iterator[list[str]]) -> dict:
            # In a child: each part's entries pickled as soon as they are read, while this process still
            # loads; sending them is then a copy (500 pods: the pickling of ~360 snapshots, 16 ms, is no
            # longer a wait at the end). A namespace that cannot be read (gone since the state was saved)
            # is left out: whoever asks for it reads it again, and says what it found.
            out = {}
            for i, part in enumerate(parts):
                entries: dict = {}
                for ns in part:
                    try:
                        entries.update(there(iter([[ns]])))
                    except (KernelError, OSError, ValueError):
                        pass
                out[i] = pickle.dumps(entries, pickle.HIGHEST_PROTOCOL)
            return out

        self.readers = Readers(names, pickled)

    def finish(self, asks: dict[str, tuple[Sequence[str], bool]], here: Reader,
               meanwhile: Callable[[], None] | None, digest: Callable[[str, Snapshot], Any] | None) -> dict:
        """:meth:`Readers.finish`: ``here(parts)`` of the asked namespaces no child took, then each asked
        namespace a child read, as if read as asked (``digest`` applied here). A namespace missing from
        the result (not read ahead, or asked a sysctl file the children did not read) is the caller's to
        read."""
        mine: dict = {}

        def read_here(parts: Iterator[list[str]]) -> dict:
            mine.update(here([ns for ns in part if ns in asks] for part in parts))
            return {}

        for part in self.readers.finish(read_here, meanwhile).values():
            for ns, (snap, index) in pickle.loads(part).items():
                if ns in asks and as_asked(snap, *asks[ns]):
                    mine[ns] = (digest(ns, snap) if digest else snap, index)
        return mine

    def stop(self) -> None:
        self.readers.stop()


def as_asked(snap: Snapshot, sysctls: Sequence[str], tables: bool) -> bool:
    """Make a snapshot read with other sysctls (and the tables) one read with these: False when it lacks
    one of their files."""
    found, files = _from_links(snap.links, sysctls)
    if any(key not in snap.sysctls for key in files):
        return False
    snap.sysctls = {key: found[key] if key in found else snap.sysctls[key] for key in sysctls}
    if not tables:
        snap.tables, snap.nft_tables, snap.nft = {}, [], {}
    return True


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
        snap.sysctls, files = _from_links(snap.links, sysctls)
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


def _from_links(links: dict[str, rtnl_parse.LinkMsg], keys: Sequence[str]) -> tuple[dict[str, str | None], list[str]]:
    """The sysctls of ``keys`` that an interface's link message holds (None: no such interface), and the
    others, which are files (those of ``all`` and ``default``)."""
    found: dict[str, str | None] = {}
    files = []
    for key in keys:
        dev, _, name = _interface_sysctl(key)
        if dev is not None and dev not in links:
            found[key] = None
        elif dev is not None and name in links[dev].inet_conf:
            found[key] = links[dev].inet_conf[name]
        else:
            files.append(key)
    return found, files


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
