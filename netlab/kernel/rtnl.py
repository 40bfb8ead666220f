"""rtnetlink, the requests ``ip``/``bridge`` send: links, addresses, routes, neighbours, rules.

One codec for every caller (building a lab, repairing it, ``status``, the prober's neighbour sweeps, ``trace``).
Requests are encoded with ``struct``: pyroute2's generic encoder costs ~0.3 ms a message, which for a 500-pod lab is
more than the kernel's own work. The constants and header layouts below are the kernel's (linux/rtnetlink.h and
friends) and serve both ways; the kernel's answers (dumps, ``get`` replies, notifications) are decoded in
rtnl_parse.py. ``tests/unit/test_rtnl.py`` checks every request against pyroute2's parser and every decoder against
pyroute2's encoder, so the two can never drift apart silently.

Interfaces are named by index here; kernel/live.py turns names into indexes.
"""

from __future__ import annotations

import socket
import struct

from netlab.kernel.netlink import (NLM_F_APPEND, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, attr, be16, ipv4, ipv6, mac,
                                   message, nested, string, u8, u16, u32)
from netlab.plan.route_attrs import Metrics

# Message types (linux/rtnetlink.h)
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
RTM_NEWNEIGH, RTM_DELNEIGH, RTM_GETNEIGH = 28, 29, 30
RTM_NEWRULE, RTM_DELRULE, RTM_GETRULE = 32, 33, 34
RTM_NEWQDISC, RTM_GETQDISC = 36, 38  # the rest of traffic control is kernel/tc.py's
RTM_NEWTFILTER, RTM_GETTFILTER = 44, 46
TCMSG = struct.Struct("=BxxxiIII")  # family, ifindex, handle, parent, info
TC_H_ROOT = 0xFFFFFFFF
# An ingress or clsact qdisc's parent; the filters on what a device receives (clsact's ingress, or the ingress
# qdisc's own) are dumped with parent ffff:fff2, those of clsact's egress with ffff:fff3
TC_H_INGRESS, TC_H_INGRESS_FILTERS, TC_H_EGRESS_FILTERS = 0xFFFFFFF1, 0xFFFFFFF2, 0xFFFFFFF3

AF_UNSPEC, AF_INET, AF_BRIDGE = 0, socket.AF_INET, 7
IFF_UP, IFF_BROADCAST, IFF_LOOPBACK = 0x1, 0x2, 0x8
# The flags `ip link set DEV arp off | promisc on | allmulticast on | multicast off` change (linux/if.h)
IFF_NOARP, IFF_PROMISC, IFF_ALLMULTI, IFF_MULTICAST = 0x80, 0x100, 0x200, 0x1000
# IFF_RUNNING: operationally up (RFC 2863 operstate UP, or UNKNOWN), which the kernel's link watch sets a
# moment after the carrier comes: only then does a bridge forward through the port and the
# device get its queueing discipline (before, everything sent on it is dropped).
IFF_RUNNING = 0x40

# IFLA_* (linux/if_link.h)
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_LINK, IFLA_MASTER, IFLA_PROTINFO = 1, 3, 4, 5, 10, 12
IFLA_VLAN_ID = 1  # IFLA_INFO_DATA of a vlan (linux/if_link.h)
IFLA_TXQLEN, IFLA_LINKINFO, IFLA_IFALIAS, IFLA_GROUP, IFLA_NET_NS_FD = 13, 18, 20, 27, 28
IFLA_LINK_NETNSID, IFLA_AF_SPEC = 37, 26
IFLA_OPERSTATE = 16  # u8, RFC 2863's operational state, as `ip link` prints it (state UP, DOWN, UNKNOWN ...)
OPERSTATES = ("UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP")
IFLA_INET_CONF = 1  # in IFLA_AF_SPEC / AF_INET: the interface's IPv4 sysctls, u32 each
# Positions in IFLA_INET_CONF (IPV4_DEVCONF_* of linux/ip.h, counted from 1) of the
# net.ipv4.conf.<dev>.* sysctls netlab reads: one link dump answers them for every
# interface, instead of one /proc/sys file each.
INET_CONF = {"forwarding": 1, "proxy_arp": 3, "rp_filter": 8, "tag": 12, "arp_filter": 13, "arp_announce": 18,
             "arp_ignore": 19, "arp_accept": 21, "arp_notify": 22}
