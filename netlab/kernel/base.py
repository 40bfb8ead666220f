"""The door to the kernel: the :class:`Kernel` protocol, the operations it takes, what it reports.

Everything above this package (the lab's lifecycle, repairs, status) talks to
the kernel only through a ``Kernel``: :class:`netlab.kernel.live.LiveKernel`
makes real system calls, :class:`netlab.kernel.fake.FakeKernel` keeps the same
objects in memory, so ordering, rollback and convergence are unit-tested
without root (as kube-proxy's proxier is tested against a fake iptables).

An :class:`Op` is one change to one kernel object, named with the plan's own
resources (a ``Route``, a ``Veth``...): ``add``, ``del``, ``set`` (a link's
attributes), ``replace`` (a route or neighbour in place), ``write`` (a sysctl),
``restore`` (an iptables table). Every op but the deletion of an object of an
unknown kind has an :meth:`Op.inverse`, which is how a failed run takes back
exactly what it did.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Protocol, Sequence

from netlab.kernel.rtnl_parse import AddrMsg, LinkMsg, NeighMsg, RouteMsg, RuleMsg
from netlab.plan.resources import Bridge, Link, NatRules, Resource, Sysctl, Veth, Vxlan

if TYPE_CHECKING:
    from netlab.kernel.nftgen import Stamp, Written

VERBS = ("add", "del", "set", "replace", "write", "restore")


@dataclass(frozen=True)
class TableText:
    """An iptables table of a namespace: a change (``--noflush``) or all of it as ``iptables-save`` printed it."""

    kind: ClassVar[str] = "iptables"
    netns: str
    table: str
    text: str
    backend: str = ""  # "" (the system default), "nft" or "legacy"
    noflush: bool = False  # True: a change (iptables-restore --noflush); False: the whole table as it was

    def describe(self) -> str:  # a backend named: the one a lab is not in, which up empties (realize/backend)
        return f"iptables{'-' + self.backend if self.backend else ''} {self.table} in {self.netns}"


@dataclass(frozen=True)
class NftText:
    """An nf_tables table of a namespace: one ``nft -f`` transaction (kube-proxy's table, replaced whole,
    or taken away), or the table as ``nft list table`` printed it, with its replacement header."""

    kind: ClassVar[str] = "nftables"
    netns: str
    family: str
    table: str
    text: str
    listing: tuple[str, ...] = ()  # the plan's listing of what ``text`` makes (the fake kernel keeps it)
    removes: bool = False  # ``text`` takes the table away (one the lab does not plan): said "delete", not "restore"
    whole: bool = False  # ``text`` makes the table ``listing`` whatever it held (not a partial sync of it)

    def describe(self) -> str:
        return f"nftables table {self.family} {self.table} in {self.netns}"


@dataclass(frozen=True)
class Op:
    """One change: ``verb`` applied to ``res``; ``old`` is what was there before (set/replace/write/restore)."""

    verb: str
    res: Resource | TableText | NftText
    old: Resource | TableText | NftText | None = None
    # "del" of something that may be gone already (an extra object; an undo): absent is done, not a failure
    missing_ok: bool = False

    @property
    def netns(self) -> str:
        return self.res.netns

    def describe(self) -> str:
        what = self.res.describe()
        if self.verb == "restore" and isinstance(self.res, NftText) and self.res.removes:
            return f"delete {what}"
        if self.verb == "set" and isinstance(self.old, Link) and isinstance(self.res, Link):
            return f"set {', '.join(change_words(self.old, self.res))} of {what}"
        return f"{self.verb} {what}"

    def inverse(self) -> "Op | None":
        """The op that undoes this one (None when the kernel object cannot be made again)."""
        if self.verb == "add":
            return Op("del", self.res, missing_ok=True)
        if self.verb == "del":
            return Op("add", self.res) if recreatable(self.res) else None
        if self.verb in ("set", "replace", "write"):
            if self.old is None:
                return Op("del", self.res, missing_ok=True) if self.verb == "replace" else None
            return Op(self.verb, self.old, self.res)
        if self.verb == "restore":
            return Op("restore", self.old, self.res) if self.old is not None else None
        raise ValueError(self.verb)


def recreatable(res: Resource | TableText) -> bool:
    """Objects the kernel can be asked to make again exactly as they were."""
    if isinstance(res, Veth):
        return bool(res.peer_name)  # a veth whose peer is unknown cannot be made again as it was
    if isinstance(res, Link):
        return isinstance(res, (Bridge, Vxlan))
    return isinstance(res, Resource) and not isinstance(res, (NatRules, Sysctl))


# a VXLAN device's ageing: changed in place (`ip link set DEV type vxlan ageing N`), as the kernel allows
LINK_ATTRS = ("up", "mtu", "mac", "master", "hairpin", "port_state", "txqlen", "flags", "ageing", "settings",
              "port_settings")


def link_changes(old: Link, new: Link) -> list[str]:
    """The attributes ``ip link set`` must change to turn ``old`` into ``new``."""
    return [a for a in LINK_ATTRS if hasattr(new, a) and getattr(old, a, None) != getattr(new, a)]


def change_words(old: Link, new: Link) -> list[str]:
    """:func:`link_changes` as up's line says them: the link flags each in `ip link set`'s words (``arp on,
    promisc off``: what is set and what cleared), a VXLAN device's ageing with its value, the rest by name."""
    out: list[str] = []
    for name in link_changes(old, new):
        if name == "flags":
            out += [w for w in new.flags if w not in old.flags] + [flipped(w) for w in old.flags if w not in new.flags]
        elif name == "ageing":
            out.append(f"ageing {getattr(new, name)}")
        else:
            out.append(name)
    return out


