"""How ``iptables-save`` prints back a rule that was written another way.

iptables parses a rule into the kernel's structures (``ipt_entry``: addresses,
interfaces and protocol, then each match, then the target) and ``iptables-save``
prints those structures, not the text it was given. So the same rule comes back
in a fixed form, whichever way kube-proxy or Flannel wrote it:

- ``-s``, ``-d``, ``-i``, ``-o``, ``-p`` first, in that order, addresses with
  their mask (``-d 10.96.0.10`` -> ``-d 10.96.0.10/32``);
- then the matches in the order given, each with its options as its
  extension's ``save`` function prints them (``-p tcp`` then a port option
  of no match given, ``--dport 80``: ``-m tcp``, which iptables adds where that
  option stands, after the matches before it): tcp's, udp's and sctp's options
  in their order (``--sport``, ``--dport``, ``--tcp-option``, ``--tcp-flags``),
  by their short names (``--destination-port`` -> ``--dport``; multiport's
  ``--destination-ports`` -> ``--dports``), ports as the numbers the kernel
  keeps (:func:`_port_range`), ``--syn`` as the flags it tests (:func:`_tcp_flags`);
  a comment quoted unless it is only
  ``[A-Za-z0-9_-]`` (libxtables ``xtables_save_string``); a probability as the
  fixed-point fraction of 2^31 the kernel keeps (``lround(p * 2^31)``, printed
  ``%.11f``); ``recent`` options in a fixed order with their defaults
  (``--mask 255.255.255.255 --rsource``); marks in hexadecimal without
  leading zeros;
- then the target: ``MARK --or-mark M`` is kept as ``--set-xmark M/M``,
  ``--xor-mark M`` as ``--set-xmark M/0x0``; a ``REJECT`` without
  ``--reject-with`` gets the default ``icmp-port-unreachable``.

Only what the lab's rules use is handled; anything else is kept as written.
``tests/integration/test_netfilter.py`` restores the lab's payloads in a real
namespace and checks that ``iptables-save`` prints exactly these forms.
"""

from __future__ import annotations

import math
import re
from ipaddress import ip_network

