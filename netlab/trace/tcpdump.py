"""A captured frame in tcpdump's words, read with scapy's layers (``netlab capture``'s text and -o json).

One line per frame, as ``tcpdump -n -e`` prints it, with the IP header's TTL where ``tcpdump -v`` puts it
(a routing loop shows as it falls) and each DNS message as ``tcpdump -vvv`` words it (question, every
record of every section with its TTL: an NXDOMAIN's SOA, a named port's SRV)::

    0a:58:0a:f4:00:03 > 0a:58:0a:f4:00:04, length 100: IP (ttl 64) 10.244.0.3.41234 > 10.96.0.10.53: \
12345+ [1au] A? web.default.svc.cluster.local. ar: . OPT UDPsize=1232 (58)
    ... IP (ttl 64) 10.244.0.3.58806 > 10.244.1.2.8080: Flags [S], seq 1000, win 64240, options [mss 1460], length 0

A VXLAN carrier is its outer header, then ``| inner`` and the frame it carries; an ICMP error, ``| quoted``
and the header it quotes. Sequence numbers are absolute (``tcpdump -S``). Without the link layer (``link=False``,
tcpdump without ``-e``: ``netlab trace``'s rows, which name the device already), a line starts at ``IP (ttl 64)``
or ``ARP,``, and a VXLAN packet's inner frame too. This module imports scapy: it is
imported only after every namespace was entered and left (trace/capture.py says why).
"""

from __future__ import annotations

from typing import Any

from netlab.trace import scapyconf

scapyconf.load()  # before scapy's layers: without its reading of the routing tables (trace/scapyconf.py)
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.layers.vxlan import VXLAN

from netlab.probe.dnsq import PORT as DNS_PORT, from_tcp
from netlab.probe.icmp import icmp_words
from netlab.trace.dnscut import walk

# print-tcp.c's flag letters, in its order: FIN, SYN, RST, PUSH, ACK, URG, ECE, CWR
TCP_FLAGS = [(0x01, "F"), (0x02, "S"), (0x04, "R"), (0x08, "P"), (0x10, "."), (0x20, "U"), (0x40, "E"), (0x80, "W")]
HTTP_STARTS = (b"GET ", b"POST ", b"PUT ", b"HEAD ", b"DELETE ", b"OPTIONS ", b"PATCH ", b"CONNECT ", b"HTTP/1.")


def frame_words(data: bytes, link: bool = True) -> tuple[str, str | None]:
    """A frame's line (no time, no direction) and its DNS message's words (None: no DNS in it); ``link``: with
    the MACs and the frame's length first, as ``-e`` prints them. VXLAN is decoded on the ports bound by
    ``capture.scapy_layers``."""
    dns: list[str] = []
    return _ether(Ether(data), len(data), dns, link), (dns[-1] if dns else None)


def _ether(p: Any, length: int, dns: list[str], link: bool) -> str:
    head = f"{p.src} > {p.dst}, length {length}: " if link else ""
    if ARP in p:
        a = p[ARP]
        if a.op == 1:
            return head + f"ARP, Request who-has {a.pdst} tell {a.psrc}, length 28"
        if a.op == 2:
            return head + f"ARP, Reply {a.psrc} is-at {a.hwsrc}, length 28"
        return head + f"ARP, op {a.op}, length 28"
    if isinstance(p.payload, IP):
        return head + _ip(p.payload, dns, link)
    return head + f"ethertype 0x{p.type:04x}, length {max(0, length - 14)}"


def _ip(ip: Any, dns: list[str], link: bool = True) -> str:
    """``IP (ttl 64) SRC[.PORT] > DST[.PORT]: ...`` for one IPv4 packet."""
    head = f"IP (ttl {ip.ttl}) "
    body_len = max(0, (ip.len or len(ip)) - ip.ihl * 4)
    l4 = ip.payload
    if ip.frag or ip.flags.MF:  # a fragment: its layer 4 header is in the first one only
        return head + f"{ip.src} > {ip.dst}: ip-proto-{ip.proto} fragment, offset {ip.frag * 8}, length {body_len}"
    if isinstance(l4, TCP):
        return head + f"{ip.src}.{l4.sport} > {ip.dst}.{l4.dport}: " + _tcp(l4, body_len, dns)
    if isinstance(l4, UDP):
        return head + f"{ip.src}.{l4.sport} > {ip.dst}.{l4.dport}: " + _udp(l4, dns, link)
    if isinstance(l4, ICMP):
        return head + f"{ip.src} > {ip.dst}: " + _icmp(l4, body_len)
    if ip.proto == 2:
        return head + f"{ip.src} > {ip.dst}: " + _igmp(bytes(l4)[:body_len])
    return head + f"{ip.src} > {ip.dst}: ip-proto-{ip.proto} {body_len}"


def _tcp(t: Any, body_len: int, dns: list[str]) -> str:
    payload = bytes(t.payload)[:max(0, body_len - t.dataofs * 4)]
    flags = "".join(c for bit, c in TCP_FLAGS if int(t.flags) & bit) or "none"
    words = [f"Flags [{flags}]"]
    if int(t.flags) & 0x07 or payload:  # tcpdump: a SYN, FIN or RST, or data, says where it is
        words.append(f"seq {t.seq}:{(t.seq + len(payload)) & 0xFFFFFFFF}" if payload else f"seq {t.seq}")
    if int(t.flags) & 0x10:
        words.append(f"ack {t.ack}")
    words.append(f"win {t.window}")
    options = _tcp_options(t.options)
    if options:
        words.append(f"options [{options}]")
    words.append(f"length {len(payload)}")
    text = ", ".join(words)
    if payload and DNS_PORT in (t.sport, t.dport):  # after its two-byte length (RFC 1035 4.2.2)
        message = from_tcp(payload)
        if message:
            return f"{text}: {_dns_said(message, dns)}"
    if payload.startswith(HTTP_STARTS):
        return f"{text}: {_http(payload)}"
    return text


