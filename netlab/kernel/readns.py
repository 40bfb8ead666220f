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
~0.7 s in two). Many namespaces are read in shares instead (:func:`shares`,
:func:`in_children`): the first here, each other one in a forked child on
another core, which sends its snapshots back pickled (500 pods: 0.39 ->
0.24 s, 0.43 MB through the pipe).
"""

from __future__ import annotations

import errno
import os
from typing import Callable, Sequence

from netlab.kernel import netlink, netns as nsmod, nfnl, rtnl, rtnl_parse
from netlab.kernel.base import KernelError, Snapshot
from netlab.kernel.child import ChildError, start_child

LEGACY_TABLES = "/proc/thread-self/net/ip_tables_names"
MIN_SHARE = 64  # namespaces a reader gets at least: fewer are read faster than a child forks
MAX_SHARES = 4
SHARE_DEADLINE = 120.0  # seconds a child may take for its share (~0.25 s for 250 namespaces)


def shares(names: list[str]) -> list[list[str]]:
    """The namespaces dealt out to readers, one per core (up to MAX_SHARES), each at least MIN_SHARE;
    dealt in turn, so the nodes (listed first, and the biggest) are spread over them."""
    n = max(1, min(os.cpu_count() or 1, MAX_SHARES, len(names) // MIN_SHARE))
    return [names[i::n] for i in range(n)]


def in_children(parts: list[list[str]], here: Callable[[list[str]], dict[str, Snapshot]],
                there: Callable[[list[str]], dict[str, Snapshot]],
                meanwhile: Callable[[], None] | None = None) -> dict[str, Snapshot]:
    """``here(part)`` of the first part in this process and, side by side, ``there(part)`` of each other
    part in a forked child (it leaves nothing behind here); then ``meanwhile()``, the caller's other work,
    while the children may still read (they are forked before it runs, so nothing it starts is in them).
    The first failure is raised (a child's KernelError as itself) once every child is reaped."""
    waiting = [start_child(there, (part,), what=f"the reader of {len(part)} namespaces") for part in parts[1:]]
    try:
        out = here(parts[0]) if parts else {}
        if meanwhile is not None:
            meanwhile()
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
