"""DNS questions asked from inside a lab namespace, the answers printed as dig prints them (tests only).

Not dig (scripts/setup.sh installs it for learners), so that each record is read field by field: :data:`QUERY` runs
in a child process that entered the pod's namespace first (``ip netns exec``), so that the question
leaves through the pod's eth0 as an application's would, and builds and reads the messages with
scapy. Each record is printed in dig's presentation format::

    status: NOERROR, flags: qr aa rd
    ANSWER: web.default.svc.cluster.local. 30 IN A 10.96.0.20
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

QUERY = r"""
import json, socket, struct, sys
from scapy.layers.dns import DNS, DNSQR, DNSRROPT, dnstypes

RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


def text(b):
    return b.decode() if isinstance(b, bytes) else str(b)


def rdata(r):
    kind = dnstypes.get(r.type, str(r.type))
    if kind == "SRV":
        return f"{r.priority} {r.weight} {r.port} {text(r.target)}"
    if kind == "SOA":
        return f"{text(r.mname)} {text(r.rname)} {r.serial} {r.refresh} {r.retry} {r.expire} {r.minimum}"
    if kind == "TXT":
        return " ".join('"' + text(t) + '"' for t in r.rdata)
    return text(r.rdata)


def rr(r):
    return f"{text(r.rrname)} {r.ttl} IN {dnstypes.get(r.type, str(r.type))} {rdata(r)}"


def ask(server, proto, name, qtype):
    proto, _, edns = proto.partition("+")  # "tcp+edns": with an OPT record (UDP size 1232), as dig asks
    opt = {"ar": DNSRROPT(rclass=1232)} if edns else {}
    msg = bytes(DNS(id=0x4242, rd=1, qd=DNSQR(qname=name, qtype=qtype), **opt))
    if proto == "tcp":  # RFC 1035 4.2.2: each message after its length, two bytes
        s = socket.create_connection((server, 53), timeout=3)
        s.sendall(struct.pack("!H", len(msg)) + msg)
        data = b""
        while len(data) < 2 or len(data) < 2 + struct.unpack("!H", data[:2])[0]:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        data = data[2:]
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(3)
        s.sendto(msg, (server, 53))
        data = s.recv(4096)
    m = DNS(data)
    flags = [f for f, on in (("qr", m.qr), ("aa", m.aa), ("tc", m.tc), ("rd", m.rd), ("ra", m.ra)) if on]
    # RFC 8914 extended errors (EDNS option 15) of the OPT record, which is no record of the additional section
    ede = [int.from_bytes(bytes(o)[4:6], "big") for r in (m.ar or []) if r.type == 41 for o in (r.rdata or [])
           if o.optcode == 15]
    return {"status": RCODES.get(m.rcode, str(m.rcode)), "flags": " ".join(flags),
            "answer": [rr(r) for r in (m.an or [])], "authority": [rr(r) for r in (m.ns or [])],
            "additional": [rr(r) for r in (m.ar or []) if r.type != 41], "ede": ede}


server, proto = sys.argv[1], sys.argv[2]
print(json.dumps([ask(server, proto, *(q.split() + ["A"])[:2]) for q in sys.argv[3:]]))
"""


def ask(netns: str, server: str, *questions: str, tcp: bool = False, edns: bool = False) -> list[dict]:
    """Each question (``"web.default.svc.cluster.local"``, ``"2.0.244.10.in-addr.arpa PTR"``) asked of
    ``server`` from ``netns``: status, flags, the three sections, records as dig prints them, and the extended
    DNS errors (``ede``, RFC 8914 info codes) of an answer to a question with EDNS (``edns``: as dig asks; glibc
    asks without unless resolv.conf says ``options edns0``)."""
    proto = ("tcp" if tcp else "udp") + ("+edns" if edns else "")
    proc = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", QUERY, server, proto,
                           *questions], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def reverse(ip: str) -> str:
    """The in-addr.arpa name of an IPv4 address (what ``dig -x`` asks)."""
    return ".".join(reversed(ip.split("."))) + ".in-addr.arpa"


EDE_NAMES = {17: "Filtered"}  # RFC 8914's names of the codes these answers carry


def dig(answer: dict, *sections: str) -> str:
    """The status line (and an extended DNS error's, ``EDE: 17 (Filtered)``) and the given sections (``answer``,
    ``authority``, ``additional``), as ``dig +noall +comments +<section>`` shows them; a SOA's serial (a time) is
    ``<serial>``."""
    lines = [f"status: {answer['status']}, flags: {answer['flags']}"]
    lines += [f"EDE: {code} ({EDE_NAMES.get(code, '?')})" for code in answer.get("ede", [])]
    for section in sections:
        lines += [f"{section.upper()}: {rr}" for rr in answer[section]]
    text = "\n".join(lines) + "\n"
    return re.sub(r"(IN SOA \S+ \S+ )\d+", r"\1<serial>", text)
