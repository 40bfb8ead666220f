"""rtnetlink requests of Flannel's overlay: the VXLAN device (``ip link add ... type vxlan``), its FDB entries
(``bridge fdb append|replace|del ... self``), and the words for an FDB or ARP entry's state.

A VXLAN device's FDB maps an inner MAC to a remote VTEP: its underlay address, and, where they are not the
device's own, a UDP port, a VNI and an underlay device to leave by (``port``, ``vni``, ``via``). flanneld writes
each entry with the address alone, permanent (pkg/backend/vxlan/device.go, AddFDB): the kernel then sends the
frame to the device's own port and VNI, by the route to the remote. An entry that is not permanent ages out
after the device's ageing time (dynamic) or stays without being the kernel's to keep (static).

flanneld makes the device with its VNI, underlay device and address, UDP port and learning off; its netlink
library sends TTL 0 and TOS 0 and nothing else, so the rest (no default remote, DF unset, ageing 300 s, no
proxy, no L2/L3 miss, UDP checksums on, source ports from the local port range, no address limit) is the kernel's
default. The settings here that differ from those are sent only then: a
rollback makes again a device that had them.
"""

from __future__ import annotations

import struct

from netlab.kernel.netlink import (NLM_F_APPEND, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, attr, be16, ipv4, mac,
                                   message, nested, string, u8, u32)
from netlab.kernel.rtnl import (AF_BRIDGE, IFLA_INFO_DATA, IFLA_INFO_KIND, IFLA_LINKINFO, IFLA_VXLAN_AGEING,
                                IFLA_VXLAN_COLLECT_METADATA, IFLA_VXLAN_DF, IFLA_VXLAN_GBP, IFLA_VXLAN_GROUP,
                                IFLA_VXLAN_ID, IFLA_VXLAN_L2MISS, IFLA_VXLAN_L3MISS, IFLA_VXLAN_LEARNING,
                                IFLA_VXLAN_LIMIT, IFLA_VXLAN_LINK, IFLA_VXLAN_LOCAL, IFLA_VXLAN_PORT,
                                IFLA_VXLAN_PORT_RANGE, IFLA_VXLAN_PROXY, IFLA_VXLAN_RSC, IFLA_VXLAN_TOS,
                                IFLA_VXLAN_TTL, IFLA_VXLAN_TTL_INHERIT, IFLA_VXLAN_UDP_CSUM, NDA_DST, NDA_IFINDEX,
                                NDA_LLADDR, NDA_PORT, NDA_VNI, NDMSG, NTF_SELF, NUD_DELAY, NUD_FAILED, NUD_INCOMPLETE,
                                NUD_NOARP, NUD_PERMANENT, NUD_PROBE, NUD_REACHABLE, NUD_STALE, RTM_DELNEIGH,
                                RTM_NEWLINK, RTM_NEWNEIGH, _ifinfo, _link_common)

DEFAULT_AGEING = 300  # seconds: the kernel's FDB ageing time of a VXLAN device made without one (vxlan.h)
DF = {"unset": 0, "set": 1, "inherit": 2}  # IFLA_VXLAN_DF: enum ifla_vxlan_df, in `ip -d link`'s words
DF_NAMES = {number: name for name, number in DF.items()}
# The on/off settings flanneld sends off (or leaves off), in `ip link add ... type vxlan`'s words: the kernel
# answers ARP for the remote itself (proxy), sends netlink misses (l2miss, l3miss), routes short-circuit (rsc),
# carries group policy (gbp) or is a metadata device without a VNI of its own (external)
OPTIONS = {"proxy": IFLA_VXLAN_PROXY, "rsc": IFLA_VXLAN_RSC, "l2miss": IFLA_VXLAN_L2MISS,
           "l3miss": IFLA_VXLAN_L3MISS, "gbp": IFLA_VXLAN_GBP, "external": IFLA_VXLAN_COLLECT_METADATA}

# An FDB entry's state as `bridge fdb` says it (NUD_REACHABLE it prints as nothing: an entry that ages, "dynamic"
# as `bridge fdb add ... dynamic` makes it)
FDB_STATES = {"permanent": NUD_PERMANENT, "static": NUD_NOARP, "dynamic": NUD_REACHABLE, "stale": NUD_STALE}
# A neighbour (ARP) entry's state as `ip neigh` says it, in lower case (its `nud` words)
NEIGH_STATES = {"permanent": NUD_PERMANENT, "noarp": NUD_NOARP, "reachable": NUD_REACHABLE, "stale": NUD_STALE,
                "delay": NUD_DELAY, "probe": NUD_PROBE, "failed": NUD_FAILED, "incomplete": NUD_INCOMPLETE}


def fdb_state(state: int) -> str:
    """An FDB entry's NUD state in `bridge fdb`'s words (any other than permanent or static ages: dynamic)."""
    return next((name for name, bit in FDB_STATES.items() if state & bit), "dynamic")


def neigh_state(state: int) -> str:
    """A neighbour's NUD state in `ip neigh`'s words; "none" for none of them."""
    return next((name for name, bit in NEIGH_STATES.items() if state & bit), "none")


