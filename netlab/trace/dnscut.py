"""A DNS message in the words ``tcpdump -vvv`` (4.99.3) prints for the same bytes, learnt black-box by feeding it
messages and reading its words (tests/unit/test_dns_cut_short and test_dns_tcpdump_words do again): every question
and record it could read, then `` [|domain]`` where the bytes stopped::

    4660* q: A? web.default.svc.cluster.local. 1/0/1 web.def [|domain]      (cut in the answer's name)
    9 q: SRV? _http._tcp.web. 1/0/0 _http._tcp.web. [1d1h1m1s] SRV [|domain]  (its data 3 bytes short)
    4660 q: A? <BAD PTR> [|domain]                                           (a pointer that does not point back)

What tcpdump was seen doing, and this module does:
- a question is said whole or not at all (its name, type and class must all be there); a response's next question
  follows ``, q:``; a class other than IN is said after the type (``A CHAOS?``, ``A (Class 5)?``), in a record after
  its name; type names are tcpdump's (``ANY``, ``Type257``);
- a record's name is said label by label, a label cut in its middle as far as it goes, then ``[|domain]``; a name
  whose last byte in the message is a label's length (or, after a label, a pointer's first byte) ends there, and
  what follows is read on; the root reached through a pointer is said as nothing;
- a record's fixed part (type, class, TTL, length) cut ends the line quietly as a whole message does,
  `` (LENGTH)``, when it was the message's last record, and ``[|domain]`` when records were still to come; its data
  must all be in the message, and is then read from its start as far as the message goes, whatever its length says
  (an A record of 2 bytes: its address from the 2 bytes after);
- a compression pointer must point before the labels it ends (no loop), else ``<BAD PTR>``;
- a response's rcode takes its high 8 bits from the first OPT record among the additional ones (``BadVers``);
- an OPT record is ``OPT [|domain]`` while its data is not all there; whole, ``OPT UDPsize=1232 DO`` and its EDNS
  options, ``[COOKIE 6162636465666768,NSID]``, each read from where the last ended, on past the record's data when
  its length says so (a TXT record's strings too), ``[|domain]`` where the bytes stopped.
Not said as tcpdump does: a bit-string label (``<ELT 1>`` here), A6, TSIG and URI records' data.
"""

from __future__ import annotations

import socket
import struct

# the opcodes and rcodes tcpdump names (NoError says nothing)
OPCODES = {0: "", 1: " inv_q", 2: " stat", 3: " op3", 4: " notify", 5: " update", 6: " op6", 7: " op7", 8: " op8",
           9: " updateA", 10: " updateD", 11: " updateDA", 12: " updateM", 13: " updateMA", 14: " zoneInit",
           15: " zoneRef"}
RCODES = {0: "", 1: " FormErr", 2: " ServFail", 3: " NXDomain", 4: " NotImp", 5: " Refused", 6: " YXDomain",
          7: " YXRRSet", 8: " NXRRSet", 9: " NotAuth", 10: " NotZone", 15: " NoChange", 16: " BadVers", 17: "Resp17",
          21: "Resp21", 23: " BadCookie"}  # (17 and 21 with no space before: so tcpdump prints them)
# the type names tcpdump says (another is TypeN), read from its words for every 16-bit type
TYPES = dict(enumerate(
    "A NS MD MF CNAME SOA MB MG MR NULL WKS PTR HINFO MINFO MX TXT RP AFSDB X25 ISDN RT NSAP NSAP_PTR SIG KEY PX GPOS "
    "AAAA LOC NXT EID NIMLOC SRV ATMA NAPTR KX CERT A6 DNAME SINK OPT APL DS SSHFP IPSECKEY RRSIG NSEC DNSKEY".split(),
    1)) | dict(enumerate("SPF UINFO UID GID UNSPEC UNSPECA".split(), 99)) | dict(
    enumerate("TKEY TSIG IXFR AXFR MAILB MAILA ANY URI".split(), 249))
CLASSES = {1: "", 3: " CHAOS", 4: " HS", 255: " ANY"}  # another is `` (Class N)``
TIME_UNITS = [(31536000, "y"), (604800, "w"), (86400, "d"), (3600, "h"), (60, "m"), (1, "s")]
CUT = " [|domain]"
OPT = 41
# EDNS option codes as tcpdump names them (another is OptN), and the DNSSEC algorithm numbers DAU, DHU, N3U list
EDNS_OPTIONS = {1: "LLQ", 2: "UL", 3: "NSID", 5: "DAU", 6: "DHU", 7: "N3U", 8: "ECS", 9: "EXPIRE", 10: "COOKIE",
                11: "KEEPALIVE", 12: "PADDING", 13: "CHAIN", 14: "KEY-TAG", 16: "CLIENT-TAG", 17: "SERVER-TAG"}
