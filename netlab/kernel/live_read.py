"""Reading the real kernel: namespaces whole (:class:`~netlab.kernel.base.Snapshot`), many at once by forked
readers (kernel/readmany.py), or read ahead, and their iptables and nftables text. Part of
:class:`~netlab.kernel.live.LiveKernel`, which keeps the sockets and the links' indexes a read learns.
"""

from __future__ import annotations

import errno
from typing import Any, Callable, Iterable, Iterator, Sequence

from netlab.errors import NetnsGone
from netlab.kernel import iptables, netlink, nft as nftmod, nftgen, readmany, unshown
from netlab.kernel.base import KernelError, Snapshot
from netlab.kernel.readns import read_netns

IPTABLES_TABLES = ("filter", "nat", "mangle", "raw", "security")


class Reading:
    """LiveKernel's reads (the attributes below are LiveKernel's)."""

    timeout: float
    _conns: dict[str, netlink.Conn]
    _index: dict[str, dict[str, int]]
    _ahead: readmany.Ahead | None
    nft_written: nftgen.Written

    def snapshot(self, netns: str, sysctls: Sequence[str] = (), tables: bool = True) -> Snapshot:
        snap, conn, legacy = read_netns(netns, sysctls, tables, self.timeout, self._conns.get(netns))
        return self._keep(snap, conn, legacy, tables)

    def read_ahead(self, sysctls: dict[str, Sequence[str]]) -> None:
        """Start reading these namespaces (each with its sysctl files, ``sysctls[ns]``, and the iptables
        tables) in forked children now, before the caller knows what it will ask: the next
        :meth:`snapshot_many` takes what they read of each namespace it asks, and reads the rest itself. For
        a command that loads much of netlab before it can ask (``status``' CLI); a lab too small to share is
        read then instead."""
        if self._ahead is None and readmany.readers(len(sysctls)) > 1:
            self._ahead = readmany.Ahead(list(sysctls), self._in_child(lambda ns: (sysctls[ns], True), None))

    def snapshot_many(self, asks: dict[str, tuple[Sequence[str], bool]],
                      meanwhile: Callable[[], None] | None = None,
                      digest: Callable[[str, Snapshot], Any] | None = None) -> dict[str, Any]:
        """``snapshot(ns, sysctls, tables)`` of every namespace of ``asks`` (or what ``digest`` makes of it):
        many by this process and forked children at the same time, few here one after the other
        (kernel/readmany.py); ``meanwhile()`` first, while the children start. A child sends back each
        namespace's entry and its links' indexes."""
        def here(parts: Iterable[list[str]]) -> dict[str, tuple[Any, dict[str, int]]]:
            return self._entries(parts, asks.__getitem__, digest)

        ahead, self._ahead = self._ahead, None
        if ahead is None:
            got = readmany.in_children(list(asks), here, self._in_child(asks.__getitem__, digest), meanwhile)
        else:
            got = ahead.finish(asks, here, meanwhile, digest)
            got.update(here([[ns for ns in asks if ns not in got]]))
        read = [ns for ns in asks if ns in got]  # not those deleted since the caller looked
        for ns in read:  # those a child read: only the links' indexes are known here (no socket)
            self._index[ns] = got[ns][1]
        return {ns: got[ns][0] for ns in read}

    def _entries(self, parts: Iterable[list[str]], asks: Callable[[str], tuple[Sequence[str], bool]],
                 digest: Callable[[str, Snapshot], Any] | None) -> dict[str, tuple[Any, dict[str, int]]]:
        out = {}
        for part in parts:
            read = self._snapshot_each({ns: asks(ns) for ns in part})
            out.update((ns, (digest(ns, snap) if digest else snap, self._index[ns])) for ns, snap in read.items())
        return out

    def _in_child(self, asks: Callable[[str], tuple[Sequence[str], bool]],
                  digest: Callable[[str, Snapshot], Any] | None) -> readmany.Reader:
        def there(parts: Iterator[list[str]]) -> dict[str, tuple[Any, dict[str, int]]]:  # in a forked child
            kernel = type(self)(self.timeout)  # sockets of its own, not this process's
            kernel.nft_written = self.nft_written  # what this process knows of the tables (a fork's copy)
            try:
                return kernel._entries(parts, asks, digest)
            finally:
                kernel.close()
        return there

    def _snapshot_each(self, asks: dict[str, tuple[Sequence[str], bool]]) -> dict[str, Snapshot]:
        conns = dict(self._conns)
        read = {}
        for ns in asks:
            try:
                read[ns] = read_netns(ns, asks[ns][0], asks[ns][1], self.timeout, conns.get(ns))
            except NetnsGone:
                continue  # deleted since the caller looked: left out, the caller finds it missing
        return {ns: self._keep(snap, conn, legacy, asks[ns][1]) for ns, (snap, conn, legacy) in read.items()}

    def _keep(self, snap: Snapshot, conn: netlink.Conn, legacy: list[str], tables: bool) -> Snapshot:
        """Cache what a read learnt (the namespace's socket, its links' indexes), add its iptables tables."""
        self._conns[snap.netns] = conn
        # the namespace's link indexes, as the snapshot found them (requests name links by index)
        self._index[snap.netns] = {link.name: link.index for link in snap.links.values()}
        if tables:
            snap.tables, unreadable = self._read_tables(snap.netns, legacy, snap.nft_tables)
            snap.unshown = {t: unshown.unshown(snap.netns, t) for t in unreadable}
            snap.nft = self._read_nft(snap.netns, snap.nft_tables, snap.nft_stamp)
        return snap

    def _read_nft(self, netns: str, nft: list[tuple[str, str]],
                  now: nftgen.Stamp | None = None) -> dict[tuple[str, str], dict]:
        """nf_tables tables that iptables-nft did not make (kube-proxy's), as ``nft -j`` prints them; one that
        netlab's last transaction made, with nothing committed in the namespace since, as its listing
        (``{"netlab-listing": [...]}``, what realize/nftables.listing reads, as from the fake kernel)."""
        out: dict[tuple[str, str], dict] = {}
        for family, name in nft:
            if family == "ip" and name in IPTABLES_TABLES:
                continue
            known = self.nft_written.listing(netns, now, (family, name)) if now is not None else None
            if known is not None:
                out[(family, name)] = {"netlab-listing": list(known)}
                continue
            try:
                data = nftmod.list_table(netns, family, name)
                if data is not None and family == "netdev":  # its chains' devices (netlab's loss hooks)
                    nftmod.add_devices(data, nftmod.list_table_text(netns, family, name) or "")
            except nftmod.NftError as exc:  # the machine's nft (no JSON, a broken library): one line, exit 3
                raise nftmod.unreadable(exc) from None
            if data is not None:
                out[(family, name)] = data
        return out

    def _read_tables(self, netns: str, legacy: list[str],
                     nft: list[tuple[str, str]]) -> tuple[dict[str, dict[str, str]], list[str]]:
        """The iptables tables that exist here, as ``iptables-save`` prints them, per backend; and those of the
        default backend it cannot show (iptables-nft's holding a rule in nft's own words: kernel/unshown.py)."""
        out: dict[str, dict[str, str]] = {}
        unreadable: list[str] = []
        have = {"nft": any(fam == "ip" and name in IPTABLES_TABLES for fam, name in nft), "legacy": bool(legacy)}
        default = iptables.default_backend()
        for backend in ("nft", "legacy"):
            if not have[backend]:
                continue
            key = "" if backend == default else backend
            try:
                text = iptables.save(netns, backend=backend if key else None)
            except iptables.IptablesError as exc:
                raise KernelError(None, errno.EIO, str(exc)) from None
            out[key] = iptables.split_tables(text)
            if not key and backend == "nft":
                unreadable = unshown.incompatible_tables(text)
        return out, unreadable

    def iptables_save(self, netns: str, table: str, backend: str = "") -> str:
        try:
            return iptables.split_tables(iptables.save(netns, table, backend or None)).get(table, "")
        except iptables.IptablesError as exc:
            raise KernelError(None, errno.EIO, str(exc)) from None
