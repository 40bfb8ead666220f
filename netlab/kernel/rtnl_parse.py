"""rtnetlink, the kernel's answers: link, address, route, neighbour and rule messages, decoded.

What a dump (``ip link``/``ip addr``/``ip route``/``ip neigh``/``bridge fdb``/
``ip rule`` show), a ``get`` (``ip route get``, ``ip link show dev``) and a
multicast notification (kernel/events.py) carry is the same message, so one
parser per message type serves all three. The constants and header layouts
are rtnl.py's, the requests' own; ``tests/unit/test_rtnl.py`` feeds every
parser messages encoded by pyroute2.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from netlab.kernel import rtnl_bridge
from netlab.kernel.netlink import Conn, Msg, attrs, get_be16, get_ipv4, get_mac, get_str, get_u8, get_u16, get_u32
from netlab.kernel.rtnl import (AF_INET, BR_STATES, FIBRULE, FRA_DST, FRA_FWMARK, FRA_FWMASK, FRA_IIFNAME, FRA_OIFNAME,
                                FRA_PRIORITY, FRA_SRC, FRA_TABLE, IFA_ADDRESS, IFA_BROADCAST, IFA_FLAGS, IFA_LABEL,
                                IFA_LOCAL,
                                IFADDR, IFF_ALLMULTI, IFF_LOOPBACK, IFF_MULTICAST, IFF_NOARP, IFF_PROMISC, IFF_RUNNING,
                                IFF_UP, IFINFO, IFLA_ADDRESS, IFLA_AF_SPEC, IFLA_BRPORT_MODE, IFLA_BRPORT_STATE,
                                IFLA_GROUP, IFLA_IFALIAS, IFLA_IFNAME, IFLA_INET_CONF, IFLA_INFO_DATA, IFLA_INFO_KIND,
                                IFLA_LINK, IFLA_LINK_NETNSID, IFLA_LINKINFO, IFLA_MASTER, IFLA_MTU, IFLA_OPERSTATE,
                                IFLA_PROTINFO, IFLA_TXQLEN, IFLA_VXLAN_AGEING, IFLA_VXLAN_COLLECT_METADATA,
                                IFLA_VXLAN_DF, IFLA_VXLAN_GBP, IFLA_VXLAN_GROUP, IFLA_VXLAN_ID, IFLA_VXLAN_L2MISS,
                                IFLA_VXLAN_L3MISS, IFLA_VXLAN_LEARNING, IFLA_VXLAN_LIMIT, IFLA_VXLAN_LINK,
                                IFLA_VXLAN_LOCAL, IFLA_VXLAN_PORT, IFLA_VXLAN_PORT_RANGE, IFLA_VXLAN_PROXY,
                                IFLA_VXLAN_RSC, IFLA_VXLAN_TOS, IFLA_VXLAN_TTL, IFLA_VXLAN_TTL_INHERIT,
                                IFLA_VXLAN_UDP_CSUM, INET_CONF, NDA_CACHEINFO, NDA_DST, NDA_IFINDEX, NDA_LLADDR,
                                NDA_MASTER, NDA_PORT, NDA_PROBES, NDA_VNI, NDMSG, OPERSTATES, RTA_DST, RTA_GATEWAY,
                                RTA_MULTIPATH, RTA_OIF, RTA_PREFSRC, RTA_PRIORITY, RTA_TABLE, RTM_F_CLONED, RTMSG,
                                RTM_NEWTFILTER, RTNEXTHOP, TC_H_INGRESS, TC_H_ROOT, TCMSG, link_dump)
from netlab.kernel.netlink import attr_list
from netlab.kernel.rtnl import IFA_CACHEINFO, IFA_RT_PRIORITY, INFINITY_LIFE_TIME, RTA_METRICS
from netlab.plan.route_attrs import RTAX_CC_ALGO, Metrics

# In IFLA_AF_SPEC / AF_INET6: the interface's IPv6 sysctls, s32 each, by DEVCONF_* position (linux/ipv6.h, counted
# from 0); absent where the interface has no IPv6 (below 1280 bytes of MTU, or a kernel without IPv6)
IFLA_INET6_CONF = 2
INET6_CONF = {"disable_ipv6": 26}  # DEVCONF_DISABLE_IPV6


@dataclass(frozen=True)
class LinkMsg:
    index: int
    name: str
    kind: str | None
    up: bool
    mtu: int | None
    mac: str | None
    master: int | None
    peer: int | None  # IFLA_LINK: a veth's peer index (in the peer's namespace)
    peer_netnsid: int | None
    alias: str | None
    group: int
    txqlen: int | None
    data: dict = field(default_factory=dict, compare=False)  # kind-specific settings (vxlan id, port ...)
    inet_conf: dict = field(default_factory=dict, compare=False)  # its net.ipv4.conf.<dev>.* values (INET_CONF)
    inet6_conf: dict = field(default_factory=dict, compare=False)  # its net.ipv6.conf.<dev>.* values (INET6_CONF)
    running: bool = field(default=True, compare=False)  # IFF_RUNNING: operationally up (rtnl.py)
    operstate: str = field(default="UNKNOWN", compare=False)  # `ip link`'s "state": UP, DOWN, UNKNOWN (lo, vxlan) ...
    flags: int | None = field(default=None, compare=False)  # ifi_flags: IFF_NOARP, IFF_PROMISC ... (flag_words)


@dataclass(frozen=True)
class AddrMsg:
    index: int
    address: str
    prefixlen: int
    broadcast: str | None
    scope: int
    label: str | None
    flags: int = 0  # ifa_flags: IFA_F_SECONDARY (1), ...
    metric: int = 0  # IFA_RT_PRIORITY: its connected route's (`ip addr add ... metric N`)
    # IFA_CACHEINFO's seconds left (`valid_lft 40sec preferred_lft 40sec`), None forever (INFINITY_LIFE_TIME)
    valid_lft: int | None = None
    preferred_lft: int | None = None


@dataclass(frozen=True)
class RouteMsg:
    table: int
    dst: str
    dst_len: int
    tos: int
    gateway: str | None
    oif: int | None
    proto: int
    scope: int
    type: int
    flags: int
    priority: int | None
    prefsrc: str | None
    multipath: bool
    nexthops: tuple[tuple[str | None, int], ...] = ()  # RTA_MULTIPATH's hops: (gateway, oif), in the kernel's order
    # each hop's (weight, rtnh_flags), in the same order: ``ip route``'s ``weight N`` (rtnh_hops + 1), ``onlink``
    hop_weights: tuple[tuple[int, int], ...] = ()
    metrics: Metrics = ()  # RTA_METRICS: (RTAX, value) each, in the kernel's order (plan/route_attrs.py)


@dataclass(frozen=True)
class NeighMsg:
    family: int
    index: int
    dst: str | None
    lladdr: str | None
    state: int
    flags: int
    master: int | None
    # NDA_CACHEINFO's ages in USER_HZ ticks (`ip -s neigh`'s "used A/B/C"): since a packet was last sent through the
    # entry (neigh->used, also set as it is made), and since it was last written (neigh->updated)
    used: int | None = None
    updated: int | None = None
    probes: int | None = None  # NDA_PROBES: the ARP requests sent for it (none for an entry made by hand)
    # A VXLAN FDB entry's remote: its UDP port, VNI and underlay device (index), each said only where it is not
    # the device's own (rtnl_vxlan)
    port: int | None = None
    vni: int | None = None
    ifindex: int | None = None
    vlan: int | None = None  # NDA_VLAN: a bridge's entry's VLAN (`bridge fdb`'s "vlan 1"), where it has one


@dataclass(frozen=True)
class RuleMsg:
    priority: int
    table: int
    action: int
    src: str | None
    src_len: int
    dst: str | None
    dst_len: int
    iif: str | None
    oif: str | None
    fwmark: int | None
    fwmask: int | None
    tos: int


# A VXLAN device's settings (vxlan_fill_info says each; a "flag" is there only when on): a remote is "group"
_VXLAN_FIELDS = {IFLA_VXLAN_ID: ("id", "u32"), IFLA_VXLAN_LINK: ("link", "u32"), IFLA_VXLAN_LOCAL: ("local", "ip"),
                 IFLA_VXLAN_LEARNING: ("learning", "u8"), IFLA_VXLAN_PORT: ("port", "be16"),
                 IFLA_VXLAN_TTL: ("ttl", "u8"), IFLA_VXLAN_GROUP: ("group", "ip"), IFLA_VXLAN_TOS: ("tos", "u8"),
                 IFLA_VXLAN_AGEING: ("ageing", "u32"), IFLA_VXLAN_DF: ("df", "u8"),
                 IFLA_VXLAN_TTL_INHERIT: ("ttl_inherit", "flag"), IFLA_VXLAN_PROXY: ("proxy", "u8"),
                 IFLA_VXLAN_RSC: ("rsc", "u8"), IFLA_VXLAN_L2MISS: ("l2miss", "u8"),
                 IFLA_VXLAN_L3MISS: ("l3miss", "u8"), IFLA_VXLAN_GBP: ("gbp", "flag"),
                 IFLA_VXLAN_COLLECT_METADATA: ("external", "u8"), IFLA_VXLAN_UDP_CSUM: ("udp_csum", "u8"),
                 IFLA_VXLAN_LIMIT: ("limit", "u32"), IFLA_VXLAN_PORT_RANGE: ("srcport", "range")}

# The link flags `ip link set` changes that change what a link does with traffic, each as the word that sets it
# away from the kernel's default: NOARP (no ARP: its neighbours are its own MAC), PROMISC and ALLMULTI (it takes
# every frame), MULTICAST off (every device but lo has it). (bit, word when set, word when clear)
LINK_FLAGS = ((IFF_NOARP, "arp off", "arp on"), (IFF_PROMISC, "promisc on", "promisc off"),
              (IFF_ALLMULTI, "allmulticast on", "allmulticast off"), (IFF_MULTICAST, "multicast on", "multicast off"))


def flag_words(flags: int | None) -> tuple[str, ...]:
    """A link's flags away from the kernel's default, in `ip link set`'s words (lo has no MULTICAST); none when
    not said (a message made without them)."""
    if flags is None:
        return ()
    default = 0 if flags & IFF_LOOPBACK else IFF_MULTICAST
    return tuple(on if flags & bit else off for bit, on, off in LINK_FLAGS if (flags ^ default) & bit)


def flag_bits(words: tuple[str, ...], loopback: bool = False) -> tuple[int, int]:
    """The (values, mask) of ifi_flags that give a link ``words`` (flag_words') and the default otherwise."""
    value = 0 if loopback else IFF_MULTICAST
    for bit, on, off in LINK_FLAGS:
        value = value | bit if on in words else value & ~bit if off in words else value
    return value, sum(bit for bit, _, _ in LINK_FLAGS)


def _get_u16(a: dict[int, bytes], kind: int) -> int | None:
    v = a.get(kind)
    return struct.unpack_from("=H", v)[0] if v and len(v) >= 2 else None


def parse_link(m: Msg) -> LinkMsg:
    _family, _type, index, flags, _change = IFINFO.unpack_from(m.body)
    a = attrs(m.body, IFINFO.size)
    kind = None
    data: dict = {}
    info = a.get(IFLA_LINKINFO)
    if info is not None:
        ia = attrs(info)
        kind = get_str(ia, IFLA_INFO_KIND)
        if kind == "vxlan" and IFLA_INFO_DATA in ia:
            va = attrs(ia[IFLA_INFO_DATA])
            for key, (name, how) in _VXLAN_FIELDS.items():
                if key in va:
                    # a flag the kernel sends as a u8 (TTL_INHERIT) or bare (GBP): on when bare
                    data[name] = 1 if how == "flag" and not va[key] else _port_range(va[key]) if how == "range" else \
                        {"u32": get_u32, "u8": get_u8, "flag": get_u8, "be16": get_be16, "ip": get_ipv4}[how](va, key)
        elif kind == "bridge":  # its settings away from the kernel's defaults (rtnl_bridge)
            data["settings"] = rtnl_bridge.bridge_words(ia.get(IFLA_INFO_DATA))
        elif kind in ("macvlan", "ipvlan") and IFLA_INFO_DATA in ia:
            # IFLA_MACVLAN_MODE (u32) / IFLA_IPVLAN_MODE (u16), attribute 1 of both (include/uapi/linux/if_link.h)
            va = attrs(ia[IFLA_INFO_DATA])
            mode = (get_u32 if kind == "macvlan" else _get_u16)(va, 1)
            if mode is not None:
                data["mode"] = mode
    return LinkMsg(index=index, name=get_str(a, IFLA_IFNAME) or "", kind=kind, up=bool(flags & IFF_UP),
                   mtu=get_u32(a, IFLA_MTU), mac=get_mac(a, IFLA_ADDRESS), master=get_u32(a, IFLA_MASTER),
                   peer=get_u32(a, IFLA_LINK), peer_netnsid=_signed(get_u32(a, IFLA_LINK_NETNSID)),
                   alias=get_str(a, IFLA_IFALIAS), group=get_u32(a, IFLA_GROUP, 0) or 0,
                   txqlen=get_u32(a, IFLA_TXQLEN), data=data, inet_conf=_inet_conf(a.get(IFLA_AF_SPEC)),
                   inet6_conf=_inet6_conf(a.get(IFLA_AF_SPEC)),
                   running=bool(flags & IFF_RUNNING), operstate=_operstate(get_u8(a, IFLA_OPERSTATE)), flags=flags)


def _port_range(data: bytes) -> tuple[int, int]:
    """struct ifla_vxlan_port_range: the UDP source ports (low, high), both big-endian; (0, 0): the node's local port
    range (``srcport 0 0``)."""
    return struct.unpack_from("!HH", data) if len(data) >= 4 else (0, 0)


def _operstate(value: int | None) -> str:
    return OPERSTATES[value] if value is not None and value < len(OPERSTATES) else "UNKNOWN"


def dump_links(conn: Conn, where: str) -> list[LinkMsg]:
    """Every link of the socket's namespace (``where`` names it in errors): one RTM_GETLINK dump, parsed."""
    return [parse_link(m) for m in conn.dump(f"links in {where}", link_dump())]


def _inet_conf(spec: bytes | None) -> dict:
    """net.ipv4.conf.<dev>.* values from IFLA_AF_SPEC (absent when the interface has no IPv4 config)."""
    conf = attrs(attrs(spec).get(AF_INET, b"")).get(IFLA_INET_CONF) if spec else None
    if not conf:
        return {}
    values = struct.unpack_from(f"={len(conf) // 4}I", conf)
    return {name: str(values[i - 1]) for name, i in INET_CONF.items() if i <= len(values)}


def _inet6_conf(spec: bytes | None) -> dict:
    """net.ipv6.conf.<dev>.* values (INET6_CONF) from IFLA_AF_SPEC (absent when the interface has no IPv6)."""
    conf = attrs(attrs(spec).get(socket.AF_INET6, b"")).get(IFLA_INET6_CONF) if spec else None
    if not conf:
        return {}
    values = struct.unpack_from(f"={len(conf) // 4}i", conf)
    return {name: str(values[i]) for name, i in INET6_CONF.items() if i < len(values)}


def _signed(value: int | None) -> int | None:
    return None if value is None else struct.unpack("=i", struct.pack("=I", value))[0]


@dataclass(frozen=True)
class PortMsg:
    """A bridge port, as an entry of the AF_BRIDGE link dump (``bridge link``) says it."""

    index: int
    hairpin: bool
    state: str | None  # its STP state in `bridge link`'s words (forwarding, disabled ...); None: not said
    settings: tuple[str, ...] = ()  # its settings away from the kernel's defaults (rtnl_bridge.port_words)


def parse_bridge_port(m: Msg) -> PortMsg:
    """A bridge port of an AF_BRIDGE link dump entry (the kernel nests its attributes in IFLA_PROTINFO)."""
    index = IFINFO.unpack_from(m.body)[2]
    a = attrs(m.body, IFINFO.size)
    info = a.get(IFLA_PROTINFO)
    port = attrs(info) if info and len(info) > 1 else {}
    state = get_u8(port, IFLA_BRPORT_STATE)
    return PortMsg(index=index, hairpin=bool(get_u8(port, IFLA_BRPORT_MODE, 0)),
                   state=BR_STATES.get(state, str(state)) if state is not None else None,
                   settings=rtnl_bridge.port_words(port))


def parse_addr(m: Msg) -> AddrMsg:
    family, prefixlen, flags, scope, index = IFADDR.unpack_from(m.body)
    a = attrs(m.body, IFADDR.size)
    return AddrMsg(index=index, address=get_ipv4(a, IFA_LOCAL) or get_ipv4(a, IFA_ADDRESS) or "",
                   prefixlen=prefixlen, broadcast=get_ipv4(a, IFA_BROADCAST), scope=scope,
                   label=get_str(a, IFA_LABEL), flags=get_u32(a, IFA_FLAGS) or flags,
                   metric=get_u32(a, IFA_RT_PRIORITY) or 0, **_lifetimes(a.get(IFA_CACHEINFO)))


def _lifetimes(info: bytes | None) -> dict[str, int | None]:
    """struct ifa_cacheinfo's ifa_prefered and ifa_valid (seconds left; INFINITY_LIFE_TIME: forever, None)."""
    if not info or len(info) < 8:
        return {}
    preferred, valid = struct.unpack_from("=II", info)
    return {"valid_lft": None if valid == INFINITY_LIFE_TIME else valid,
            "preferred_lft": None if preferred == INFINITY_LIFE_TIME else preferred}


def parse_route(m: Msg) -> RouteMsg:
    _f, dst_len, _src_len, tos, table, proto, scope, rtype, flags = RTMSG.unpack_from(m.body)
    a = attrs(m.body, RTMSG.size)
    return RouteMsg(table=get_u32(a, RTA_TABLE, table) or table, dst=get_ipv4(a, RTA_DST) or "0.0.0.0",
                    dst_len=dst_len, tos=tos, gateway=get_ipv4(a, RTA_GATEWAY), oif=get_u32(a, RTA_OIF),
                    proto=proto, scope=scope, type=rtype, flags=flags, priority=get_u32(a, RTA_PRIORITY),
                    prefsrc=get_ipv4(a, RTA_PREFSRC), multipath=RTA_MULTIPATH in a,
                    nexthops=nexthops(a.get(RTA_MULTIPATH, b"")),
                    hop_weights=hop_weights(a.get(RTA_MULTIPATH, b"")), metrics=metrics(a.get(RTA_METRICS, b"")))


def metrics(data: bytes) -> Metrics:
    """RTA_METRICS's attributes: (RTAX, u32) each, the congestion control's name a string."""
    return tuple((k, (get_str({k: v}, k) or "") if k == RTAX_CC_ALGO else get_u32({k: v}, k) or 0)
                 for k, v in attr_list(data))


def _hops(data: bytes) -> Iterator[tuple[str | None, int, int, int]]:
    """RTA_MULTIPATH's hops, each a struct rtnexthop (its length counting its own attributes) and its
    RTA_GATEWAY: (gateway, oif, weight, flags) each, the weight rtnh_hops + 1 as ``ip route`` prints it."""
    off = 0
    while off + RTNEXTHOP.size <= len(data):
        length, flags, hops, oif = RTNEXTHOP.unpack_from(data, off)
        if length < RTNEXTHOP.size or off + length > len(data):
            break
        a = attrs(data[off:off + length], RTNEXTHOP.size)
        yield get_ipv4(a, RTA_GATEWAY), oif, hops + 1, flags
        off += (length + 3) & ~3


def nexthops(data: bytes) -> tuple[tuple[str | None, int], ...]:
    """RTA_MULTIPATH's hops: (gateway, oif) each."""
    return tuple((gw, oif) for gw, oif, _, _ in _hops(data))


def hop_weights(data: bytes) -> tuple[tuple[int, int], ...]:
    """RTA_MULTIPATH's hops: (weight, flags) each."""
    return tuple((weight, flags) for _, _, weight, flags in _hops(data))


def parse_routes(msgs: Iterable[Msg]) -> list[RouteMsg]:
    """The routes of a dump. A dump without strict checking also holds the route cache's exceptions (a path MTU
    the kernel learned from an ICMP "fragmentation needed", a redirect: RTM_F_CLONED, ``ip route show cache``),
    which ``ip route`` leaves out and no route delete removes: so does this."""
    return [r for r in map(parse_route, msgs) if not r.flags & RTM_F_CLONED]


def parse_neigh(m: Msg) -> NeighMsg:
    family, index, state, flags, _type = NDMSG.unpack_from(m.body)
    a = attrs(m.body, NDMSG.size)
    ci = a.get(NDA_CACHEINFO)
    _confirmed, used, updated, _refcnt = struct.unpack_from("=IIII", ci) if ci and len(ci) >= 16 else (None,) * 4
    return NeighMsg(family=family, index=index, dst=get_ipv4(a, NDA_DST), lladdr=get_mac(a, NDA_LLADDR),
                    state=state, flags=flags, master=get_u32(a, NDA_MASTER), used=used, updated=updated,
                    probes=get_u32(a, NDA_PROBES), port=get_be16(a, NDA_PORT), vni=get_u32(a, NDA_VNI),
                    ifindex=get_u32(a, NDA_IFINDEX), vlan=get_u16(a, rtnl_bridge.NDA_VLAN))


def parse_rule(m: Msg) -> RuleMsg:
    _f, dst_len, src_len, tos, table, _r1, _r2, action, _flags = FIBRULE.unpack_from(m.body)
    a = attrs(m.body, FIBRULE.size)
    return RuleMsg(priority=get_u32(a, FRA_PRIORITY, 0) or 0, table=get_u32(a, FRA_TABLE, table) or table,
                   action=action, src=get_ipv4(a, FRA_SRC), src_len=src_len, dst=get_ipv4(a, FRA_DST),
                   dst_len=dst_len, iif=get_str(a, FRA_IIFNAME), oif=get_str(a, FRA_OIFNAME),
                   fwmark=get_u32(a, FRA_FWMARK), fwmask=get_u32(a, FRA_FWMASK), tos=tos)


def added_root_qdisc(m: Msg) -> tuple[int, bytes] | None:
    """(ifindex, message body) of a root qdisc that someone added (``tc qdisc add/replace ... root``), from a qdisc
    dump; None for any other qdisc, and for the root the kernel gives a device by itself (noqueue, pfifo_fast, mq:
    its handle is 0, which no qdisc added takes). kernel/tc.py reads the body further (tc.parse_qdisc)."""
    _family, index, handle, parent, _info = TCMSG.unpack_from(m.body)
    return (index, m.body) if parent == TC_H_ROOT and handle else None


def tc_parents(index: int, root: bytes, classes: list[Msg], qdiscs: list[Msg]) -> tuple[int, int, list[int]]:
    """What hangs under a device's root qdisc (``root``: its dump's body): how many classes (of ``classes``, the
    device's class dump; an ingress or clsact qdisc's are not the root's), how many qdiscs added under a class
    (of ``qdiscs``, the namespace's qdisc dump: a handle of their own, their parent neither the root nor ingress;
    a class's default leaf is not dumped), and where filters may hang: the root's handle, each class's, each such
    qdisc's."""
    ingress = TC_H_INGRESS & 0xFFFF0000
    handles = [TCMSG.unpack_from(m.body)[2] for m in classes]
    handles = [h for h in handles if h & 0xFFFF0000 != ingress]
    under = []
    for m in qdiscs:
        _family, idx, h, parent, _info = TCMSG.unpack_from(m.body)
        if idx == index and h and parent not in (TC_H_ROOT, TC_H_INGRESS) and parent & 0xFFFF0000 != ingress:
            under.append(h)
    return len(handles), len(under), [TCMSG.unpack_from(root)[2], *handles, *under]


TCA_KIND = 1  # a tc message's attribute that names its qdisc or classifier (linux/rtnetlink.h)


def added_ingress_qdisc(m: Msg) -> tuple[int, str] | None:
    """(ifindex, kind) of an ingress or clsact qdisc (``tc qdisc add dev D ingress|clsact``), from a qdisc dump:
    the kernel gives a device none, so each is someone's. None for any other qdisc."""
    _family, index, _handle, parent, _info = TCMSG.unpack_from(m.body)
    return (index, get_str(attrs(m.body, TCMSG.size), TCA_KIND) or "?") if parent == TC_H_INGRESS else None


def filter_kind(m: Msg) -> str | None:
    """A filter's classifier (``u32``, ``bpf``...), from a filter dump; None for the entries that hold no match:
    each classifier's own of a priority (handle 0: ``filter protocol all pref 49152 bpf chain 0``) and u32's hash
    tables (a handle with no node, ``fh 800:``)."""
    _family, _index, handle, _parent, _info = TCMSG.unpack_from(m.body)
    kind = get_str(attrs(m.body, TCMSG.size), TCA_KIND)
    return None if not handle or (kind == "u32" and not handle & 0xFFF) else kind


def count_filters(dumps: list[list[Msg]]) -> int:
    """How many filters (those that match: :func:`filter_kind`) the filter dumps of one qdisc's parents hold.
    A u32 node is counted once: the hash tables of a qdisc's u32 filters are shared by its blocks (clsact's
    ingress and egress), so each parent's dump of a priority lists the other's nodes too (QA fx61a 2: one u32
    filter on each side was said "4 filters"). A u32 handle is unique in its qdisc; another classifier's is not."""
    seen, n = set(), 0
    for m in (m for dump in dumps for m in dump if m.mtype == RTM_NEWTFILTER):
        kind = filter_kind(m)
        if kind is None:
            continue
        if kind == "u32":
            _family, _index, handle, _parent, info = TCMSG.unpack_from(m.body)
            if (info >> 16, handle) in seen:
                continue
            seen.add((info >> 16, handle))
        n += 1
    return n