def _http(payload: bytes) -> str:
    """tcpdump's HTTP printer: the request or status line when all of it is printable ASCII (or tabs), `` [|http]``
    after it when no line end came; else just ``HTTP`` (no control byte reaches the terminal)."""
    line, newline, _ = payload.partition(b"\n")
    line = line[:-1] if newline and line.endswith(b"\r") else line
    if any(not (0x20 <= c < 0x7F or c == 0x09) for c in line):
        return "HTTP"
    return f"HTTP: {line.decode()}" + ("" if newline else " [|http]")


def _tcp_options(options: list[tuple[str, Any]]) -> str:
    out = []
    for name, value in options:
        if name == "MSS":
            out.append(f"mss {value}")
        elif name == "SAckOK":
            out.append("sackOK")
        elif name == "SAck":
            out.append("sack " + " ".join(f"{{{a}:{b}}}" for a, b in zip(value[::2], value[1::2])))
        elif name == "Timestamp":
            out.append(f"TS val {value[0]} ecr {value[1]}")
        elif name == "WScale":
            out.append(f"wscale {value}")
        elif name in ("NOP", "EOL"):
            out.append(name.lower())
        else:
            out.append(f"{name}")
    return ",".join(out)


def _udp(u: Any, dns: list[str], link: bool) -> str:
    payload = bytes(u.payload)[:max(0, (u.len or 8) - 8)]
    if isinstance(u.payload, VXLAN):
        vx = u.payload
        inner = bytes(vx.payload)
        return (f"VXLAN, flags [I] (0x{int(vx.flags):02x}), vni {vx.vni} | inner "
                + _ether(Ether(inner), len(inner), dns, link))
    if DNS_PORT in (u.sport, u.dport):
        return _dns_said(payload, dns)
    return f"UDP, length {len(payload)}"


def _icmp(i: Any, body_len: int) -> str:
    if i.type in (0, 8):
        kind = "echo request" if i.type == 8 else "echo reply"
        return f"ICMP {kind}, id {i.id}, seq {i.seq}, length {body_len}"
    quoted = IP(bytes(i)[8:body_len]) if i.type in (3, 4, 5, 11, 12) and body_len >= 28 else None
    text = f"ICMP {_icmp_error(i, quoted)}, length {body_len}"
    return f"{text} | quoted {_ip(quoted, [])}" if quoted is not None else text


def _icmp_error(i: Any, quoted: Any) -> str:
    """print-icmp.c's words for what the lab's kernels send; netlab's own words for the rest."""
    if i.type == 3 and quoted is not None:
        l4 = quoted.payload
        proto = {6: "tcp", 17: "udp"}.get(quoted.proto)
        if i.code == 3 and proto and hasattr(l4, "dport"):
            return f"{quoted.dst} {proto} port {l4.dport} unreachable"
        if i.code == 0:
            return f"net {quoted.dst} unreachable"
        if i.code == 1:
            return f"host {quoted.dst} unreachable"
        if i.code == 2:
            return f"{quoted.dst} protocol {quoted.proto} unreachable"
        if i.code == 4:
            return f"{quoted.dst} unreachable - need to frag (mtu {i.nexthopmtu})"
        if i.code == 13:
            return f"host {quoted.dst} unreachable - admin prohibited filter"
    if i.type == 11:
        return "time exceeded in-transit" if i.code == 0 else "ip reassembly time exceeded"
    return icmp_words(i.type, i.code)


def _igmp(b: bytes) -> str:
    if not b:
        return "igmp"
    if b[0] == 0x22 and len(b) >= 8:
        return f"igmp v3 report, {int.from_bytes(b[6:8], 'big')} group record(s)"
    if b[0] == 0x11:
        return "igmp query" + (" v3" if len(b) >= 12 else " v2")
    if b[0] in (0x16, 0x17) and len(b) >= 8:
        group = ".".join(str(x) for x in b[4:8])
        return f"igmp v2 report {group}" if b[0] == 0x16 else f"igmp leave {group}"
    return f"igmp type 0x{b[0]:02x}"


# --- DNS: tcpdump -vvv's words ------------------------------------------------------------------------------------

def _dns_said(message: bytes, dns: list[str]) -> str:
    dns.append(dns_words(message))
    return dns[-1]


def dns_words(message: bytes) -> str:
    """One DNS message as ``tcpdump -vvv`` prints it: a query ``4660+ [1au] A? web.default.svc.cluster.local.
    ar: . OPT UDPsize=1232 (58)``, its answer ``4660*- q: A? web... 1/0/0 web... [30s] A 10.96.0.20 (74)``
    (``NXDomain``, ``*`` authoritative, ``-`` no recursion available); one that cannot be read to its end (cut
    short, a bad compression pointer, a port-53 datagram of another program's), what of it could be read and
    ``[|domain]``, as tcpdump says it (trace/dnscut.py)."""
    if len(message) < 12:
        return f"domain [length {len(message)} < 12] (invalid)"
    return walk(message)[0]