# Those of them a link message may set (link_inet_conf) with the very effect of writing their file: the
# kernel's sysctl handler for them (net/ipv4/devinet.c, devinet_conf_proc) does nothing but store the value and
# mark it set, which is what a link message's IFLA_INET_CONF does (ipv4_devconf_set). Not forwarding (its
# handler also turns LRO off and tells netconf listeners), rp_filter nor proxy_arp (they tell them too).
INET_CONF_SETTABLE = ("arp_filter", "arp_announce", "arp_ignore", "arp_accept", "arp_notify")
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
IFLA_VXLAN_ID, IFLA_VXLAN_GROUP, IFLA_VXLAN_LINK, IFLA_VXLAN_LOCAL, IFLA_VXLAN_TTL, IFLA_VXLAN_TOS = 1, 2, 3, 4, 5, 6
IFLA_VXLAN_LEARNING, IFLA_VXLAN_AGEING, IFLA_VXLAN_PORT = 7, 8, 15
IFLA_VXLAN_PROXY, IFLA_VXLAN_RSC, IFLA_VXLAN_L2MISS, IFLA_VXLAN_L3MISS = 11, 12, 13, 14
IFLA_VXLAN_GBP, IFLA_VXLAN_COLLECT_METADATA, IFLA_VXLAN_TTL_INHERIT, IFLA_VXLAN_DF = 23, 25, 28, 29
IFLA_VXLAN_LIMIT, IFLA_VXLAN_PORT_RANGE, IFLA_VXLAN_UDP_CSUM = 9, 10, 18  # maxaddress, srcport LOW HIGH, udpcsum
# IFLA_BRPORT_* inside an AF_BRIDGE link's IFLA_PROTINFO (linux/if_link.h): a bridge port's STP state (u8,
# BR_STATE_* of linux/if_bridge.h, named as `bridge link` names them) and its hairpin mode (MODE)
IFLA_BRPORT_STATE, IFLA_BRPORT_MODE, IFLA_BRPORT_LEARNING = 1, 4, 8
IFLA_BR_VLAN_FILTERING = 7  # u8 in a bridge's IFLA_INFO_DATA: its ports forward by the VLANs each is a member of
IFLA_VRF_TABLE = 1  # u32 in a vrf's IFLA_INFO_DATA: the routing table its enslaved devices' routes go to
# In an AF_BRIDGE link's IFLA_AF_SPEC (linux/if_bridge.h): a port's VLAN membership, `bridge vlan add ... master`
IFLA_BRIDGE_FLAGS, IFLA_BRIDGE_VLAN_INFO, BRIDGE_FLAGS_MASTER = 0, 2, 1
BRIDGE_VLAN_INFO_PVID, BRIDGE_VLAN_INFO_UNTAGGED = 2, 4
BR_STATES = {0: "disabled", 1: "listening", 2: "learning", 3: "forwarding", 4: "blocking"}
BR_STATE_NUMBERS = {name: number for number, name in BR_STATES.items()}