_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\S+')  # a quoted word may hold \" (portmap's comments)
_ESCAPED = re.compile(r"\\(.)")
_NO_QUOTE = frozenset("_-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_BASIC = ("-s", "-d", "-i", "-o", "-p")
_RECENT_ORDER = ("--set", "--rcheck", "--update", "--remove", "--seconds", "--reap", "--hitcount", "--rttl",
                 "--name", "--mask", "--rsource", "--rdest")
IMPLICIT = frozenset({"tcp", "udp", "sctp"})  # -p X then an option of X's match, without -m X
# Each option of the port matches by the name their save functions print it with (libxt_tcp, libxt_udp,
# libxt_sctp, libxt_multiport), and the order they print them in (tcp_save: ports, option, flags)
PORT_SAVED = {"--source-port": "--sport", "--sport": "--sport", "--destination-port": "--dport", "--dport": "--dport",
              "--syn": "--syn", "--tcp-flags": "--tcp-flags", "--tcp-option": "--tcp-option",
              "--chunk-types": "--chunk-types"}
MULTIPORT_SAVED = {"--source-ports": "--sports", "--sports": "--sports", "--destination-ports": "--dports",
                   "--dports": "--dports", "--ports": "--ports"}
_SAVE_ORDER = ("--sport", "--dport", "--tcp-option", "--tcp-flags", "--chunk-types")
TCP_FLAGS = ("FIN", "SYN", "RST", "PSH", "ACK", "URG")  # bit 0 up: the order print_tcpf names them in
SYN_FLAGS = "FIN,SYN,RST,ACK"  # --syn: --tcp-flags FIN,SYN,RST,ACK SYN
ALL_PORTS = (0, 0xFFFF)
_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*")  # strtoul's base 0: hexadecimal, octal, decimal
# The options of the matches that take a port (libxt_tcp, libxt_udp, libxt_sctp, libxt_multiport), by which an
# option is told to belong to one of them wherever it stands in the rule (_owner)
_PORTS = ("--source-port", "--sport", "--destination-port", "--dport")
OPTIONS = {"tcp": _PORTS + ("--syn", "--tcp-flags", "--tcp-option"), "udp": _PORTS,
           "sctp": _PORTS + ("--chunk-types",),
           "multiport": ("--source-ports", "--sports", "--destination-ports", "--dports", "--ports")}
ANY = "0.0.0.0/0"  # -s/-d of any address, which iptables-save leaves out (loadBalancerSourceRanges: [0.0.0.0/0])
FIXED_ONE = 0x80000000  # xt_statistic: a probability is kept as a fraction of 2^31


def save_string(value: str) -> str:
    """libxtables ``xtables_save_string``: bare when only [A-Za-z0-9_-], else quoted with \\ escapes."""
    if value and all(c in _NO_QUOTE for c in value):
        return value
    return '"' + "".join("\\" + c if c in "\"\\'" else c for c in value) + '"'


def saved_probability(text: str) -> str:
    """``--probability 0.3333333333`` as iptables-save prints it: ``0.33333333349``."""
    fixed = math.floor(FIXED_ONE * float(text) + 0.5)  # lround: half away from zero (p >= 0)
    return f"{fixed / FIXED_ONE:.11f}"


def _hex(value: str) -> str:
    return f"{int(value, 0):#x}"


def _mark(value: str) -> str:
    """``0x00004000/0x00004000`` -> ``0x4000/0x4000`` (a full mask is not printed)."""
    mark, _, mask = value.partition("/")
    if not mask or int(mask, 0) == 0xFFFFFFFF:
        return _hex(mark)
    return f"{_hex(mark)}/{_hex(mask)}"


def _options(words: list[str], start: int) -> list[tuple[bool, str, list[str]]]:
    """``[! ]--opt [values...]`` runs from ``start``, as (inverted, option, values)."""
    out: list[tuple[bool, str, list[str]]] = []
    i, neg = start, False
    while i < len(words):
        w = words[i]
        if w == "!":
            neg, i = True, i + 1
            continue
        j = i + 1
        while j < len(words) and not words[j].startswith("-") and words[j] != "!":
            j += 1
        out.append((neg, w, words[i + 1:j]))
        neg, i = False, j
    return out


def _saved_name(option: str, names: dict[str, str]) -> str:
    """An option as its match prints it: by its own name, or that of the one option it abbreviates (getopt takes
    ``--destination-port`` for multiport's ``--destination-ports``)."""
    if option in names:
        return names[option]
    meant = {saved for name, saved in names.items() if name.startswith(option)}
    return meant.pop() if len(meant) == 1 else option


def _number(text: str) -> int | None:
    """A port as xtables_parse_port reads a number (strtoul, base 0); None: not a number (a service's name)."""
    if not _NUMBER.fullmatch(text):
        return None
    if text[:2].lower() == "0x":
        return int(text, 16)
    return int(text, 8) if text.startswith("0") else int(text)


def _port_range(value: str) -> tuple[int, int] | None:
    """tcp's, udp's and sctp's ``--sport 80:80``, ``:80``, ``80:`` as the range the kernel keeps: (80, 80), (0, 80),
    (80, 65535). None: not numbers (a service's name, which iptables looks up)."""
    low, colon, high = value.partition(":")
    lo, hi = (_number(low) if low else 0), (_number(high) if high else ALL_PORTS[1])
    if lo is None or hi is None:
        return None
    return (lo, hi) if colon else (lo, lo)


def _port_list(value: str) -> str:
    """multiport's ports with each number as it prints it (``007,010:012`` -> ``7,8:10``); as written when they
    are not numbers."""
    out = []
    for part in value.split(","):
        numbers = [_number(p) for p in part.split(":")]
        if None in numbers:
            return value
        out.append(":".join(str(n) for n in numbers))
    return ",".join(out)


def _tcp_flags(names: str) -> str | None:
    """``SYN,ACK``, ``ALL``, ``NONE`` as print_tcpf prints the bits: each set one by name, lowest first."""
    bits = set()
    for name in names.upper().split(","):
        if name == "ALL":
            bits |= set(TCP_FLAGS)
        elif name in TCP_FLAGS:
            bits.add(name)
        elif name != "NONE":
            return None
    return ",".join(f for f in TCP_FLAGS if f in bits) or "NONE"


def _port_options(name: str, opts: list[tuple[bool, str, list[str]]]) -> list[tuple[bool, str, list[str]]]:
    """tcp's, udp's or sctp's (``name``) options as its save function prints them: by short names, in its order;
    tcp's and udp's whole port range and a flag test of no flags left out (sctp's save prints its range; an
    inverted one is kept as written: the two backends print it differently, iptables-nft dropping the whole
    match)."""
    out = []
    for neg, opt, vals in opts:
        opt = _saved_name(opt, PORT_SAVED)
        if opt == "--syn":
            opt, vals = "--tcp-flags", [SYN_FLAGS, "SYN"]
        if opt in ("--sport", "--dport") and len(vals) == 1:
            ports = _port_range(vals[0])
            if ports == ALL_PORTS and not neg and name != "sctp":
                continue
            if ports is not None:
                vals = [str(ports[0]) if ports[0] == ports[1] else f"{ports[0]}:{ports[1]}"]
        elif opt == "--tcp-flags" and len(vals) == 2:
            flags = [_tcp_flags(v) for v in vals]
            if flags == ["NONE", "NONE"] and not neg:
                continue
            if None not in flags:
                vals = [str(f) for f in flags]
        elif opt == "--tcp-option" and len(vals) == 1 and _number(vals[0]) is not None:
            vals = [str(_number(vals[0]))]
        out.append((neg, opt, vals))
    rank = {opt: i for i, opt in enumerate(_SAVE_ORDER)}
    return sorted(out, key=lambda o: rank.get(o[1], len(rank)))


def _match(name: str, opts: list[tuple[bool, str, list[str]]]) -> str:
    if name == "recent":
        given = {opt: vals for _, opt, vals in opts}
        given.setdefault("--mask", ["255.255.255.255"])
        if "--rsource" not in given and "--rdest" not in given:
            given["--rsource"] = []
        opts = [(False, opt, given[opt]) for opt in _RECENT_ORDER if opt in given]
    elif name in IMPLICIT:
        opts = _port_options(name, opts)
    parts = []
    for neg, opt, vals in opts:
        if name == "comment" and opt == "--comment":
            vals = [save_string(" ".join(vals))]
        elif name == "statistic" and opt == "--probability":
            vals = [saved_probability(vals[0])]
        elif name == "multiport":
            opt = _saved_name(opt, MULTIPORT_SAVED)
            vals = [_port_list(vals[0])] if len(vals) == 1 else vals
        elif name == "mark" and opt == "--mark":
            vals = [_mark(vals[0])]
        parts.append(" ".join((["!"] if neg else []) + [opt] + vals))
    return " ".join([f"-m {name}"] + parts)


def _target(flag: str, name: str, opts: list[tuple[bool, str, list[str]]]) -> str:
    parts = []
    for _, opt, vals in opts:
        if name == "MARK" and opt == "--or-mark":
            opt, vals = "--set-xmark", [f"{_hex(vals[0])}/{_hex(vals[0])}"]
        elif name == "MARK" and opt == "--xor-mark":
            opt, vals = "--set-xmark", [f"{_hex(vals[0])}/0x0"]
        elif name == "MARK" and opt == "--set-mark":
            opt, vals = "--set-xmark", [f"{_hex(vals[0])}/0xffffffff"]
        elif name == "MARK" and opt == "--set-xmark":
            mark, _, mask = vals[0].partition("/")
            vals = [f"{_hex(mark)}/{_hex(mask or '0xffffffff')}"]
        parts.append(" ".join([opt] + vals))
    if name == "REJECT" and not any(opt == "--reject-with" for _, opt, _ in opts):
        parts.append("--reject-with icmp-port-unreachable")
    return " ".join([f"{flag} {name}"] + parts)


def _saved_address(value: str) -> str:
    """``-d 10.96.0.10`` -> ``10.96.0.10/32``; the kernel keeps a network, so ``10.244.0.2/24`` (portmap's
    ``-s``: the pod's address and mask) -> ``10.244.0.0/24``."""
    try:
        return str(ip_network(value, strict=False))
    except ValueError:
        return value if "/" in value else value + "/32"


def _owner(option: str, proto: str, loaded: list[str]) -> str | None:
    """The match that takes ``option``, as iptables finds it: a match already in the rule whose option it is (or,
    as getopt reads it, the one whose option it alone abbreviates: multiport's ``--dports`` for ``--dport``), else
    the protocol's own match, which iptables then adds to the rule (``-p tcp -m comment ... --dport 80`` is
    ``-m comment ... -m tcp --dport 80``). None: a match whose options are not known here (the latest one)."""
    known = [(name, OPTIONS[name]) for name in dict.fromkeys(loaded) if name in OPTIONS]
    for said in (lambda o: o == option, lambda o: o.startswith(option)):
        takers = {name for name, options in known if any(said(o) for o in options)}
        if len(takers) == 1:
            return takers.pop()
    if proto in IMPLICIT and proto not in loaded and option in OPTIONS[proto]:
        return proto
    return None


def saved_rule(line: str) -> str:
    """``-A CHAIN <spec as written>`` -> the line ``iptables-save`` prints for that rule."""
    words = [_ESCAPED.sub(r"\1", w[1:-1]) if len(w) > 1 and w[0] == w[-1] == '"' else w
             for w in _TOKEN.findall(line)]
    if len(words) < 2 or words[0] != "-A":
        raise ValueError(f"not an -A rule: {line!r}")
    basic: dict[str, str] = {}
    matches: list[tuple[str, list[tuple[bool, str, list[str]]]]] = []
    target = ""
    i, neg = 2, False
    while i < len(words):
        w = words[i]
        if w == "!":
            neg, i = True, i + 1
        elif w in _BASIC:
            value = words[i + 1]
            if w in ("-s", "-d"):
                value = _saved_address(value)
            elif w == "-p":
                value = value.lower()
            if value == ANY and not neg:  # any address: no match at all, nothing printed (a negated one is)
                basic.pop(w, None)
            else:
                basic[w] = ("! " if neg else "") + f"{w} {value}"
            neg, i = False, i + 2
        elif w == "-m":
            matches.append((words[i + 1], []))
            i += 2
        elif w in ("-j", "-g"):
            target = _target(w, words[i + 1], _options(words, i + 2))
            break
        else:
            # An option of the match that takes it (_owner), else of the latest one (kube-proxy writes "-m tcp -p
            # tcp -d X --dport 80"; portmap "-p tcp --dport 80"; "-p tcp -m comment ... --dport 80" is -m tcp's).
            j = i + 1
            while j < len(words) and not words[j].startswith("-") and words[j] != "!":
                j += 1
            proto = basic.get("-p", "").rpartition(" ")[2]
            loaded = [name for name, _ in matches]
            owner = _owner(w, proto, loaded)
            if owner is None and not matches and proto in IMPLICIT:
                owner = proto
            if owner == proto and proto not in loaded:
                matches.append((proto, []))  # iptables loads the protocol's match itself, here (portmap's --dport)
            if not matches:
                raise ValueError(f"option {w} outside any match: {line!r}")
            at = max(k for k, (name, _) in enumerate(matches) if owner in (None, name))  # its match, or the latest
            matches[at][1].append((neg, w, words[i + 1:j]))
            neg, i = False, j
    out = [f"-A {words[1]}"] + [basic[k] for k in _BASIC if k in basic]
    out += [_match(name, opts) for name, opts in matches]
    if target:
        out.append(target)
    return " ".join(out)