def vxlan_add(index: int, name: str, address: str | None, mtu: int | None, vni: int, local: str | None, port: int,
              link: int | None, learning: bool = False, up: bool = True, txqlen: int | None = None, *,
              remote: str | None = None, ttl: str = "auto", tos: int = 0, df: str = "unset",
              ageing: int = DEFAULT_AGEING, options: tuple[str, ...] = (),
              flags: tuple[int, int] = (0, 0), udpcsum: bool = True, srcport: tuple[int, int] = (0, 0),
              maxaddress: int = 0) -> bytes:
    """``ip link add flannel.1 type vxlan id VNI local IP dev eth0 dstport PORT nolearning`` (no local and no
    dev: the doctor's throwaway one); the kernel's defaults that are not ``remote``, ``ttl`` ("auto", "inherit" or
    a number), ``tos``, ``df``, ``ageing``, ``options`` (OPTIONS' words), ``udpcsum``, ``srcport`` (low, high) and
    ``maxaddress`` are said; ``flags``: link flags (values, mask: arp off ...)."""
    body = _ifinfo(index, up, flags=flags) + _link_common(name, address, mtu, txqlen, None, None)
    data = u32(IFLA_VXLAN_ID, vni)
    if remote is not None:
        data += ipv4(IFLA_VXLAN_GROUP, remote)
    if link is not None:
        data += u32(IFLA_VXLAN_LINK, link)
    if local is not None:
        data += ipv4(IFLA_VXLAN_LOCAL, local)
    if ttl == "inherit":
        data += attr(IFLA_VXLAN_TTL_INHERIT, b"")  # a flag: present or not
    elif ttl != "auto":
        data += u8(IFLA_VXLAN_TTL, int(ttl))
    if tos:
        data += u8(IFLA_VXLAN_TOS, tos)
    if df != "unset":
        data += u8(IFLA_VXLAN_DF, DF[df])
    if ageing != DEFAULT_AGEING:
        data += u32(IFLA_VXLAN_AGEING, ageing)
    for word in options:
        data += attr(IFLA_VXLAN_GBP, b"") if OPTIONS[word] == IFLA_VXLAN_GBP else u8(OPTIONS[word], 1)
    if not udpcsum:
        data += u8(IFLA_VXLAN_UDP_CSUM, 0)
    if srcport != (0, 0):
        data += attr(IFLA_VXLAN_PORT_RANGE, struct.pack("!HH", *srcport))
    if maxaddress:
        data += u32(IFLA_VXLAN_LIMIT, maxaddress)
    data += u8(IFLA_VXLAN_LEARNING, int(learning)) + be16(IFLA_VXLAN_PORT, port)
    body += nested(IFLA_LINKINFO, string(IFLA_INFO_KIND, "vxlan"), nested(IFLA_INFO_DATA, data))
    return message(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body)


def vxlan_change(ageing: int) -> bytes:
    """The IFLA_LINKINFO of ``ip link set DEV type vxlan ageing N`` (rtnl.link_set's ``info``): the kernel changes
    the ageing of a device that is up in place (vxlan_changelink); most other settings it refuses to change
    ("Cannot change VNI", UDP_CSUM, port range, limit, PROXY ...)."""
    data = nested(IFLA_INFO_DATA, u32(IFLA_VXLAN_AGEING, ageing))
    return nested(IFLA_LINKINFO, string(IFLA_INFO_KIND, "vxlan"), data)


def _fdb(index: int, lladdr: str, dst: str | None, state: int, port: int | None, vni: int | None,
         via: int | None, flags: int = 0) -> bytes:
    body = NDMSG.pack(AF_BRIDGE, index, state, NTF_SELF | flags, 0) + mac(NDA_LLADDR, lladdr)
    if dst:
        body += ipv4(NDA_DST, dst)
    if port is not None:
        body += be16(NDA_PORT, port)
    if vni is not None:
        body += u32(NDA_VNI, vni)
    if via is not None:
        body += u32(NDA_IFINDEX, via)
    return body


def fdb_append(index: int, lladdr: str, dst: str, port: int | None = None, vni: int | None = None,
               via: int | None = None, state: str = "permanent", flags: int = 0) -> bytes:
    """``bridge fdb append MAC dev IDX dst IP [port P] [vni V] [via DEV] self permanent``: a remote added to the
    all-zeros or a multicast MAC's list; for a unicast MAC that has one, nothing changes."""
    body = _fdb(index, lladdr, dst, FDB_STATES[state], port, vni, via, flags)
    return message(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_APPEND, body)


def fdb_replace(index: int, lladdr: str, dst: str, port: int | None = None, vni: int | None = None,
                via: int | None = None, state: str = "permanent", flags: int = 0) -> bytes:
    """``bridge fdb replace MAC dev IDX dst IP ... self permanent``, as flanneld's AddFDB (NLM_F_REPLACE): a
    unicast MAC's one remote made this one, its port, VNI and device the device's own unless said, and its
    state."""
    body = _fdb(index, lladdr, dst, FDB_STATES[state], port, vni, via, flags)
    return message(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, body)


def fdb_del(index: int, lladdr: str, dst: str | None, port: int | None = None, vni: int | None = None,
            via: int | None = None) -> bytes:
    """``bridge fdb del MAC dev IDX [dst IP] [port P] [vni V] [via DEV] self``: one remote of a VXLAN entry (the
    kernel matches all four: a remote via eth0 is not deleted by a request without it)."""
    return message(RTM_DELNEIGH, 0, _fdb(index, lladdr, dst, 0, port, vni, via))
