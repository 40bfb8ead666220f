"""What netlab's last ``nft -f`` left in a namespace's nf_tables, known without reading it back while nothing
else has changed them since.

nf_tables counts the transactions committed in each network namespace: its generation (``NFT_MSG_GETGEN``,
what ``nft list ruleset`` is consistent with). Every commit moves it by one, whoever commits (``nft``,
``iptables-nft``, a CNI plugin); reading, counters, and a set's elements added by the packet path
(kube-proxy's affinity sets: ``update @set``, which a listing leaves out) do not. A namespace is known by its
cookie (``SO_NETNS_COOKIE``, Linux 5.14): a number the kernel never gives another namespace until it boots
again, where an inode number comes back and a new namespace's generation starts again at 1.

So when netlab's own transaction moves the generation by exactly one (nobody committed between the two
reads around it), the table holds what that transaction made (its listing: the plan's words, which status
compares); and while the namespace's generation is still that number, it still does, and ``up`` and
``status`` take the listing instead of ``nft -j list table`` (~0.3 s a node at 300 Services, most of a
one-endpoint change's time). Any other commit in the namespace, a table of someone else's or iptables-nft's
too, makes it read again. A kernel without either number reads as before.
"""

from __future__ import annotations

import errno
import socket
import struct
from dataclasses import dataclass
from typing import Any

from netlab.kernel.netlink import Conn, NetlinkError, attrs, get_be32, message
from netlab.kernel.nfnl import NFGENMSG, NFNETLINK_V0, NFNL_SUBSYS_NFTABLES

NFT_MSG_GETGEN = 16
NFTA_GEN_ID = 1
SO_NETNS_COOKIE = 71  # <asm-generic/socket.h>, Linux 5.14
GEN_WRAP = 1 << 32  # the generation is a u32


@dataclass(frozen=True)
class Stamp:
    """A namespace (its cookie) at one of its nf_tables generations."""

    cookie: int
    gen: int

    def next(self) -> "Stamp":
        return Stamp(self.cookie, (self.gen + 1) % GEN_WRAP)


def stamp(conn: Conn) -> Stamp | None:
    """The namespace of ``conn`` (a NETLINK_NETFILTER socket opened in it) and its generation now; None when
    the kernel tells either not."""
    try:
        cookie = struct.unpack("=Q", conn.sock.getsockopt(socket.SOL_SOCKET, SO_NETNS_COOKIE, 8))[0]
    except OSError as exc:
        if exc.errno in (errno.ENOPROTOOPT, errno.EINVAL):
            return None
        raise
    try:
        m = conn.get("nf_tables generation",
                     message(NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETGEN, 0, NFGENMSG.pack(0, NFNETLINK_V0, 0)))
    except NetlinkError:
        return None  # no nf_tables here
    gen = get_be32(attrs(m.body, NFGENMSG.size), NFTA_GEN_ID)
    return None if gen is None else Stamp(cookie, gen)


Key = tuple[str, str]  # (family, table)


class Written:
    """By namespace: the stamp after netlab's last transaction there, and the listing of each table it knows
    (what its transactions made). Kept across runs in the lab's folder (realize/nft_written.py)."""

    def __init__(self) -> None:
        self._by_netns: dict[str, tuple[Stamp, dict[Key, tuple[str, ...]]]] = {}
        self.changes = 0  # how many times what is known changed (whether to keep it again)

    def listing(self, netns: str, now: Stamp | None, key: Key) -> tuple[str, ...] | None:
        """The table's listing when the namespace is still at the stamp netlab left it (None: read it)."""
        entry = self._by_netns.get(netns)
        if now is None or entry is None or entry[0] != now:
            return None
        return entry[1].get(key)

    def wrote(self, netns: str, before: Stamp | None, after: Stamp | None, key: Key,
              listing: tuple[str, ...] | None, whole: bool) -> None:
        """netlab committed one transaction to table ``key`` between stamps ``before`` and ``after``, leaving
        ``listing`` (None: the table taken away, or what it holds not known). ``whole``: the transaction makes
        the table whatever it held; else (a partial sync, worked out from what the table held when it was read)
        it leaves ``listing`` only if nothing was committed between that read and ``before``. Only a
        transaction that moved the generation by one is known; what netlab knew of the namespace's other
        tables holds on only when it was still at ``before``."""
        self.changes += 1
        entry = self._by_netns.get(netns)
        known = entry is not None and entry[0] == before
        if before is None or after is None or after != before.next() or not (whole or known):
            self._by_netns.pop(netns, None)  # someone else committed too: nothing known until read again
            return
        tables = dict(entry[1]) if entry is not None and known else {}
        tables.pop(key, None)
        if listing is not None:
            tables[key] = listing
        self._by_netns[netns] = (after, tables)

    def read(self, netns: str, at: Stamp | None, tables: dict[Key, tuple[str, ...]]) -> None:
        """The namespace's tables (other than iptables-nft's) as a read found them at stamp ``at``: known
        until anything is committed there."""
        entry = (at, dict(tables)) if at is not None else None
        if self._by_netns.get(netns) != entry:  # the same listings, read from here: nothing new to keep
            self.changes += 1
            if entry is None:
                self._by_netns.pop(netns, None)
            else:
                self._by_netns[netns] = entry

    def to_json(self) -> dict[str, Any]:
        return {ns: {"cookie": s.cookie, "gen": s.gen,
                     "tables": [[f, t, list(lines)] for (f, t), lines in sorted(tables.items())]}
                for ns, (s, tables) in sorted(self._by_netns.items())}

    def load_json(self, data: object) -> None:
        """What :meth:`to_json` gave (a file netlab wrote); anything else is left out, entry by entry."""
        self._by_netns.clear()
        if not isinstance(data, dict):
            return
        for ns, entry in data.items():
            try:
                s = Stamp(_number(entry["cookie"]), _number(entry["gen"]))
                tables = {(f, t): tuple(lines) for f, t, lines in entry["tables"]
                          if isinstance(f, str) and isinstance(t, str) and _lines(lines)}
            except (KeyError, TypeError, ValueError):
                continue
            self._by_netns[ns] = (s, tables)


def _number(value: object) -> int:
    if type(value) is not int or value < 0:
        raise ValueError(value)
    return value


def _lines(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(line, str) for line in value)