# IFA_* (linux/if_addr.h)
IFA_ADDRESS, IFA_LOCAL, IFA_LABEL, IFA_BROADCAST, IFA_CACHEINFO, IFA_FLAGS = 1, 2, 3, 4, 6, 8
INFINITY_LIFE_TIME = 0xFFFFFFFF  # an ifa_cacheinfo lifetime (ifa_prefered, ifa_valid) that never runs out: forever
IFA_RT_PRIORITY = 9  # `ip addr add ... metric N`: the metric of the connected route the kernel makes for it
IFA_F_SECONDARY = 0x01  # ifa_flags: an address of a subnet another address of the device holds first
IFA_F_NOPREFIXROUTE = 0x200  # IFA_FLAGS (u32) only: `ip addr add ... noprefixroute`, no connected route for it
# RTA_* (linux/rtnetlink.h)
RTA_DST, RTA_SRC, RTA_IIF, RTA_OIF, RTA_GATEWAY, RTA_PRIORITY, RTA_PREFSRC = 1, 2, 3, 4, 5, 6, 7
RTA_MULTIPATH, RTA_TABLE = 9, 15
RTA_METRICS, RTA_CACHEINFO = 8, 12  # a route's metrics (RTAX_*: plan/route_attrs.py); a cached one's expiry
RTA_IP_PROTO, RTA_SPORT, RTA_DPORT = 27, 28, 29  # route get: the flow's L4 keys, which a multipath hash reads
RTNH_F_ONLINK = 4
# struct rtnexthop (linux/rtnetlink.h), each hop of RTA_MULTIPATH: rtnh_len (u16, with its attributes),
# rtnh_flags (u8), rtnh_hops (u8: weight - 1), rtnh_ifindex (int); its attributes (RTA_GATEWAY) follow it
RTNEXTHOP = struct.Struct("=HBBi")
RTM_F_CLONED = 0x200  # a route cache entry (an exception: a path MTU learned, a redirect), not a FIB route
RTM_F_FIB_MATCH = 0x2000  # route get: answer with the FIB entry that matched, not the resolved route
RT_TABLE_UNSPEC, RT_TABLE_DEFAULT, RT_TABLE_MAIN, RT_TABLE_LOCAL = 0, 253, 254, 255
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK, RT_SCOPE_HOST, RT_SCOPE_NOWHERE = 0, 253, 254, 255
RTPROT_UNSPEC, RTPROT_KERNEL, RTPROT_BOOT, RTPROT_STATIC = 0, 2, 3, 4
RTN_UNICAST, RTN_LOCAL, RTN_BROADCAST, RTN_BLACKHOLE, RTN_UNREACHABLE, RTN_PROHIBIT = 1, 2, 3, 6, 7, 8
# NDA_* (linux/neighbour.h)
NDA_DST, NDA_LLADDR, NDA_MASTER = 1, 2, 9
# A VXLAN FDB entry's remote beside its address, each said only where it is not the device's own (vxlan_fdb_info):
# its UDP port (be16), VNI (u32) and the underlay device it leaves by (u32, `via DEV`)
NDA_PORT, NDA_VNI, NDA_IFINDEX = 6, 7, 8
NDA_CACHEINFO, NDA_PROBES = 3, 4  # nda_cacheinfo: confirmed, used, updated (ages in USER_HZ ticks), refcnt
NUD_INCOMPLETE, NUD_REACHABLE, NUD_STALE, NUD_FAILED, NUD_NOARP, NUD_PERMANENT = 0x01, 0x02, 0x04, 0x20, 0x40, 0x80
NUD_DELAY, NUD_PROBE = 0x08, 0x10
NTF_SELF, NTF_MASTER = 0x02, 0x04
# FRA_* (linux/fib_rules.h)
FRA_DST, FRA_SRC, FRA_IIFNAME, FRA_PRIORITY, FRA_FWMARK, FRA_TABLE, FRA_FWMASK, FRA_OIFNAME = 1, 2, 3, 6, 10, 15, 16, 17
FR_ACT_TO_TBL, FR_ACT_BLACKHOLE, FR_ACT_UNREACHABLE, FR_ACT_PROHIBIT = 1, 6, 7, 8

SCOPES = {"global": RT_SCOPE_UNIVERSE, "universe": RT_SCOPE_UNIVERSE, "link": RT_SCOPE_LINK,
          "host": RT_SCOPE_HOST, "nowhere": RT_SCOPE_NOWHERE}
SCOPE_NAMES = {RT_SCOPE_UNIVERSE: "global", RT_SCOPE_LINK: "link", RT_SCOPE_HOST: "host", 200: "site",
               RT_SCOPE_NOWHERE: "nowhere"}
PROTOS = {"unspec": RTPROT_UNSPEC, "redirect": 1, "kernel": RTPROT_KERNEL, "boot": RTPROT_BOOT,
          "static": RTPROT_STATIC, "dhcp": 16}
PROTO_NAMES = {v: k for k, v in PROTOS.items()}
ROUTE_TYPES = {"unicast": RTN_UNICAST, "local": RTN_LOCAL, "broadcast": RTN_BROADCAST, "anycast": 4,
               "multicast": 5, "blackhole": RTN_BLACKHOLE, "unreachable": RTN_UNREACHABLE,
               "prohibit": RTN_PROHIBIT, "throw": 9, "nat": 10}
ROUTE_TYPE_NAMES = {v: k for k, v in ROUTE_TYPES.items()}
RULE_ACTIONS = {"lookup": FR_ACT_TO_TBL, "goto": 2, "nop": 3, "blackhole": FR_ACT_BLACKHOLE,
                "unreachable": FR_ACT_UNREACHABLE, "prohibit": FR_ACT_PROHIBIT}
