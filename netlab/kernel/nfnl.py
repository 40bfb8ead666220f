"""nfnetlink: the netfilter families of netlink (nf_tables, conntrack), on the same wire codec.

Only what netlab asks: the list of nf_tables tables in a namespace (so a
namespace with no rules at all is known without running ``iptables-save``),
the base chains of iptables-nft's tables (which ``iptables-save`` prints
whether they exist or not),
conntrack's entries made (IPCTNL_MSG_CT_NEW: ``break conntrack-stale-entry``'s,
:func:`ct_new`) and deleted by original tuple (the prober's clean-up, ``up``'s
stale UDP entries matched by :mod:`netlab.kernel.ctfilter`), and a dump of the conntrack
table (IPCTNL_MSG_CT_GET), decoded into :class:`CtRecord`: what ``conntrack -L``
prints of each entry, and its line as that program prints it (:meth:`CtRecord.text`),
so that trace, inspect and the stale-entry check need no conntrack program.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from typing import Mapping, Sequence

from netlab.kernel.netlink import NLM_F_CREATE, NLM_F_EXCL, Conn, Msg, NetlinkError, attr, attrs, get_str, message, \
    nested

NFNL_SUBSYS_CTNETLINK, NFNL_SUBSYS_NFTABLES = 1, 10
NFT_MSG_GETTABLE, NFT_MSG_GETCHAIN = 1, 4
NFTA_TABLE_NAME = 1
NFTA_CHAIN_TABLE, NFTA_CHAIN_NAME, NFTA_CHAIN_HOOK = 1, 3, 4
IPCTNL_MSG_CT_NEW, IPCTNL_MSG_CT_GET, IPCTNL_MSG_CT_DELETE = 0, 1, 2
NFGENMSG = struct.Struct("=BBH")  # family, version, res_id (big-endian on the wire; 0 here)
NFNETLINK_V0 = 0
IPTABLES_TABLES = ("filter", "nat", "mangle", "raw", "security")  # iptables-nft's, in family ip
FAMILIES = {1: "inet", 2: "ip", 3: "arp", 5: "netdev", 7: "bridge", 10: "ip6"}

# linux/netfilter/nfnetlink_conntrack.h
CTA_TUPLE_ORIG, CTA_TUPLE_REPLY, CTA_TUPLE_IP, CTA_TUPLE_PROTO = 1, 2, 1, 2
CTA_IP_V4_SRC, CTA_IP_V4_DST = 1, 2
CTA_PROTO_NUM, CTA_PROTO_SRC_PORT, CTA_PROTO_DST_PORT = 1, 2, 3
CTA_PROTO_ICMP_ID, CTA_PROTO_ICMP_TYPE, CTA_PROTO_ICMP_CODE = 4, 5, 6
CTA_TUPLE_ZONE = 3
CTA_STATUS, CTA_PROTOINFO, CTA_TIMEOUT, CTA_MARK, CTA_USE, CTA_ID, CTA_ZONE = 3, 4, 7, 8, 11, 12, 18
CTA_PROTOINFO_TCP, CTA_PROTOINFO_DCCP, CTA_PROTOINFO_SCTP = 1, 2, 3  # enum ctattr_protoinfo
CTA_PROTOINFO_TCP_STATE = CTA_PROTOINFO_DCCP_STATE = CTA_PROTOINFO_SCTP_STATE = 1  # each nest's first attribute
CTA_NAT_DST, CTA_NAT_V4_MINIP, CTA_NAT_V4_MAXIP, CTA_NAT_PROTO = 13, 1, 2, 3
CTA_PROTONAT_PORT_MIN, CTA_PROTONAT_PORT_MAX = 1, 2
# linux/netfilter/nf_conntrack_common.h: enum ip_conntrack_status
IPS_SEEN_REPLY, IPS_ASSURED, IPS_CONFIRMED, IPS_DST_NAT_DONE = 1 << 1, 1 << 2, 1 << 3, 1 << 8
IPS_OFFLOAD, IPS_HW_OFFLOAD = 1 << 14, 1 << 15
STATUS_BITS = {0: "EXPECTED", 1: "SEEN_REPLY", 2: "ASSURED", 3: "CONFIRMED", 4: "SRC_NAT", 5: "DST_NAT",
               6: "SEQ_ADJUST", 7: "SRC_NAT_DONE", 8: "DST_NAT_DONE", 9: "DYING", 10: "FIXED_TIMEOUT",
               11: "TEMPLATE", 12: "UNTRACKED", 13: "HELPER", 14: "OFFLOAD", 15: "HW_OFFLOAD"}
# The names conntrack(8) prints (libnetfilter_conntrack's), by IP protocol number; the states of enum
# tcp_conntrack, sctp_conntrack and ct_dccp_states by number (src/conntrack/snprintf.c: one out of range is NONE).
PROTO_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 33: "dccp", 47: "gre", 58: "icmpv6", 132: "sctp", 136: "udplite"}
TCP_STATES = ("NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT",
              "CLOSE", "SYN_SENT2")
SCTP_STATES = ("NONE", "CLOSED", "COOKIE_WAIT", "COOKIE_ECHOED", "ESTABLISHED", "SHUTDOWN_SENT", "SHUTDOWN_RECD",
               "SHUTDOWN_ACK_SENT", "HEARTBEAT_SENT", "HEARTBEAT_ACKED")
DCCP_STATES = ("NONE", "REQUEST", "RESPOND", "PARTOPEN", "OPEN", "CLOSEREQ", "CLOSING", "TIMEWAIT", "IGNORE",
               "INVALID")
PROTOINFO_STATES = ((CTA_PROTOINFO_TCP, CTA_PROTOINFO_TCP_STATE, TCP_STATES),
                    (CTA_PROTOINFO_SCTP, CTA_PROTOINFO_SCTP_STATE, SCTP_STATES),
                    (CTA_PROTOINFO_DCCP, CTA_PROTOINFO_DCCP_STATE, DCCP_STATES))


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


def ct_tuple(src: str, dst: str, proto: int, sport: int, dport: int) -> bytes:
    """A tuple's attributes (CTA_TUPLE_IP, CTA_TUPLE_PROTO), as libnetfilter_conntrack lays them out."""
    ip = attr(CTA_IP_V4_SRC, socket.inet_aton(src)) + attr(CTA_IP_V4_DST, socket.inet_aton(dst))
    ports = (attr(CTA_PROTO_NUM, struct.pack("B", proto)) + attr(CTA_PROTO_SRC_PORT, struct.pack("!H", sport))
             + attr(CTA_PROTO_DST_PORT, struct.pack("!H", dport)))
    return nested(CTA_TUPLE_IP, ip) + nested(CTA_TUPLE_PROTO, ports)


