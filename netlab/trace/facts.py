"""What the walker asks the kernel, per namespace, and the answers as plain data.

The walker never re-implements routing: at every namespace it asks the
kernel what it decides for this very packet, the way a learner would with
``ip`` and ``bridge``:

- ``ip route get DST from SRC iif DEV``: the route (:class:`RouteFacts`), and
  with ``fibmatch`` the table entry that matched;
- ``ip neigh show IP dev DEV``: the next hop's ARP entry (:class:`NeighFacts`);
- ``bridge fdb show``: where a MAC is, on a bridge (which port) or on a VXLAN
  device (which remote VTEP) (:class:`FdbFacts`);
- ``ip -d link``: kinds, masters, VXLAN settings, hairpin (:class:`LinkFacts`);
- ``conntrack -L``: the NAT the kernel did for the packet (:class:`CtEntry`);
- ``sysctl net.bridge.bridge-nf-call-iptables``: whether bridged frames pass
  iptables (a Service DNAT then happens at the bridge port);
- ``iptables-save -c -t nat``: kube-proxy's rules as the kernel holds them,
  with their packet counters (:class:`NatTable`): which rule is missing when
  a Service's packet was not DNATed, which ``statistic`` rule picked the
  endpoint when it was.

:class:`Kernel` is that list of questions. kernel.py answers it from the
running kernel; the unit tests answer it from a fake built from the plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from netlab.trace.flow import Flow


@dataclass(frozen=True)
class VxlanFacts:
    vni: int
    port: int
    local: str | None
    dev: str | None  # the underlay device (IFLA_VXLAN_LINK)
    learning: bool


@dataclass(frozen=True)
class InetAddress:
    """An IPv4 address of a device as the kernel holds it (``ip -4 addr``): what its choice of a source among them
    weighs (inet_select_addr)."""

    cidr: str  # "10.244.0.1/24"
    scope: int = 0  # RT_SCOPE_*: 0 global, 253 link, 254 host (lo's 127.0.0.1)
    secondary: bool = False  # IFA_F_SECONDARY: another address of its subnet came first


@dataclass(frozen=True)
class LinkFacts:
    name: str
    index: int
    kind: str | None  # veth, bridge, vxlan, None for lo and plain devices
    mac: str | None
    mtu: int
    up: bool
    master: str | None = None
    hairpin: bool | None = None
    vxlan: VxlanFacts | None = None
    addresses: tuple[str, ...] = ()  # "10.244.0.1/24"
    # the same, in the kernel's order, with their scope and flags (empty where not known: a fake kernel)
    inet: tuple[InetAddress, ...] = ()
    operstate: str = "UNKNOWN"  # `ip link`'s "state": UP; DOWN (set down, or no carrier: a veth whose peer is down)
    # A bridge port's state (`bridge link`): forwarding, or disabled (the port set down, or no carrier: its veth
    # peer is down), listening, learning, blocking; the bridge sends frames out of, and takes them in from, a
    # forwarding port only. None: not a bridge port, or not known.
    port_state: str | None = None
    # A bridge port's settings away from the kernel's defaults (`bridge -d link`: "isolated on", "bcast_flood off":
    # kernel/rtnl_bridge.py); the bridge forwards nothing between two isolated ports, no broadcast to one with
    # bcast_flood off, no unknown unicast to one with flood off.
    port_settings: tuple[str, ...] = ()
    # A macvlan's or ipvlan's lower device (IFLA_LINK: its ifindex, in the namespace of IFLA_LINK_NETNSID when
    # lower_elsewhere, else in this one) and its mode: macvlan private, vepa, bridge, passthru, source; ipvlan l2,
    # l3, l3s. None for other kinds.
    lower: int | None = None
    lower_elsewhere: bool = False
    mode: str | None = None


def vxlan_on_port(links: dict[str, LinkFacts], port: int | None) -> LinkFacts | None:
    """The VXLAN device of a namespace that listens on this UDP port: its socket takes every datagram to it."""
    return next((link for link in links.values() if link.vxlan is not None and link.vxlan.port == port), None)


@dataclass(frozen=True)
class RouteFacts:
    """An ``RTM_GETROUTE`` answer, plus the FIB entry it matched (``ip route get fibmatch``)."""

    type: str  # unicast local broadcast blackhole unreachable prohibit ...
    oif: str | None
    gateway: str | None = None
    prefsrc: str | None = None
    matched: str | None = None  # "10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink"
    hops: tuple[str, ...] = ()  # the matched route's next hops, when it is a multipath one (their gateways)
    # The path MTU the answer carries (`mtu 1300`): the matched route's own mtu, or one the kernel learned from an
    # ICMP fragmentation needed (a cache entry: `cache expires 96sec mtu 1300`, its seconds left in mtu_expires)
    mtu: int | None = None
    mtu_expires: int | None = None


class RouteFailure(Exception):
    """The kernel answered the route lookup with an error (no route, invalid source ...)."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class NeighFacts:
    ip: str
    dev: str
    lladdr: str | None
    state: str  # PERMANENT REACHABLE STALE DELAY PROBE INCOMPLETE FAILED NOARP NONE
    flags: tuple[str, ...] = ()  # ("extern_learn",): the kernel never ages it (kernel/rtnl_neigh)

    def said(self) -> str:
        """Its state as `ip neigh` prints it, with its flags: ``PERMANENT``, ``REACHABLE extern_learn``."""
        return " ".join((self.state, *self.flags))