RULE_ACTION_NAMES = {v: k for k, v in RULE_ACTIONS.items()}


def _number(names: dict[str, int], value: str) -> int:
    """A name ip(8) prints (``boot``, ``link``) or the number it prints when it has none."""
    return names[value] if value in names else int(value)


def proto_num(name: str) -> int:
    return _number(PROTOS, name)


def scope_num(name: str) -> int:
    return _number(SCOPES, name)


def type_num(name: str) -> int:
    return _number(ROUTE_TYPES, name)


def action_num(name: str) -> int:
    return _number(RULE_ACTIONS, name)

IFINFO = struct.Struct("=BxHiII")  # family, type, index, flags, change
IFADDR = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, proto, scope, type, flags
NDMSG = struct.Struct("=BxxxiHBB")  # family, ifindex, state, flags, type
FIBRULE = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, res1, res2, action, flags


# --- requests -------------------------------------------------------------------


def _ifinfo(index: int, up: bool | None = None, family: int = AF_UNSPEC, flags: tuple[int, int] = (0, 0)) -> bytes:
    """ifinfomsg; ``up`` None leaves the flag alone (change mask 0); ``flags``: other flags' (values, mask)."""
    value, mask = flags
    return IFINFO.pack(family, 0, index, (IFF_UP if up else 0) | value & mask,
                       (IFF_UP if up is not None else 0) | mask)


def _link_common(name: str, address: str | None, mtu: int | None, txqlen: int | None,
                 group: int | None, master: int | None) -> bytes:
    out = string(IFLA_IFNAME, name)
    if address:
        out += mac(IFLA_ADDRESS, address)
    if mtu:
        out += u32(IFLA_MTU, mtu)
    if txqlen is not None:
        out += u32(IFLA_TXQLEN, txqlen)
    if group is not None:
        out += u32(IFLA_GROUP, group)
    if master:
        out += u32(IFLA_MASTER, master)
    return out


def bridge_add(index: int, name: str, address: str | None, mtu: int | None, up: bool = True,
               txqlen: int | None = None, vlan_filtering: bool = False, flags: tuple[int, int] = (0, 0)) -> bytes:
    """``ip link add NAME [index IDX] address MAC mtu MTU up type bridge [vlan_filtering 1]``; ``flags``: link
    flags (values, mask: promisc on ...)."""
    body = _ifinfo(index, up, flags=flags) + _link_common(name, address, mtu, txqlen, None, None)
    data = nested(IFLA_INFO_DATA, u8(IFLA_BR_VLAN_FILTERING, 1)) if vlan_filtering else b""
    body += nested(IFLA_LINKINFO, string(IFLA_INFO_KIND, "bridge"), data)
    return message(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body)


def veth_add(index: int, name: str, address: str | None, mtu: int | None, master: int | None,
             peer_index: int, peer_name: str, peer_address: str | None, peer_netns_fd: int | None,
             up: bool = True, txqlen: int | None = None, group: int | None = None,
             flags: tuple[int, int] = (0, 0)) -> bytes:
    """``ip link add NAME ... type veth peer name PEER netns NS ...``: both ends born in place; ``flags``: this
    end's link flags (values, mask: promisc on ...).

    The peer comes to life down; it is set up from its own namespace.
    """
    peer = _ifinfo(peer_index) + _link_common(peer_name, peer_address, mtu, txqlen, None, None)
    if peer_netns_fd is not None:
        peer += u32(IFLA_NET_NS_FD, peer_netns_fd)
    body = _ifinfo(index, up, flags=flags) + _link_common(name, address, mtu, txqlen, group, master)
    body += nested(IFLA_LINKINFO, string(IFLA_INFO_KIND, "veth"), nested(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer)))
    return message(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body)


def child_add(name: str, kind: str, lower: int | None, data: bytes = b"") -> bytes:
    """``ip link add NAME [link LOWER] type KIND`` (down): a macvlan, ipvlan or vlan on a lower device, an ifb
    alone; ``data``: its IFLA_INFO_DATA (a vlan's id, :func:`vlan_id`). The doctor's throwaway ones."""
    body = _ifinfo(0, False) + string(IFLA_IFNAME, name) + (u32(IFLA_LINK, lower) if lower is not None else b"")
    info = string(IFLA_INFO_KIND, kind) + (nested(IFLA_INFO_DATA, data) if data else b"")
    return message(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body + nested(IFLA_LINKINFO, info))