SIGNING = {0: "DELETE", 1: "RSAMD5", 2: "DH", 3: "DS", 5: "RSASHA1", 6: "DSA-NSEC3-SHA1", 7: "RSASHA1-NSEC3-SHA1",
           8: "RSASHA256", 10: "RSASHA512", 12: "ECC-GOST", 13: "ECDSAP256SHA256", 14: "ECDSAP384SHA384",
           15: "ED25519", 16: "ED448", 252: "INDIRECT", 253: "PRIVATEDNS", 254: "PRIVATEOID"}
HASHES = {6: {1: "SHA-1", 2: "SHA-256", 3: "GOST_R_34.11-94", 4: "SHA-384"}, 7: {1: "SHA-1"}}
INVALID = "  (invalid)"


class _Cut(Exception):
    """The bytes stopped (or a pointer went wrong): ``said`` is what was read of the thing, ``quiet`` when tcpdump
    ends the line as a whole message (a fixed part cut, a label with none of its bytes) rather than ``[|domain]``."""

    def __init__(self, said: str = "", quiet: bool = False) -> None:
        super().__init__(said)
        self.said, self.quiet = said, quiet


def header_words(message: bytes) -> str:
    """The 12-byte header as tcpdump says it: id, opcode, flags, and the counts it names in brackets."""
    ident, b2, qd, an, ns, ar = struct.unpack("!6H", message[:12])
    op, rcode = (b2 >> 11) & 0xF, b2 & 0xF | _extended_rcode(message) << 4
    if b2 & 0x8000:  # a response
        words = (f"{ident}{OPCODES[op]}{RCODES.get(rcode, f' Resp{rcode}')}{'*' if b2 & 0x400 else ''}"
                 f"{'' if b2 & 0x80 else '-'}{'|' if b2 & 0x200 else ''}{'$' if b2 & 0x20 else ''}")
        return words + (f" [{qd}q]" if qd != 1 else "")
    words = f"{ident}{OPCODES[op]}{'+' if b2 & 0x100 else ''}{'%' if b2 & 0x10 else ''}"
    words += f" [b2&3=0x{b2:x}]" if b2 & 0x6cf else ""
    if op == 1:  # an inverse query
        words += (f" [{qd}q]" if qd else "") + (f" [{an}a]" if an != 1 else "")
    else:
        words += (f" [{an}a]" if an else "") + (f" [{qd}q]" if qd != 1 else "")
    return f"{words}{f' [{ns}n]' if ns else ''}{f' [{ar}au]' if ar else ''}"


def type_name(rtype: int) -> str:
    return TYPES.get(rtype, f"Type{rtype}")


def class_words(rclass: int) -> str:
    return CLASSES.get(rclass, f" (Class {rclass})")


def _extended_rcode(message: bytes) -> int:
    """The high 8 bits of a response's rcode: the TTL's first byte of the first OPT record among the additional
    records, when the bytes reach it (0: none). Records before it are skipped by their data's length."""
    _, _, qd, an, ns, ar = struct.unpack("!6H", message[:12])
    pos = 12
    try:
        for _ in range(qd):
            pos = _skip_name(message, pos) + 4
        for n in range(an + ns + ar):
            pos = _skip_name(message, pos)
            if n >= an + ns and message[pos:pos + 2] == OPT.to_bytes(2, "big") and pos + 5 <= len(message):
                return message[pos + 4]
            if pos + 10 > len(message):
                break
            pos += 10 + int.from_bytes(message[pos + 8:pos + 10], "big")
    except _Cut:
        pass
    return 0


def walk(message: bytes) -> tuple[str, bool]:
    """The message (12 bytes at least) in tcpdump's words, and whether reading it stopped before its last record's
    end or at a bad pointer (False: every question and record it counts is there whole)."""
    _, b2, qd, an, ns, ar = struct.unpack("!6H", message[:12])
    response = bool(b2 & 0x8000)
    out = [header_words(message)]
    pos = 12
    try:
        if qd and response:
            out.append(" q:")
        for i in range(qd):  # a response's next question: ``, q:``
            out.append(", q:" if i and response else "")
            pos = _question(message, pos, out)
        if response:
            out.append(f" {an}/{ns}/{ar}")
        left = an + ns + ar
        for label, count in (("", an), (" ns:", ns), (" ar:", ar)):
            for i in range(count):
                left -= 1
                if pos >= len(message):  # tcpdump says the first answer's space before it sees no byte of it
                    raise _Cut(" " if not label and i == 0 else "")
                out.append(label if i == 0 else ",")
                try:
                    pos = _record(message, pos, out)
                except _Cut as cut:
                    if cut.quiet and not left:
                        out.append(cut.said)
                        return "".join(out) + f" ({len(message)})", True
                    raise
    except _Cut as cut:
        return "".join(out) + cut.said + CUT, True
    return "".join(out) + f" ({len(message)})", False