@dataclass(frozen=True)
class FdbFacts:
    """A ``bridge fdb`` entry: on a VXLAN device (dst = remote VTEP) or a bridge port (master)."""

    lladdr: str
    dev: str
    master: str | None = None
    dst: str | None = None
    state: str = "learned"  # permanent | static | learned, " sticky" after where the kernel has it (a hand's)
    self_: bool = False
    # A VXLAN entry's remote beyond its address, where the kernel says it: not the device's own UDP port or VNI,
    # an underlay device to leave by (`via`)
    port: int | None = None
    vni: int | None = None
    via: str | None = None

    def text(self) -> str:
        parts = [self.lladdr, "dev", self.dev]
        if self.dst:
            parts += ["dst", self.dst]
        for name in ("port", "vni", "via"):
            if getattr(self, name) is not None:
                parts += [name, str(getattr(self, name))]
        if self.master:
            parts += ["master", self.master]
        if self.self_:
            parts.append("self")
        if self.state != "learned":
            parts.append(self.state)
        return " ".join(parts)


@dataclass(frozen=True)
class CtEntry:
    """One conntrack entry: the original and the reply direction as the kernel keeps them."""

    orig: Flow
    reply: Flow
    state: str | None = None
    flags: tuple[str, ...] = ()
    # The namespace held it before the packet came (its NEW event was not heard while the packet ran):
    # the packet followed it, past the nat table. None: nobody listened.
    made_before: bool | None = None

    def direction_of(self, flow: Flow) -> str | None:
        """``orig`` when ``flow`` is the connection's first direction, ``reply`` when it is the answer."""
        if self.orig == flow:
            return "orig"
        if self.reply == flow:
            return "reply"
        return None

    def text(self) -> str:
        state = f" {self.state}" if self.state else ""
        o, r = self.orig, self.reply
        flags = "".join(f" [{f}]" for f in self.flags)
        ids = (f" id {o.sport}", f" id {r.sport}") if o.proto == "icmp" else ("", "")  # conntrack's id=
        return (f"{o.proto}{state} {o.endpoint('src')} → {o.endpoint('dst')}{ids[0]} | reply {r.endpoint('src')} → "
                f"{r.endpoint('dst')}{ids[1]}{flags}")