def ct_delete(src: str, dst: str, proto: int, sport: int, dport: int, ct_id: int | None = None) -> bytes:
    """``conntrack -D -s SRC -d DST -p PROTO --sport S --dport D``: one entry, by its original tuple. With
    ``ct_id`` (CTA_ID, the entry's id as a dump gave it) the kernel deletes it only if the entry of that tuple is
    still that one (ENOENT otherwise: it went, and another flow of the same tuple may have taken its place)."""
    body = NFGENMSG.pack(socket.AF_INET, NFNETLINK_V0, 0) + nested(CTA_TUPLE_ORIG, ct_tuple(src, dst, proto, sport,
                                                                                             dport))
    if ct_id is not None:
        body += attr(CTA_ID, struct.pack("!I", ct_id))
    return message(NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_DELETE, 0, body)


def ct_new(src: str, dst: str, proto: int, sport: int, dport: int, timeout: int,
           dnat: tuple[str, int] | None = None, status: int = 0) -> bytes:
    """``conntrack -I -p PROTO -s SRC -d DST --sport S --dport D -t TIMEOUT [--dst-nat TO:PORT] [-u STATUS]``, as
    conntrack(8) sends it: the original tuple, the reply tuple its exact inverse (the kernel's NAT setup then
    rewrites it, as the nat table's DNAT would have), the timeout, with ``dnat`` CTA_NAT_DST (one address, one
    port), and with ``status`` CTA_STATUS (IPS_* bits such as SEEN_REPLY and ASSURED; CONFIRMED added, as
    conntrack(8) sends it: the kernel marks the entry it creates confirmed before it applies the status, and
    refuses EBUSY a status that would clear the bit). The kernel sets DST_NAT and DST_NAT_DONE for the NAT.
    NLM_F_CREATE|EXCL: EEXIST when the namespace already holds an entry of the tuple."""
    body = (NFGENMSG.pack(socket.AF_INET, NFNETLINK_V0, 0)
            + nested(CTA_TUPLE_ORIG, ct_tuple(src, dst, proto, sport, dport))
            + nested(CTA_TUPLE_REPLY, ct_tuple(dst, src, proto, dport, sport))
            + attr(CTA_TIMEOUT, struct.pack("!I", timeout)))
    if status:
        body += attr(CTA_STATUS, struct.pack("!I", status | IPS_CONFIRMED))
    if dnat is not None:
        to, port = dnat
        body += nested(CTA_NAT_DST, attr(CTA_NAT_V4_MINIP, socket.inet_aton(to)),
                       nested(CTA_NAT_PROTO, attr(CTA_PROTONAT_PORT_MIN, struct.pack("!H", port)),
                              attr(CTA_PROTONAT_PORT_MAX, struct.pack("!H", port))))
    return message(NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_NEW, NLM_F_CREATE | NLM_F_EXCL, body)