def _question(message: bytes, pos: int, out: list[str]) -> int:
    """`` A? name.``: said only when its name, type and class all came."""
    end = _skip_name(message, pos)
    if end + 4 > len(message):
        raise _Cut()
    qtype = int.from_bytes(message[end:end + 2], "big")
    kind = f" {type_name(qtype)}{class_words(int.from_bytes(message[end + 2:end + 4], 'big'))}?"
    try:
        out.append(f"{kind} {_name(message, pos)[0]}")
    except _Cut as cut:
        raise _Cut(f"{kind} {cut.said}") from None
    return end + 4


def _skip_name(message: bytes, pos: int) -> int:
    """Where the name at ``pos`` ends in the message (a pointer ends it), without following pointers."""
    while pos < len(message):
        size = message[pos]
        if size & 0xC0 == 0xC0:
            if pos + 2 > len(message):
                break
            return pos + 2
        if size & 0xC0 or pos + 1 + size > len(message):
            break
        pos += 1 + size
        if size == 0:
            return pos
    raise _Cut()


def _name(message: bytes, pos: int) -> tuple[str, int]:
    """The name at ``pos`` (``web.default.``, ``.`` the root) and where it ends in the record, following pointers."""
    said, end, run = "", -1, pos
    while True:
        if pos >= len(message):
            raise _Cut(said)
        size = message[pos]
        if size & 0xC0 == 0xC0:
            if pos + 2 > len(message):  # the pointer's first byte ends the message: the name ends there
                if said:
                    return said, (end if end >= 0 else len(message))
                raise _Cut(said)
            target = int.from_bytes(message[pos:pos + 2], "big") & 0x3FFF
            end = pos + 2 if end < 0 else end
            if target >= run:
                raise _Cut(said + "<BAD PTR>")
            pos = run = target
            continue
        if size & 0xC0 == 0x80:
            raise _Cut(said + "<BAD LABEL TYPE>")
        if size & 0xC0:  # an extended label type (0x41, a bit string, is said otherwise: not here)
            raise _Cut(said + f"<ELT {size & 0x3F}>")
        if size == 0:
            if end < 0:
                return (said or "."), pos + 1
            return said, end  # the root reached through a pointer is said as nothing
        label = message[pos + 1:pos + 1 + size]
        if not label:  # a label's length ends the message: the name ends there
            return said, (end if end >= 0 else len(message))
        said += label_chars(label)
        if len(label) < size:
            raise _Cut(said)
        said += "."
        pos += 1 + size


def label_chars(data: bytes) -> str:
    """Bytes as tcpdump shows them: printable ASCII as is, a control character as ``^A``, a high one ``M-``."""
    out = []
    for c in data:
        head = "M-" if c & 0x80 else ""
        c &= 0x7F
        out.append(head + (chr(c) if 0x20 <= c < 0x7F else "^" + chr(c ^ 0x40)))
    return "".join(out)


def _record(message: bytes, pos: int, out: list[str]) -> int:
    """`` name. [30s] A 10.96.0.20``: the name as far as it came, its fixed part, its data only whole."""
    try:
        name, pos = _name(message, pos)
    except _Cut as cut:
        raise _Cut(" " + cut.said, cut.quiet) from None
    out.append(" " + name)
    if pos + 10 > len(message):
        raise _Cut(quiet=True)
    rtype, rclass, ttl, size = struct.unpack("!HHIH", message[pos:pos + 10])
    pos += 10
    kind = type_name(rtype)
    out.append(" OPT" if rtype == OPT else f"{class_words(rclass)} [{ttl_words(ttl)}] {kind}")
    if pos + size > len(message):
        raise _Cut()
    if rtype == OPT:  # its UDP size and DO bit are said once its data came
        out.append(f" UDPsize={rclass}{' DO' if ttl & 0x8000 else ''}")
        out.append(opt_words(message, pos, size))
    else:
        out.append(_data(message, pos, size, kind))
    return pos + size


def opt_words(message: bytes, pos: int, size: int) -> str:
    """An OPT record's EDNS options (its ``size`` bytes of data at ``pos``): `` [COOKIE 6162636465666768,NSID]``,
    '' when it has none. An option is read where the last ended, on past the data when a length says so."""
    said, at = [], pos
    while at < pos + size:
        if at + 2 > len(message):
            raise _Cut(" [" + "".join(f"{word}," for word in said))
        code = int.from_bytes(message[at:at + 2], "big")
        name = EDNS_OPTIONS.get(code, f"Opt{code}")
        if at + 4 > len(message):
            raise _Cut(" [" + ",".join(said + [name]))
        length = int.from_bytes(message[at + 2:at + 4], "big")
        data = message[at + 4:at + 4 + length]
        if len(data) < length:
            raise _Cut(" [" + ",".join(said + [name]))
        said.append(name + (_option(code, data) if data else ""))
        at += 4 + length
    return f" [{','.join(said)}]" if said else ""


