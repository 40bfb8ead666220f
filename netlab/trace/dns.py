"""A real DNS question for a trace to port 53, and the answer read back.

A trace's UDP datagram normally carries only its marker, which a DNS server
such as the lab's dnsmasq drops as garbage: no reply, although the server
listens. To port 53 the trace sends a real query instead, for a name the
cluster DNS knows (``<svc>.<namespace>.svc.cluster.local``), and shows the
answer. The marker still travels in the packet, as an EDNS(0) option of a
code reserved for local use (RFC 6891, 65001-65534) that servers ignore, so
the capture recognises the query on every hop as it does any marked packet::

    DNS id 0x1a2b, RD | question: A web.default.svc.cluster.local | OPT: option 65001 "netlab-trace 1f2e3d4c"

scapy builds and parses the messages; it is imported here, lazily, from the
host's namespace (never from inside a lab namespace, see capture.py).
"""

from __future__ import annotations

import random
from typing import Any

from netlab.model.clusterdns import CLUSTER_DOMAIN, dns_service, fqdn
from netlab.model.lab import Lab
from netlab.probe.dnsq import RCODES
from netlab.trace import scapyconf

PORT = 53
MARKER_OPTION = 65001  # EDNS0 option code for local/experimental use
DEFAULT_NAME = f"kubernetes.default.svc.{CLUSTER_DOMAIN}"
# A reply with no DNS response header: a UDP server that answers any datagram (the lab's echo server, its JSON line)
NOT_DNS = "not a DNS message: the server behind it answers anything, as the lab's echo server does"


def question_name(lab: Lab, service: str | None) -> str:
    """The name to ask for: the Service traced to, else the cluster DNS Service's own name."""
    # the cluster DNS Service is kube-system/kube-dns, not a user's kube-dns of another namespace
    svc = (lab.find_service(service) if service else None) or dns_service(lab.topo)
    return fqdn(svc) if svc is not None else DEFAULT_NAME


def query(name: str, marker: bytes, ident: int | None = None) -> tuple[int, bytes]:
    """A recursive A query for ``name`` carrying ``marker`` in an EDNS(0) option: (its id, its bytes)."""
    scapyconf.load()
    from scapy.layers.dns import DNS, DNSQR, DNSRROPT, EDNS0TLV  # scapy: lazily, see above

    ident = random.SystemRandom().randrange(1, 0xFFFF) if ident is None else ident
    msg = DNS(id=ident, rd=1, qd=[DNSQR(qname=name, qtype="A")],
              ar=[DNSRROPT(rclass=1232, rdata=[EDNS0TLV(optcode=MARKER_OPTION, optdata=marker)])])
    return ident, bytes(msg)


def answer(data: bytes, ident: int | None = None) -> dict[str, Any]:
    """A DNS response as plain data: rcode, the question, the answer records (name, type, data, ttl); a reply that
    is no DNS response at all (shorter than a header, or its QR bit 0: the echo server's ``{"pod": ...`` line, whose
    third byte is ``p``) is ``not_dns``: a server that answers anything, not a DNS server answering wrong."""
    scapyconf.load()
    from scapy.layers.dns import DNS, dnstypes  # scapy: lazily, see above

    if len(data) < 12 or not data[2] & 0x80:
        return {"error": NOT_DNS + _preview(data), "not_dns": True}
    # scapy dissects whatever it is given, and raises (many kinds) only when a field is read: a response header
    # followed by garbage fails here, at the question or a record.
    try:
        msg = DNS(data)
        if ident is not None and msg.id != ident:  # a DNS answer carries its query's id, first
            return {"error": f"not an answer to the query (id {msg.id}, the query's is {ident}){_preview(data)}"}
        out: dict[str, Any] = {"id": msg.id, "rcode": RCODES.get(msg.rcode, str(msg.rcode)), "answers": []}
        if msg.qd:
            out["question"] = _name(msg.qd[0].qname)
        for rr in msg.an or []:
            data_ = rr.rdata
            out["answers"].append({"name": _name(rr.rrname), "type": dnstypes.get(rr.type, str(rr.type)),
                                   "data": _name(data_) if isinstance(data_, bytes) else str(data_), "ttl": rr.ttl})
    except Exception as exc:  # noqa: BLE001
        return {"error": f"not a DNS message ({exc.__class__.__name__}){_preview(data)}"}
    return out


def _preview(data: bytes) -> str:
    """``: '{"pod": "web", ...'`` when the reply is text (an echo server's line), else nothing."""
    head = data[:60].decode(errors="replace")
    if not head or any(not (c.isprintable() or c in "\n\t") for c in head):
        return ""
    return f": {head.strip()!r}" + ("..." if len(data) > 60 else "")


def _name(raw: bytes | str) -> str:
    return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)


def text(ans: dict[str, Any]) -> str:
    """``DNS answer: web.default.svc.cluster.local. A 10.96.0.20 (NOERROR)``."""
    if ans.get("not_dns"):  # the flow worked, and its server is no DNS server: not a broken answer
        return str(ans["error"])
    if "error" in ans and "rcode" not in ans:
        return f"DNS: {ans['error']}"
    records = "; ".join(f"{a['name']} {a['type']} {a['data']}" for a in ans["answers"])
    what = records or f"no records for {ans.get('question', '?')}"
    return f"DNS answer: {what} ({ans['rcode']})" + (f"; {ans['error']}" if "error" in ans else "")