def ct_dump() -> bytes:
    """``conntrack -L`` (IPv4): every entry of the socket's namespace."""
    return message(NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_GET, 0, NFGENMSG.pack(socket.AF_INET, NFNETLINK_V0, 0))


@dataclass(frozen=True)
class CtRecord:
    """One conntrack entry as ctnetlink gives it: what ``conntrack -L`` prints of it.

    ``orig`` and ``reply`` are the two tuples as text, keyed as conntrack(8) names them: ``src``, ``dst``, then
    ``sport`` and ``dport`` (TCP, UDP, SCTP...) or ``type``, ``code`` and ``id`` (ICMP).
    """

    proto: str  # "tcp", "udp", "icmp"... ("unknown" for a protocol conntrack(8) has no name for)
    protonum: int
    orig: Mapping[str, str]
    reply: Mapping[str, str]
    status: int = 0  # IPS_* bits
    timeout: int | None = None  # seconds left
    state: str | None = None  # TCP's (ESTABLISHED, TIME_WAIT...), SCTP's or DCCP's
    mark: int | None = None
    zone: int | None = None  # the entry's zone (CTA_ZONE), only when not the default one
    orig_zone: int | None = None
    reply_zone: int | None = None
    use: int | None = None
    id: int | None = None  # CTA_ID: which entry of its tuple this is (conntrack -L -o id)

    @property
    def flags(self) -> tuple[str, ...]:
        """The words conntrack(8) prints in brackets: UNREPLIED (no SEEN_REPLY), ASSURED, OFFLOAD, HW_OFFLOAD."""
        s = self.status
        return tuple(word for word, on in (("UNREPLIED", not s & IPS_SEEN_REPLY), ("ASSURED", s & IPS_ASSURED),
                                           ("OFFLOAD", s & IPS_OFFLOAD), ("HW_OFFLOAD", s & IPS_HW_OFFLOAD)) if on)

    @property
    def status_names(self) -> tuple[str, ...]:
        """Every status bit set, by the kernel's name (SEEN_REPLY, ASSURED, CONFIRMED, DST_NAT...)."""
        return tuple(name for bit, name in STATUS_BITS.items() if self.status >> bit & 1)

    def text(self) -> str:
        """The entry's line as ``conntrack -L`` prints it (libnetfilter_conntrack's default output)."""
        words = [f"{self.proto:<8} {self.protonum}"]
        words += [str(self.timeout)] if self.timeout is not None else []
        words += [self.state] if self.state else []
        words += _tuple_words(self.orig, self.orig_zone)
        words += ["[UNREPLIED]"] if "UNREPLIED" in self.flags else []
        words += _tuple_words(self.reply, self.reply_zone)
        words += [f"[{f}]" for f in self.flags if f != "UNREPLIED"]
        words += [f"mark={self.mark}"] if self.mark is not None else []
        words += [f"zone={self.zone}"] if self.zone is not None else []
        words += [f"use={self.use}"] if self.use is not None else []
        return " ".join(words)


