"""The few rtnetlink requests a fresh lab is made of, encoded with ``struct``.

Why not pyroute2's encoder: it costs ~0.4 ms a message here (generic NLA
machinery), which for a 500-pod lab is more than the kernel's own work.
These are the same requests ``ip``/``bridge`` send, for the objects in
``plan/resources.py`` only; everything else (dumps, lookups, repairs) goes
through pyroute2. ``tests/unit/test_nlmsg.py`` decodes every message here
with pyroute2's parser and checks each field.

A message is ``nlmsghdr`` + a fixed header (ifinfomsg, ifaddrmsg, rtmsg,
ndmsg) + attributes (type-length-value, padded to 4 bytes).
"""

from __future__ import annotations

import socket
import struct

# nlmsghdr flags and rtnetlink message types (linux/netlink.h, linux/rtnetlink.h)
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLMSG_ERROR = 2
RTM_GETLINK = 18
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE, NLM_F_APPEND = 0x100, 0x200, 0x400, 0x800
RTM_NEWLINK, RTM_SETLINK, RTM_NEWADDR, RTM_NEWROUTE, RTM_NEWNEIGH, RTM_DELNEIGH = 16, 19, 20, 24, 28, 29
NLA_F_NESTED = 0x8000

AF_INET, AF_BRIDGE = socket.AF_INET, 7
IFF_UP = 0x1
# IFLA_* (linux/if_link.h)
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER, IFLA_PROTINFO = 1, 3, 4, 10, 12
IFLA_LINKINFO, IFLA_IFALIAS, IFLA_GROUP, IFLA_NET_NS_FD = 18, 20, 27, 28
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
IFLA_VXLAN_ID, IFLA_VXLAN_LINK, IFLA_VXLAN_LOCAL, IFLA_VXLAN_LEARNING, IFLA_VXLAN_PORT = 1, 3, 4, 7, 15
IFLA_BRPORT_MODE = 4  # hairpin
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_TABLE = 1, 4, 5, 15
RTPROT_STATIC, RT_SCOPE_UNIVERSE, RTN_UNICAST, RTNH_F_ONLINK = 4, 0, 1, 4
NDA_DST, NDA_LLADDR = 1, 2
NUD_PERMANENT, NTF_SELF = 0x80, 0x2

_HDR = struct.Struct("=IHHII")
_IFINFO = struct.Struct("=BxHiII")
_IFADDR = struct.Struct("=BBBBI")
_RTMSG = struct.Struct("=BBBBBBBBI")
_NDMSG = struct.Struct("=BxxxiHBB")


def attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def nested(kind: int, *attrs: bytes) -> bytes:
    return attr(kind, b"".join(attrs))