@dataclass(frozen=True)
class NatRule:
    """One rule of the nat table as ``iptables-save -c`` prints it, and its packet counter."""

    line: str  # "-A KUBE-SVC-... -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-..."
    packets: int = 0
    delta: int | None = None  # packets it counted while the trace ran (None: not counted before)

    @property
    def chain(self) -> str:
        return self.line.split(None, 2)[1]

    @property
    def target(self) -> str | None:
        words = self.line.split()
        return next((words[i + 1] for i, w in enumerate(words[:-1]) if w in ("-j", "-g")), None)


@dataclass(frozen=True)
class NatTable:
    """A namespace's nat table: its chains and rules, in the kernel's order."""

    chains: frozenset[str]
    rules: tuple[NatRule, ...]

    def rule(self, line: str) -> NatRule | None:
        return next((r for r in self.rules if r.line == line), None)

    def chain_rules(self, chain: str) -> list[NatRule]:
        return [r for r in self.rules if r.chain == chain]


@dataclass(frozen=True)
class NftTable:
    """kube-proxy's table ``ip kube-proxy`` (nftables mode) as the kernel lists it, in the plan's words."""

    listing: frozenset[str]  # "chain X", "rule X 0001 ...", "element service-ips ..." (realize/nftables.py)
    rules: dict[str, tuple[str, ...]]  # chain -> its rules, in order
    elements: dict[str, tuple[str, ...]]  # set or map -> its elements, a dynamic set's (affinity) too
    elements_before: dict[str, tuple[str, ...]] | None = None  # the same, read before the packet
    exists: bool = True  # False: the kernel has no such table (`nft delete table ip kube-proxy`), all else empty
    # chain -> each rule's `counter` packets, in the chain's order (None: a rule without one). kube-proxy writes
    # none; a user may insert one (`nft insert rule ... CHAIN counter`, as inspect suggests).
    counters: dict[str, tuple[int | None, ...]] = field(default_factory=dict)
    counters_before: dict[str, tuple[int | None, ...]] | None = None  # the same, read before the packet

    def chain_rules(self, chain: str) -> tuple[str, ...]:
        return self.rules.get(chain, ())

    def has_counter(self, chain: str) -> bool:
        return any(c is not None for c in self.counters.get(chain, ()))

    def counted(self, chain: str) -> int | None:
        """The packets the chain's first counter took while the trace ran (None: no counter, or not read before):
        a counter at the head of a chain counts every packet that enters it."""
        now = [c for c in self.counters.get(chain, ()) if c is not None]
        then = [c for c in (self.counters_before or {}).get(chain, ()) if c is not None]
        return now[0] - then[0] if now and then else None


class Kernel(Protocol):
    """The kernel's answers the walker needs, per namespace."""

    def links(self, netns: str) -> dict[str, LinkFacts]: ...

    def route_get(self, netns: str, dst: str, src: str | None = None, iif: str | None = None,
                  l4: tuple[int, int, int] | None = None) -> RouteFacts:
        """``ip route get``; raises :class:`RouteFailure` when the kernel answers with an error. ``l4``: the
        packet's (protocol number, source port, destination port), for a multipath route's hash."""
        ...

    def neigh(self, netns: str, dev: str, ip: str) -> NeighFacts | None: ...

    def fdb(self, netns: str) -> list[FdbFacts]: ...

    def conntrack(self, netns: str, proto: str) -> list[CtEntry]: ...

    def bridge_nf(self, netns: str) -> bool:
        """net.bridge.bridge-nf-call-iptables in this namespace (bridged frames pass iptables)."""
        ...

    def nat_table(self, netns: str) -> NatTable | None:
        """``iptables-save -c -t nat`` after the packet (None: it could not be read)."""
        ...

    def filter_table(self, netns: str) -> NatTable | None:
        """``iptables-save -c -t filter`` after the packet (None: it could not be read)."""
        ...

    def nft_table(self, netns: str) -> NftTable | None:
        """``nft -j list table ip kube-proxy`` after the packet (None: absent or unreadable)."""
        ...

    def nft_problem(self, netns: str) -> str | None:
        """Why :meth:`nft_table` is None: nft's one line when the table could not be read; None otherwise."""
        ...
