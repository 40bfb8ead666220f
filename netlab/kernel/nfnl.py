"""nfnetlink: the netfilter families of netlink (nf_tables, conntrack), on the same wire codec.

Only what netlab asks: the list of nf_tables tables in a namespace (so a
namespace with no rules at all is known without running ``iptables-save``),
the base chains of iptables-nft's tables (which ``iptables-save`` prints
whether they exist or not),
conntrack deletions (the prober's clean-up), and a dump of the conntrack
table's tuples (stale Service entries, services/stale.py).
"""

from __future__ import annotations

import socket
import struct
from typing import Sequence

from netlab.kernel.netlink import Conn, Msg, NetlinkError, attr, attrs, get_str, message, nested

NFNL_SUBSYS_CTNETLINK, NFNL_SUBSYS_NFTABLES = 1, 10
NFT_MSG_GETTABLE, NFT_MSG_GETCHAIN = 1, 4
NFTA_TABLE_NAME = 1
NFTA_CHAIN_TABLE, NFTA_CHAIN_NAME, NFTA_CHAIN_HOOK = 1, 3, 4
IPCTNL_MSG_CT_GET, IPCTNL_MSG_CT_DELETE = 1, 2
NFGENMSG = struct.Struct("=BBH")  # family, version, res_id (big-endian on the wire; 0 here)
NFNETLINK_V0 = 0
IPTABLES_TABLES = ("filter", "nat", "mangle", "raw", "security")  # iptables-nft's, in family ip
FAMILIES = {1: "inet", 2: "ip", 3: "arp", 5: "netdev", 7: "bridge", 10: "ip6"}

# linux/netfilter/nfnetlink_conntrack.h
CTA_TUPLE_ORIG, CTA_TUPLE_REPLY, CTA_TUPLE_IP, CTA_TUPLE_PROTO = 1, 2, 1, 2
CTA_IP_V4_SRC, CTA_IP_V4_DST = 1, 2
CTA_PROTO_NUM, CTA_PROTO_SRC_PORT, CTA_PROTO_DST_PORT = 1, 2, 3


def table_dump() -> bytes:
    """``nft list tables``: every table of every family."""
    return message(NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETTABLE, 0, NFGENMSG.pack(0, NFNETLINK_V0, 0))


def nft_tables(conn: Conn, what: str) -> list[tuple[str, str]]:
    """(family, name) of the nf_tables tables in the socket's namespace; [] without nf_tables."""
    try:
        msgs = conn.dump(what, table_dump())
    except NetlinkError:
        return []
    out = []
    for m in msgs:
        family = NFGENMSG.unpack_from(m.body)[0]
        out.append((FAMILIES.get(family, str(family)), get_str(attrs(m.body, NFGENMSG.size), NFTA_TABLE_NAME) or ""))
    return out


def base_chains(conn: Conn, what: str, tables: Sequence[str]) -> list[tuple[str, str]]:
    """(table, chain) of the base chains (hooked into netfilter) of the socket's namespace's ``ip`` tables named
    ``tables`` (iptables-nft's: it makes a built-in chain only when a rule or declaration names it, and never
    deletes one); [] without nf_tables."""
    try:
        msgs = conn.dump(what, message(NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETCHAIN, 0,
                                       NFGENMSG.pack(socket.AF_INET, NFNETLINK_V0, 0)))
    except NetlinkError:
        return []
    out = []
    for m in msgs:
        a = attrs(m.body, NFGENMSG.size)
        table, chain = get_str(a, NFTA_CHAIN_TABLE) or "", get_str(a, NFTA_CHAIN_NAME) or ""
        if NFTA_CHAIN_HOOK in a and table in tables:
            out.append((table, chain))
    return out


def ct_delete(src: str, dst: str, proto: int, sport: int, dport: int) -> bytes:
    """``conntrack -D -s SRC -d DST -p PROTO --sport S --dport D``: one entry, by its original tuple."""
    ip = attr(CTA_IP_V4_SRC, socket.inet_aton(src)) + attr(CTA_IP_V4_DST, socket.inet_aton(dst))
    ports = (attr(CTA_PROTO_NUM, struct.pack("B", proto)) + attr(CTA_PROTO_SRC_PORT, struct.pack("!H", sport))
             + attr(CTA_PROTO_DST_PORT, struct.pack("!H", dport)))
    tup = nested(CTA_TUPLE_IP, ip) + nested(CTA_TUPLE_PROTO, ports)
    body = NFGENMSG.pack(socket.AF_INET, NFNETLINK_V0, 0) + nested(CTA_TUPLE_ORIG, tup)
    return message(NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_DELETE, 0, body)


def ct_dump() -> bytes:
    """``conntrack -L`` (IPv4): every entry of the socket's namespace."""
    return message(NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_GET, 0, NFGENMSG.pack(socket.AF_INET, NFNETLINK_V0, 0))


def ct_tuples(m: Msg) -> tuple[int, dict[str, str], dict[str, str]] | None:
    """An entry's protocol number and its original and reply tuples (src, dst, sport, dport), as text."""
    a = attrs(m.body, NFGENMSG.size)
    orig, reply = _tuple(a.get(CTA_TUPLE_ORIG)), _tuple(a.get(CTA_TUPLE_REPLY))
    if orig is None or reply is None:
        return None
    return orig[0], orig[1], reply[1]


def _tuple(data: bytes | None) -> tuple[int, dict[str, str]] | None:
    if data is None:
        return None
    t = attrs(data)
    ip, proto = attrs(t.get(CTA_TUPLE_IP, b"")), attrs(t.get(CTA_TUPLE_PROTO, b""))
    src, dst, num = ip.get(CTA_IP_V4_SRC), ip.get(CTA_IP_V4_DST), proto.get(CTA_PROTO_NUM)
    sport, dport = proto.get(CTA_PROTO_SRC_PORT), proto.get(CTA_PROTO_DST_PORT)
    if not (src and dst and num and sport and dport):  # IPv6, or a protocol without ports
        return None
    return num[0], {"src": socket.inet_ntoa(src), "dst": socket.inet_ntoa(dst),
                    "sport": str(struct.unpack("!H", sport)[0]), "dport": str(struct.unpack("!H", dport)[0])}