def u8(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=B", value))


def u32(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=I", value))


def be16(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("!H", value))


def string(kind: int, value: str) -> bytes:
    return attr(kind, value.encode() + b"\0")


def mac(kind: int, value: str) -> bytes:
    return attr(kind, bytes.fromhex(value.replace(":", "")))


def ipv4(kind: int, value: str) -> bytes:
    return attr(kind, socket.inet_aton(value))


def message(mtype: int, flags: int, seq: int, body: bytes, ack: bool = True) -> bytes:
    """A request; ``ack=False`` for bulk work where only errors are answered."""
    return _HDR.pack(16 + len(body), mtype, NLM_F_REQUEST | (NLM_F_ACK if ack else 0) | flags, seq, 0) + body


def ifinfo(index: int, up: bool = False, family: int = 0) -> bytes:
    return _IFINFO.pack(family, 0, index, IFF_UP if up else 0, IFF_UP if up else 0)


# --- requests -----------------------------------------------------------------


def link_up(seq: int, index: int, alias: str | None = None) -> bytes:
    """``ip link set dev IDX up [alias ALIAS]``."""
    attrs = string(IFLA_IFALIAS, alias) if alias is not None else b""
    return message(RTM_NEWLINK, 0, seq, ifinfo(index, up=True) + attrs)


def bridge_add(seq: int, index: int, name: str, address: str, mtu: int) -> bytes:
    """``ip link add NAME index IDX address MAC mtu MTU up type bridge``."""
    body = ifinfo(index, up=True) + string(IFLA_IFNAME, name) + mac(IFLA_ADDRESS, address) + u32(IFLA_MTU, mtu)
    body += nested(IFLA_LINKINFO, string(IFLA_INFO_KIND, "bridge"))
    return message(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, seq, body)


def veth_add(seq: int, index: int, name: str, address: str, mtu: int, group: int, master: int | None,
             peer_index: int, peer_name: str, peer_address: str, peer_netns_fd: int) -> bytes:
    """``ip link add NAME ... type veth peer name PEER netns NS ...``: both ends born in place."""
    peer = ifinfo(peer_index) + string(IFLA_IFNAME, peer_name) + mac(IFLA_ADDRESS, peer_address)
    peer += u32(IFLA_MTU, mtu) + u32(IFLA_NET_NS_FD, peer_netns_fd)
    body = ifinfo(index, up=True) + string(IFLA_IFNAME, name) + mac(IFLA_ADDRESS, address) + u32(IFLA_MTU, mtu)
    body += u32(IFLA_GROUP, group)
    if master is not None:
        body += u32(IFLA_MASTER, master)
    body += nested(IFLA_LINKINFO, string(IFLA_INFO_KIND, "veth"),
                   nested(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer)))
    return message(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, seq, body)


def vxlan_add(seq: int, index: int, name: str, address: str, mtu: int, vni: int, local: str, port: int,
              link: int) -> bytes:
    """``ip link add flannel.1 type vxlan id VNI local IP dev eth0 dstport PORT nolearning``."""
    body = ifinfo(index, up=True) + string(IFLA_IFNAME, name) + mac(IFLA_ADDRESS, address) + u32(IFLA_MTU, mtu)
    data = u32(IFLA_VXLAN_ID, vni) + u32(IFLA_VXLAN_LINK, link) + ipv4(IFLA_VXLAN_LOCAL, local)
    data += u8(IFLA_VXLAN_LEARNING, 0) + be16(IFLA_VXLAN_PORT, port)
    body += nested(IFLA_LINKINFO, string(IFLA_INFO_KIND, "vxlan"), nested(IFLA_INFO_DATA, data))
    return message(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, seq, body)


def hairpin_on(seq: int, index: int) -> bytes:
    """``bridge link set dev IDX hairpin on``. IFLA_PROTINFO must carry NLA_F_NESTED, or the
    bridge reads it as the old one-byte STP state."""
    body = ifinfo(index, family=AF_BRIDGE) + attr(IFLA_PROTINFO | NLA_F_NESTED, u8(IFLA_BRPORT_MODE, 1))
    return message(RTM_SETLINK, 0, seq, body)


def addr_add(seq: int, index: int, address: str, prefixlen: int) -> bytes:
    """``ip addr add ADDRESS/PREFIX dev IDX``."""
    body = _IFADDR.pack(AF_INET, prefixlen, 0, RT_SCOPE_UNIVERSE, index)
    body += ipv4(IFA_LOCAL, address) + ipv4(IFA_ADDRESS, address)
    return message(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, seq, body)


def route_replace(seq: int, dst: str, dst_len: int, oif: int, gateway: str | None, onlink: bool,
                  table: int = 254) -> bytes:
    """``ip route replace DST [via GW] dev IDX [onlink] proto static``."""
    body = _RTMSG.pack(AF_INET, dst_len, 0, 0, table, RTPROT_STATIC, RT_SCOPE_UNIVERSE, RTN_UNICAST,
                       RTNH_F_ONLINK if onlink else 0)
    if dst_len:
        body += ipv4(RTA_DST, dst)
    body += u32(RTA_OIF, oif)
    if gateway:
        body += ipv4(RTA_GATEWAY, gateway)
    body += u32(RTA_TABLE, table)
    return message(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, seq, body)


def neigh_replace(seq: int, index: int, dst: str, lladdr: str) -> bytes:
    """``ip neigh replace DST lladdr MAC dev IDX nud permanent``."""
    body = _NDMSG.pack(AF_INET, index, NUD_PERMANENT, 0, 0) + ipv4(NDA_DST, dst) + mac(NDA_LLADDR, lladdr)
    return message(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, seq, body)


def neigh_add_permanent(seq: int, index: int, dst: str, lladdr: str) -> bytes:
    """``ip neigh add DST lladdr MAC dev IDX nud permanent``, refused if an entry exists; no ACK."""
    body = _NDMSG.pack(AF_INET, index, NUD_PERMANENT, 0, 0) + ipv4(NDA_DST, dst) + mac(NDA_LLADDR, lladdr)
    return message(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_EXCL, seq, body, ack=False)


def neigh_delete(seq: int, index: int, dst: str) -> bytes:
    """``ip neigh del DST dev IDX``; no ACK (the kernel answers only on error)."""
    return message(RTM_DELNEIGH, 0, seq, _NDMSG.pack(AF_INET, index, 0, 0, 0) + ipv4(NDA_DST, dst), ack=False)


def fdb_append(seq: int, index: int, lladdr: str, dst: str) -> bytes:
    """``bridge fdb append MAC dev IDX dst IP self permanent``."""
    body = _NDMSG.pack(AF_BRIDGE, index, NUD_PERMANENT, NTF_SELF, 0) + mac(NDA_LLADDR, lladdr) + ipv4(NDA_DST, dst)
    return message(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_APPEND, seq, body)


def link_get(seq: int, index: int) -> bytes:
    """``ip link show dev IDX`` (one RTM_GETLINK, answered by one RTM_NEWLINK)."""
    return _HDR.pack(32, RTM_GETLINK, NLM_F_REQUEST, seq, 0) + ifinfo(index)


def link_alias(answer: bytes) -> str | None:
    """IFLA_IFALIAS of an RTM_NEWLINK answer (None for an error or no alias)."""
    length, mtype, _, _, _ = _HDR.unpack_from(answer)
    if mtype != RTM_NEWLINK:
        return None
    off = 16 + _IFINFO.size
    while off + 4 <= min(length, len(answer)):
        alen, kind = struct.unpack_from("=HH", answer, off)
        if alen < 4:
            break
        if kind & ~NLA_F_NESTED == IFLA_IFALIAS:
            return answer[off + 4:off + alen].rstrip(b"\0").decode(errors="replace")
        off += (alen + 3) & ~3
    return None