def flipped(word: str) -> str:
    """``arp off`` -> ``arp on``: a flag's other setting (up's line, status's: realize/diff.py)."""
    name, value = word.rsplit(" ", 1)
    return f"{name} {'on' if value == 'off' else 'off'}"


# What the kernel answers when asked to delete something that is not there.
GONE = frozenset({errno.ENODEV, errno.ENOENT, errno.ESRCH, errno.EADDRNOTAVAIL})


def gone(op: Op, code: int) -> bool:
    """Whether a deletion allowed to find nothing (``missing_ok``) found nothing to delete. A root qdisc added by
    hand is deleted by the handle up read (impair/stray.py): the kernel's EINVAL ("Invalid handle") says the root
    there now is another, or the kernel's own again; either way not the one read, so nothing was deleted."""
    if not op.missing_ok or op.verb != "del":
        return False
    return code in GONE or (code == errno.EINVAL and op.res.kind == "root qdisc")


class KernelError(Exception):
    """An op failed. ``applied`` lists the ops of the same call that took effect (in order)."""

    def __init__(self, op: Op | None, code: int, message: str, applied: Sequence[Op] = ()):
        super().__init__(message)
        self.op, self.code, self.applied = op, code, list(applied)

    @property
    def errno(self) -> int:  # as an OSError names it (errors.open_files)
        return self.code

    def __reduce__(self):  # whole through pickle: a forked reader (kernel/readns.py) sends it back
        return (type(self), (self.op, self.code, str(self), self.applied))


@dataclass
class Snapshot:
    """One namespace as the kernel reports it: the raw facts, before any comparison with a plan."""

    netns: str
    links: dict[str, LinkMsg] = field(default_factory=dict)
    hairpin: dict[int, bool] = field(default_factory=dict)  # bridge ports: ifindex -> hairpin mode
    port_state: dict[int, str] = field(default_factory=dict)  # bridge ports: ifindex -> STP state (`bridge link`)
    # bridge ports: ifindex -> their settings away from the kernel's defaults (kernel/rtnl_bridge.py)
    port_settings: dict[int, tuple[str, ...]] = field(default_factory=dict)
    addrs: list[AddrMsg] = field(default_factory=list)
    routes: list[RouteMsg] = field(default_factory=list)
    neighs: list[NeighMsg] = field(default_factory=list)
    proxies: list[NeighMsg] = field(default_factory=list)  # `ip neigh show proxy` (kernel/rtnl_neigh)
    fdb: list[NeighMsg] = field(default_factory=list)
    rules: list[RuleMsg] = field(default_factory=list)
    sysctls: dict[str, str | None] = field(default_factory=dict)
    # iptables tables holding anything, by backend ("" the system default, or "legacy"/"nft" when the
    # other backend also has tables here): table -> iptables-save text of that table
    tables: dict[str, dict[str, str]] = field(default_factory=dict)
    nft_tables: list[tuple[str, str]] = field(default_factory=list)  # (family, name) of every nf_tables table
    # iptables-nft's tables (the default backend's) iptables-save cannot show, for a rule in nft's own words:
    # table -> those rules as nft prints them (kernel/unshown.py; () when nft cannot tell which)
    unshown: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # iptables-nft's base chains, hooked into netfilter, when it is the default backend: (table, chain).
    # iptables-save prints every built-in chain of a table whether it exists or not; nf_tables has only these.
    base_chains: list[tuple[str, str]] = field(default_factory=list)
    # nf_tables tables that are not iptables-nft's (kube-proxy's ip kube-proxy): (family, name) ->
    # ``nft -j list table`` parsed
    nft: dict[tuple[str, str], dict] = field(default_factory=dict)
    # the namespace's nf_tables generation when its tables were read (kernel/nftgen.py; None: not told)
    nft_stamp: "Stamp | None" = None
    # Root qdiscs added to its devices (not the kernel's default for the device): ifindex -> the RTM_NEWQDISC
    # message body (rtnl_parse.added_root_qdisc; kernel/tc.py reads it)
    root_qdiscs: dict[int, bytes] = field(default_factory=dict)
    # What hangs under each of those (rtnl_parse.under_root): ifindex -> (classes, qdiscs, filters); what a
    # rollback that adds the qdisc again from its body does not bring back (impair/stray.py)
    root_qdisc_under: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    # Ingress qdiscs added to its devices (``tc qdisc add dev D ingress|clsact``: the kernel gives none):
    # ifindex -> (its kind, how many filters hang on it) (rtnl_parse.added_ingress_qdisc)
    ingress_qdiscs: dict[int, tuple[str, int]] = field(default_factory=dict)

    def by_index(self) -> dict[int, LinkMsg]:
        return {link.index: link for link in self.links.values()}


