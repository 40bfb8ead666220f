"""``conntrack -D``'s filters, matched in Python against the entries of a ctnetlink dump.

ctnetlink deletes one entry per request, by its tuple; a filtered delete is a
dump, a match and a delete per match, which is what conntrack(8) does too.
:class:`CtFilter` holds the filters ``up`` passes (kube-proxy's, in conntrack(8)'s
words: ``-p udp --orig-dst <ClusterIP> --orig-port-dst <port> --dst-nat
<endpoint>``) and :meth:`CtFilter.matches` decides as conntrack-tools 1.4.7's
``nfct_filter`` does:

- every tuple field given (``-p``, ``--orig-src``, ``--orig-dst``,
  ``--orig-port-src``, ``--orig-port-dst``, and their short forms ``-s``, ``-d``,
  ``--sport``, ``--dport``) must equal the entry's original tuple's
  (``nfct_cmp`` with NFCT_CMP_MASK: only what the filter sets is compared);
- so must every reply tuple field given (``--reply-src``, ``--reply-dst``,
  ``--reply-port-src``, ``--reply-port-dst``; ``-r``, ``-q``), the reply tuple's:
  kube-proxy's ``--reply-src`` (pkg/proxy/conntrack/cleanup.go) names the endpoint
  an entry was DNATed to, or for one never DNATed, the original destination itself;
- ``--dst-nat ADDR``: the entry was DNATed (status DST_NAT_DONE, and its reply
  comes from an address other than the original destination: libnetfilter_conntrack's
  NFCT_GOPT_IS_DNAT) to ADDR (the reply's source). ``--dst-nat`` alone: DNATed at all.

IPv4 only, as ``conntrack -D`` without ``-f``. Any other option is refused
(ValueError): a filter read differently from conntrack(8) would delete other entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Sequence

from netlab.kernel.nfnl import IPS_DST_NAT_DONE, PROTO_NAMES, CtRecord

ANY = "*"  # --dst-nat without an address: any DNAT
# conntrack(8)'s option -> the original tuple's field it sets (src, dst: addresses; sport, dport: ports).
TUPLE_OPTIONS = {"-s": "src", "--orig-src": "src", "--src": "src", "-d": "dst", "--orig-dst": "dst", "--dst": "dst",
                 "--sport": "sport", "--orig-port-src": "sport", "--dport": "dport", "--orig-port-dst": "dport"}
# the same for the reply tuple's fields
REPLY_OPTIONS = {"-r": "reply_src", "--reply-src": "reply_src", "-q": "reply_dst", "--reply-dst": "reply_dst",
                 "--reply-port-src": "reply_sport", "--reply-port-dst": "reply_dport"}
PROTOCOLS = {name: num for num, name in PROTO_NAMES.items()}


@dataclass(frozen=True)
class CtFilter:
    """One ``conntrack -D`` filter: the original tuple's fields it names, and the DNAT it asks for."""

    proto: int | None = None
    src: str | None = None
    dst: str | None = None
    sport: int | None = None
    dport: int | None = None
    reply_src: str | None = None
    reply_dst: str | None = None
    reply_sport: int | None = None
    reply_dport: int | None = None
    dst_nat: str | None = None  # the address the entry was DNATed to; ANY: any; None: not asked

    @classmethod
    def parse(cls, argv: Sequence[str]) -> "CtFilter":
        """From conntrack(8)'s words (``["-p", "udp", "--orig-dst", "10.96.0.10", "--dst-nat", "10.244.1.3"]``)."""
        fields: dict[str, object] = {}
        words = list(argv)
        i = 0
        while i < len(words):
            opt = words[i]
            value = words[i + 1] if i + 1 < len(words) else None
            if opt == "--dst-nat" and (value is None or value.startswith("-")):
                fields["dst_nat"] = ANY
                i += 1
                continue
            if value is None:
                raise ValueError(f"conntrack filter {' '.join(words)}: {opt} needs a value")
            if opt in ("-p", "--proto", "--protonum"):
                if value not in PROTOCOLS and not value.isdigit():
                    raise ValueError(f"conntrack filter {' '.join(words)}: unknown protocol {value}")
                fields["proto"] = int(value) if value.isdigit() else PROTOCOLS[value]
            elif opt in TUPLE_OPTIONS or opt in REPLY_OPTIONS:
                key = TUPLE_OPTIONS.get(opt) or REPLY_OPTIONS[opt]
                if key in ("src", "dst", "reply_src", "reply_dst"):
                    fields[key] = str(IPv4Address(value))  # ValueError for anything but an IPv4 address
                else:
                    fields[key] = int(value)
            elif opt == "--dst-nat":
                if ":" in value:
                    raise ValueError(f"conntrack filter {' '.join(words)}: --dst-nat with a port is not supported")
                fields["dst_nat"] = str(IPv4Address(value))
            else:
                raise ValueError(f"conntrack filter {' '.join(words)}: option {opt} is not supported")
            i += 2
        if {"sport", "dport", "reply_sport", "reply_dport"} & fields.keys() and "proto" not in fields:
            raise ValueError(f"conntrack filter {' '.join(words)}: a port needs -p")  # as conntrack(8) says
        return cls(**fields)  # type: ignore[arg-type]

    def matches(self, r: CtRecord) -> bool:
        """Whether ``conntrack -D`` with this filter deletes entry ``r``."""
        o, p = r.orig, r.reply
        for want, got in ((self.src, o.get("src")), (self.dst, o.get("dst")),
                          (None if self.sport is None else str(self.sport), o.get("sport")),
                          (None if self.dport is None else str(self.dport), o.get("dport")),
                          (self.reply_src, p.get("src")), (self.reply_dst, p.get("dst")),
                          (None if self.reply_sport is None else str(self.reply_sport), p.get("sport")),
                          (None if self.reply_dport is None else str(self.reply_dport), p.get("dport"))):
            if want is not None and want != got:
                return False
        if self.proto is not None and self.proto != r.protonum:
            return False
        if self.dst_nat is not None:
            dnat = bool(r.status & IPS_DST_NAT_DONE) and r.reply.get("src") != o.get("dst")
            if not dnat or (self.dst_nat != ANY and r.reply.get("src") != self.dst_nat):
                return False
        return True


def matching(records: Sequence[CtRecord], filters: Sequence[CtFilter]) -> list[CtRecord]:
    """The entries any of ``filters`` deletes, each once, in the dump's order."""
    return [r for r in records if any(f.matches(r) for f in filters)]