def _option(code: int, data: bytes) -> str:
    """One EDNS option's data (some of it at least), after its name."""
    if code == 10:  # COOKIE: the client's 8 bytes, then the server's 8 to 32
        if len(data) != 8 and not 16 <= len(data) <= 40:
            return INVALID
        return f" {data[:8].hex()}" + (f" {data[8:].hex()}" if len(data) > 8 else "")
    if code == 12:
        return f" ({len(data)})"
    if code == 8:  # ECS: family, source and scope prefix lengths, the source prefix's bytes
        family, source, scope = struct.unpack("!HBB", data[:4]) if len(data) >= 4 else (0, 0, 0)
        bits = {1: 32, 2: 128}.get(family, 0)
        if not bits or source > bits or scope > bits or len(data) != 4 + (source + 7) // 8:
            return INVALID
        address = data[4:].ljust(bits // 8, b"\0")
        return f" {socket.inet_ntop(socket.AF_INET if family == 1 else socket.AF_INET6, address)}/{source}/{scope}"
    if code in (5, 6, 7):
        names = SIGNING if code == 5 else HASHES[code]
        return "".join(f" {names.get(n, f'Alg_{n}')}" for n in data)
    if code == 9:
        return f" {int.from_bytes(data, 'big')} sec" if len(data) == 4 else INVALID
    if code == 11:
        tenths = int.from_bytes(data, "big")
        return f" {tenths // 10}.{tenths % 10} sec" if len(data) == 2 else INVALID
    if code == 14:
        return "".join(f" {n}" for n, in struct.iter_unpack("!H", data)) if len(data) % 2 == 0 else INVALID
    return f" {data.hex()}"


def _data(message: bytes, pos: int, size: int, kind: str) -> str:
    """A record's data, read from its start on as far as the message goes, whatever its length says."""
    if kind == "A":
        return _address(message[pos:pos + 4], 4)
    if kind == "AAAA":
        return _address(message[pos:pos + 16], 16)
    if kind in ("CNAME", "PTR", "NS", "DNAME"):
        return f" {_in_data(message, pos)[0]}"
    if kind == "UNSPECA":  # its bytes, right after the type's name
        return label_chars(message[pos:pos + size])
    if kind in ("MX", "SRV") and pos + {"MX": 2, "SRV": 6}[kind] >= len(message):
        raise _Cut(" ")
    if kind == "MX":
        name = _in_data(message, pos + 2)[0]
        return f" {name} {int.from_bytes(message[pos:pos + 2], 'big')}"
    if kind == "SRV":
        priority, weight, port = struct.unpack("!HHH", message[pos:pos + 6])
        return f" {_in_data(message, pos + 6)[0]}:{port} {priority} {weight}"
    if kind == "SOA":
        mname, at = _in_data(message, pos)
        try:
            rname, at = _in_data(message, at)
        except _Cut as cut:  # the mname was said
            raise _Cut(f" {mname}{cut.said}") from None
        if at + 20 > len(message):
            raise _Cut(f" {mname} {rname}")
        return f" {mname} {rname} " + " ".join(str(n) for n in struct.unpack("!5I", message[at:at + 20]))
    if kind == "TXT":  # each string read where the last ended, on past the data when its length says so
        texts, at = "", pos
        while at < pos + size:
            text = message[at + 1:at + 1 + message[at]]
            if len(text) < message[at]:
                raise _Cut(f'{texts} "{label_chars(text)}')
            texts += f' "{label_chars(text)}"'
            at += 1 + len(text)
        return texts
    return ""


def _address(data: bytes, size: int) -> str:
    if len(data) < size:
        raise _Cut()
    return " " + socket.inet_ntop(socket.AF_INET if size == 4 else socket.AF_INET6, data[:size])


def _in_data(message: bytes, pos: int) -> tuple[str, int]:
    """A name inside a record's data: cut there (every byte of the data came), tcpdump says ``[|domain]``."""
    try:
        return _name(message, pos)
    except _Cut as cut:
        raise _Cut(" " + cut.said) from None


def ttl_words(seconds: int) -> str:
    """tcpdump's relative time: 30s, 1h, 1d1h1m1s."""
    if not seconds:
        return "0s"
    out = ""
    for size, unit in TIME_UNITS:
        if seconds >= size:
            out += f"{seconds // size}{unit}"
            seconds %= size
    return out