class Kernel(Protocol):
    """What the lab needs from the kernel. Names are checked namespace names."""

    # namespaces
    create_workers: int  # threads that may call create_netns side by side (1: one at a time)

    def netns_exists(self, name: str) -> bool: ...
    def netns_mounted(self, name: str) -> bool: ...
    def create_netns(self, name: str, tag: str, sysctls: Sequence[tuple[str, str]]) -> list[str]: ...
    # these sysctls as a namespace made now starts with them (None: no such file on this kernel)
    def inherited_devconf(self, keys: Sequence[str]) -> dict[str, str | None]: ...
    def delete_netns(self, name: str) -> None: ...
    def delete_netns_many(self, names: Sequence[str]) -> None: ...  # delete_netns of each, maybe side by side
    def is_placeholder(self, name: str) -> bool: ...  # an empty file, no namespace (netns.is_placeholder)
    def remove_placeholder(self, name: str) -> bool: ...
    def read_tag(self, name: str) -> str | None: ...
    def read_tags(self, names: Sequence[str]) -> dict[str, str | None]: ...  # read_tag of each

    # reading
    def snapshot(self, netns: str, sysctls: Sequence[str] = (), tables: bool = True) -> Snapshot: ...
    def running_links(self, netns: str) -> set[str]: ...  # names of the links operationally up (IFF_RUNNING)
    # the ids ``netns`` gives these namespaces, as its links' peer_netnsid name them (kernel/nsid.py; one given
    # none, or gone, is left out)
    def nsids(self, netns: str, others: Sequence[str]) -> dict[str, int]: ...
    # snapshot(ns, sysctls, tables) of each namespace of ``asks``, maybe side by side; ``meanwhile()`` runs
    # in this thread while other readers (if any) read. With ``digest``,
    # each namespace's entry is digest(ns, snapshot), called by the reader (maybe a forked child: what it
    # returns must pickle, and it sees this process as it was when the readers started). A namespace deleted
    # since the caller looked is left out (snapshot raises netlab.errors.NetnsGone for it)
    def snapshot_many(self, asks: dict[str, tuple[Sequence[str], bool]],
                      meanwhile: Callable[[], None] | None = None,
                      digest: Callable[[str, Snapshot], Any] | None = None) -> dict[str, Any]: ...

    # changing: ops in order, grouped by namespace as given; stops at the first failure
    # the ops that took effect (a deletion allowed to find nothing that did: left out); None: all of them
    def apply(self, ops: Sequence[Op]) -> list[Op] | None: ...
    def delete_veths(self, netns: str) -> None: ...
    # one gratuitous ARP for ``address`` from ``dev`` of ``netns`` (kernel/garp.py); OSError when not sent
    def announce(self, netns: str, dev: str, address: IPv4Address) -> None: ...
    # forget the path MTUs (and redirects) ``netns`` learned: `ip route flush cache` (net.ipv4.route.flush)
    def flush_route_cache(self, netns: str) -> None: ...

    # what netlab's own nft transactions left, while nothing else committed since (kernel/nftgen.py)
    nft_written: "Written"

    # iptables, whole tables (the lab's chains are applied as ops)
    def iptables_save(self, netns: str, table: str, backend: str = "") -> str: ...

    def close(self) -> None: ...