def vlan_id(vid: int) -> bytes:
    return u16(IFLA_VLAN_ID, vid)


def vrf_table(table: int) -> bytes:
    """A vrf's IFLA_INFO_DATA for :func:`child_add` (``ip link add NAME type vrf table T``)."""
    return u32(IFLA_VRF_TABLE, table)


def port_vlan_add(index: int, vid: int) -> bytes:
    """``bridge vlan add dev PORT vid VID pvid untagged master``: the port's frames without a tag join VLAN
    ``vid``, and leave it untagged (what the bridge CNI plugin sets on a pod's veth for its ``vlan``)."""
    info = attr(IFLA_BRIDGE_VLAN_INFO, struct.pack("=HH", BRIDGE_VLAN_INFO_PVID | BRIDGE_VLAN_INFO_UNTAGGED, vid))
    body = _ifinfo(index, family=AF_BRIDGE) + nested(IFLA_AF_SPEC, u16(IFLA_BRIDGE_FLAGS, BRIDGE_FLAGS_MASTER), info)
    return message(RTM_SETLINK, 0, body)


def link_set(index: int, up: bool | None = None, mtu: int | None = None, address: str | None = None,
             master: int | None = None, txqlen: int | None = None, alias: str | None = None,
             group: int | None = None, flags: tuple[int, int] = (0, 0), info: bytes = b"") -> bytes:
    """``ip link set dev IDX [up|down] [mtu N] [address MAC] [master M | nomaster (0)] [arp off] ...``; ``flags``:
    the IFF_* bits to set among a mask (link_flags); ``info``: an IFLA_LINKINFO whose data the device's kind
    changes in place (``type vxlan ageing N``: rtnl_vxlan.vxlan_change)."""
    body = _ifinfo(index, up, flags=flags)
    if mtu:
        body += u32(IFLA_MTU, mtu)
    if address:
        body += mac(IFLA_ADDRESS, address)
    if master is not None:
        body += u32(IFLA_MASTER, master)
    if txqlen is not None:
        body += u32(IFLA_TXQLEN, txqlen)
    if alias is not None:
        body += string(IFLA_IFALIAS, alias)
    if group is not None:
        body += u32(IFLA_GROUP, group)
    return message(RTM_NEWLINK, 0, body + info)


def link_inet_conf(index: int, settings: dict[str, int]) -> bytes:
    """``sysctl -w net.ipv4.conf.<dev>.<key>=N ...`` for keys of INET_CONF_SETTABLE, as a message of the
    namespace's netlink batch. A link dump carries IFLA_INET_CONF as one array of u32; a link change carries
    it as one nested attribute per setting, typed by its IPV4_DEVCONF_* number (inet_set_link_af)."""
    unsettable = sorted(set(settings) - set(INET_CONF_SETTABLE))
    if unsettable:
        raise ValueError(f"not settable by a link message: {unsettable}")
    conf = b"".join(u32(INET_CONF[key], value) for key, value in settings.items())
    body = _ifinfo(index) + nested(IFLA_AF_SPEC, nested(AF_INET, nested(IFLA_INET_CONF, conf)))
    return message(RTM_NEWLINK, 0, body)


def link_up(index: int, alias: str | None = None) -> bytes:
    """``ip link set dev IDX up [alias ALIAS]``."""
    return link_set(index, up=True, alias=alias)


def link_del(index: int = 0, group: int | None = None) -> bytes:
    """``ip link del dev IDX`` (or ``ip link del group G``: every link of the group at once)."""
    body = _ifinfo(index)
    if group is not None:
        body += u32(IFLA_GROUP, group)
    return message(RTM_DELLINK, 0, body)


def hairpin_set(index: int, on: bool = True) -> bytes:
    """``bridge link set dev IDX hairpin on|off``. IFLA_PROTINFO must carry NLA_F_NESTED, or
    the bridge reads it as the old one-byte STP state."""
    body = _ifinfo(index, family=AF_BRIDGE) + nested(IFLA_PROTINFO, u8(IFLA_BRPORT_MODE, int(on)))
    return message(RTM_SETLINK, 0, body)