def _tuple_words(t: Mapping[str, str], zone: int | None) -> list[str]:
    keys = ("src", "dst", "type", "code", "id") if "type" in t else ("src", "dst", "sport", "dport")
    return [f"{k}={t[k]}" for k in keys if k in t] + ([f"zone={zone}"] if zone is not None else [])


def ct_record(m: Msg) -> CtRecord | None:
    """An IPv4 entry of a ctnetlink dump or event (an IPCTNL_MSG_CT_NEW message); None for anything else."""
    if len(m.body) < NFGENMSG.size:
        return None
    a = attrs(m.body, NFGENMSG.size)
    orig, reply = _tuple(a.get(CTA_TUPLE_ORIG)), _tuple(a.get(CTA_TUPLE_REPLY))
    if orig is None or reply is None:
        return None

    def be32(kind: int) -> int | None:
        v = a.get(kind)
        return struct.unpack("!I", v[:4])[0] if v is not None and len(v) >= 4 else None

    state, info = None, attrs(a.get(CTA_PROTOINFO, b""))
    for nest, kind, names in PROTOINFO_STATES:  # TCP's, SCTP's or DCCP's state (a u8), as conntrack(8) names it
        if (n := attrs(info.get(nest, b"")).get(kind)) and state is None:
            state = names[n[0]] if n[0] < len(names) else "NONE"
    zone = a.get(CTA_ZONE)
    return CtRecord(PROTO_NAMES.get(orig[0], "unknown"), orig[0], orig[1], reply[1], be32(CTA_STATUS) or 0,
                    be32(CTA_TIMEOUT), state, be32(CTA_MARK),
                    struct.unpack("!H", zone[:2])[0] if zone and len(zone) >= 2 else None, orig[2], reply[2],
                    be32(CTA_USE), be32(CTA_ID))


def ct_tuples(m: Msg) -> tuple[int, dict[str, str], dict[str, str]] | None:
    """An entry's protocol number and its original and reply tuples (src, dst, sport, dport), as text; None for
    an entry without ports (ICMP)."""
    r = ct_record(m)
    if r is None or not all(k in t for t in (r.orig, r.reply) for k in ("sport", "dport")):
        return None
    keys = ("src", "dst", "sport", "dport")
    return r.protonum, {k: r.orig[k] for k in keys}, {k: r.reply[k] for k in keys}


def _tuple(data: bytes | None) -> tuple[int, dict[str, str], int | None] | None:
    """A tuple's protocol number, its fields as conntrack(8) names them, and its zone (None: not given)."""
    if data is None:
        return None
    t = attrs(data)
    ip, proto = attrs(t.get(CTA_TUPLE_IP, b"")), attrs(t.get(CTA_TUPLE_PROTO, b""))
    src, dst, num = ip.get(CTA_IP_V4_SRC), ip.get(CTA_IP_V4_DST), proto.get(CTA_PROTO_NUM)
    if not (src and dst and num) or len(src) != 4 or len(dst) != 4:  # IPv6
        return None
    out = {"src": socket.inet_ntoa(src), "dst": socket.inet_ntoa(dst)}
    if CTA_PROTO_ICMP_TYPE in proto:
        out["type"], out["code"] = str(proto[CTA_PROTO_ICMP_TYPE][0]), str(proto.get(CTA_PROTO_ICMP_CODE, b"\0")[0])
        if CTA_PROTO_ICMP_ID in proto:
            out["id"] = str(struct.unpack("!H", proto[CTA_PROTO_ICMP_ID][:2])[0])
    for key, kind in (("sport", CTA_PROTO_SRC_PORT), ("dport", CTA_PROTO_DST_PORT)):
        if kind in proto:
            out[key] = str(struct.unpack("!H", proto[kind][:2])[0])
    zone = t.get(CTA_TUPLE_ZONE)
    return num[0], out, struct.unpack("!H", zone[:2])[0] if zone and len(zone) >= 2 else None