def port_state_set(index: int, state: str) -> bytes:
    """``bridge link set dev IDX state STATE``: a bridge port's STP state, nested in IFLA_PROTINFO as for
    hairpin. The kernel takes it only from a port that is up with carrier (else ENETDOWN, but for
    ``disabled`` on a port without carrier); with STP off it turns ``blocking`` into ``forwarding`` at once."""
    body = _ifinfo(index, family=AF_BRIDGE) + nested(IFLA_PROTINFO, u8(IFLA_BRPORT_STATE, BR_STATE_NUMBERS[state]))
    return message(RTM_SETLINK, 0, body)


def addr_add(index: int, address: str, prefixlen: int, broadcast: str | None = None, scope: int = RT_SCOPE_UNIVERSE,
             metric: int = 0, flags: int = 0, lifetimes: tuple[int, int] | None = None, replace: bool = False) -> bytes:
    """``ip addr add|replace ADDRESS/PREFIX [brd B] [scope S] [metric M] dev IDX [noprefixroute] [valid_lft V
    preferred_lft P]`` (``lifetimes``: (valid, preferred) seconds, INFINITY_LIFE_TIME forever; None: forever). The
    kernel's replace of an address there sets its metric and lifetimes in place, not its flags."""
    body = IFADDR.pack(AF_INET, prefixlen, 0, scope, index) + ipv4(IFA_LOCAL, address) + ipv4(IFA_ADDRESS, address)
    body += (ipv4(IFA_BROADCAST, broadcast) if broadcast else b"") + (u32(IFA_RT_PRIORITY, metric) if metric else b"")
    body += (u32(IFA_FLAGS, flags) if flags else b"") + (attr(IFA_CACHEINFO, struct.pack(
        "=IIII", lifetimes[1], lifetimes[0], 0, 0)) if lifetimes else b"")
    return message(RTM_NEWADDR, NLM_F_CREATE | (NLM_F_REPLACE if replace else NLM_F_EXCL), body)


def addr_del(index: int, address: str, prefixlen: int) -> bytes:
    """``ip addr del ADDRESS/PREFIX dev IDX``."""
    body = IFADDR.pack(AF_INET, prefixlen, 0, 0, index) + ipv4(IFA_LOCAL, address) + ipv4(IFA_ADDRESS, address)
    return message(RTM_DELADDR, 0, body)


def _rtmsg(dst_len: int, table: int, proto: int, scope: int, rtype: int, flags: int, tos: int = 0) -> bytes:
    # Tables above 255 only fit RTA_TABLE; the header then says RT_TABLE_UNSPEC.
    return RTMSG.pack(AF_INET, dst_len, 0, tos, table if table < 256 else RT_TABLE_UNSPEC, proto, scope, rtype, flags)


def multipath(hops: list[tuple[str, int]]) -> bytes:
    """RTA_MULTIPATH of ``ip route ... nexthop via GW dev IDX nexthop ...``: each (gateway, oif) one rtnexthop of
    weight 1, its RTA_GATEWAY after it."""
    out = b""
    for gateway, oif in hops:
        gw = ipv4(RTA_GATEWAY, gateway)
        out += RTNEXTHOP.pack(RTNEXTHOP.size + len(gw), 0, 0, oif) + gw
    return attr(RTA_MULTIPATH, out)


def route_replace(dst: str, dst_len: int, oif: int | None, gateway: str | None, onlink: bool = False,
                  table: int = RT_TABLE_MAIN, proto: int = RTPROT_BOOT, scope: int = RT_SCOPE_UNIVERSE,
                  rtype: int = RTN_UNICAST, priority: int | None = None, prefsrc: str | None = None,
                  nexthops: list[tuple[str, int]] | None = None, metrics: Metrics = (), tos: int = 0,
                  append: bool = False) -> bytes:
    """``ip route replace DST [tos T] [via GW] dev IDX [onlink] [proto P] [scope S] [metric M] [table T] [src S]
    [mtu [lock] N ...]``; with ``nexthops`` (gateway, oif), ``ip route replace DST nexthop via GW dev IDX
    nexthop ...`` instead of one gateway and device: an equal-cost multipath route. ``metrics``: RTA_METRICS's
    (RTAX, value) pairs (plan/route_attrs.py); a replace without them leaves the route none. ``append``: ``ip route
    append``, beside the routes of the same prefix, tos and metric (a replace takes the place of the first of them,
    through whichever device: a connected route of the prefix's other device, kept apart, diff.py)."""
    body = _rtmsg(dst_len, table, proto, scope, rtype, RTNH_F_ONLINK if onlink else 0, tos)
    if dst_len:
        body += ipv4(RTA_DST, dst)
    if nexthops:
        body += multipath(nexthops)
    if oif and not nexthops:
        body += u32(RTA_OIF, oif)
    if gateway and not nexthops:
        body += ipv4(RTA_GATEWAY, gateway)
    if priority:
        body += u32(RTA_PRIORITY, priority)
    if prefsrc:
        body += ipv4(RTA_PREFSRC, prefsrc)
    if metrics:
        # as iproute2 sends it: the metrics' attributes inside, without NLA_F_NESTED
        body += attr(RTA_METRICS, b"".join(string(k, v) if isinstance(v, str) else u32(k, v) for k, v in metrics))
    body += u32(RTA_TABLE, table)
    return message(RTM_NEWROUTE, NLM_F_CREATE | (NLM_F_APPEND if append else NLM_F_REPLACE), body)


def route_del(dst: str, dst_len: int, table: int, proto: int, scope: int, rtype: int,
              priority: int | None = None, tos: int = 0, oif: int | None = None) -> bytes:
    """``ip route del DST table T proto P scope S metric M type T [dev IDX]``: exactly one route.

    The kernel matches a deletion against the table, prefix, tos and priority,
    and against the type, scope and protocol when they are given; a request
    that says less (scope universe for a scope link route) finds nothing. With
    ``oif``, only the route through that device (of two connected routes of
    one prefix on two devices: the other one stays).
    """
    body = RTMSG.pack(AF_INET, dst_len, 0, tos, table if table < 256 else RT_TABLE_UNSPEC, proto, scope, rtype, 0)
    if dst_len:
        body += ipv4(RTA_DST, dst)
    if priority:
        body += u32(RTA_PRIORITY, priority)
    if oif:
        body += u32(RTA_OIF, oif)
    body += u32(RTA_TABLE, table)
    return message(RTM_DELROUTE, 0, body)


def neigh_replace(index: int, dst: str, lladdr: str, state: int = NUD_PERMANENT, flags: int = 0) -> bytes:
    """``ip neigh replace DST lladdr MAC dev IDX nud permanent [extern_learn]`` (``flags``: ndm_flags)."""
    body = NDMSG.pack(AF_INET, index, state, flags, 0) + ipv4(NDA_DST, dst) + mac(NDA_LLADDR, lladdr)
    return message(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, body)


def neigh_add(index: int, dst: str, lladdr: str, state: int = NUD_PERMANENT) -> bytes:
    """``ip neigh add DST lladdr MAC dev IDX nud permanent``: refused if an entry exists."""
    body = NDMSG.pack(AF_INET, index, state, 0, 0) + ipv4(NDA_DST, dst) + mac(NDA_LLADDR, lladdr)
    return message(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_EXCL, body)


def neigh_del(index: int, dst: str) -> bytes:
    """``ip neigh del DST dev IDX``."""
    return message(RTM_DELNEIGH, 0, NDMSG.pack(AF_INET, index, 0, 0, 0) + ipv4(NDA_DST, dst))


def _rule_body(priority: int, table: int, action: int, src: str | None, src_len: int, dst: str | None,
               dst_len: int, iif: str | None, oif: str | None, fwmark: int | None, fwmask: int | None,
               tos: int) -> bytes:
    # An IPv6 address in the selectors makes it an IPv6 rule (``ip -6 rule``: the kernel's other rule list)
    v6 = ":" in f"{src or ''}{dst or ''}"
    address = ipv6 if v6 else ipv4
    body = FIBRULE.pack(socket.AF_INET6 if v6 else AF_INET, dst_len, src_len, tos,
                        table if table < 256 else RT_TABLE_UNSPEC, 0, 0, action, 0)
    body += u32(FRA_PRIORITY, priority)
    if table:
        body += u32(FRA_TABLE, table)
    if src_len:
        body += address(FRA_SRC, src)
    if dst_len:
        body += address(FRA_DST, dst)
    if iif:
        body += string(FRA_IIFNAME, iif)
    if oif:
        body += string(FRA_OIFNAME, oif)
    if fwmark is not None:
        body += u32(FRA_FWMARK, fwmark)
    if fwmask is not None:
        body += u32(FRA_FWMASK, fwmask)
    return body


def rule_add(priority: int, table: int, action: int = FR_ACT_TO_TBL, src: str | None = None, src_len: int = 0,
             dst: str | None = None, dst_len: int = 0, iif: str | None = None, oif: str | None = None,
             fwmark: int | None = None, fwmask: int | None = None, tos: int = 0) -> bytes:
    """``ip rule add pref P [from S] [to D] [iif I] [oif O] [fwmark M/K] lookup T``."""
    body = _rule_body(priority, table, action, src, src_len, dst, dst_len, iif, oif, fwmark, fwmask, tos)
    return message(RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, body)


def rule_del(priority: int, table: int, action: int = FR_ACT_TO_TBL, src: str | None = None, src_len: int = 0,
             dst: str | None = None, dst_len: int = 0, iif: str | None = None, oif: str | None = None,
             fwmark: int | None = None, fwmask: int | None = None, tos: int = 0) -> bytes:
    """``ip rule del pref P ...``: the rule with exactly these selectors."""
    body = _rule_body(priority, table, action, src, src_len, dst, dst_len, iif, oif, fwmark, fwmask, tos)
    return message(RTM_DELRULE, 0, body)


# dump requests (Conn.dump adds NLM_F_DUMP)

def link_dump(family: int = AF_UNSPEC) -> bytes:
    return message(RTM_GETLINK, 0, _ifinfo(0, family=family))


def route_get(dst: str, src: str | None = None, iif: int | None = None, fib_match: bool = False,
              l4: tuple[int, int, int] | None = None) -> bytes:
    """``ip route get DST [from SRC] [iif IDX] [fibmatch] [ipproto P sport S dport D]``: the kernel's decision for
    that very packet. ``l4`` (protocol number, source port, destination port): the flow's keys, which the kernel
    builds a packet of (inet_rtm_getroute_build_skb) for a multipath route's L4 hash to pick its hop by.

    Answered by one RTM_NEWROUTE. Without ``fib_match`` it is the route the
    packet takes (type, output device, gateway, preferred source), as if the
    packet came in on ``iif`` from ``SRC``; with it (RTM_F_FIB_MATCH), the
    routing table entry that matched. Destination and source are whole
    addresses (/32), as ``ip route get`` and pyroute2 send them.
    """
    body = RTMSG.pack(AF_INET, 32, 32 if src else 0, 0, RT_TABLE_MAIN, RTPROT_UNSPEC, RT_SCOPE_UNIVERSE, 0,
                      RTM_F_FIB_MATCH if fib_match else 0)
    body += ipv4(RTA_DST, dst)
    if src:
        body += ipv4(RTA_SRC, src)
    if iif is not None:
        body += u32(RTA_IIF, iif)
    if l4 is not None:
        body += u8(RTA_IP_PROTO, l4[0]) + be16(RTA_SPORT, l4[1]) + be16(RTA_DPORT, l4[2])
    return message(RTM_GETROUTE, 0, body)


def link_get(index: int) -> bytes:
    """``ip link show dev IDX``: answered by one RTM_NEWLINK."""
    return message(RTM_GETLINK, 0, _ifinfo(index))


def addr_dump() -> bytes:
    return message(RTM_GETADDR, 0, IFADDR.pack(AF_INET, 0, 0, 0, 0))


def route_dump() -> bytes:
    return message(RTM_GETROUTE, 0, RTMSG.pack(AF_INET, 0, 0, 0, 0, 0, 0, 0, 0))


def neigh_dump(family: int = AF_INET) -> bytes:
    return message(RTM_GETNEIGH, 0, NDMSG.pack(family, 0, 0, 0, 0))


def rule_dump() -> bytes:
    return message(RTM_GETRULE, 0, FIBRULE.pack(AF_INET, 0, 0, 0, 0, 0, 0, 0, 0))


def qdisc_dump() -> bytes:
    return message(RTM_GETQDISC, 0, TCMSG.pack(0, 0, 0, 0, 0))


def filter_dump(index: int, parent: int) -> bytes:
    """``tc filter show dev IDX parent P``."""
    return message(RTM_GETTFILTER, 0, TCMSG.pack(0, index, 0, parent, 0))
