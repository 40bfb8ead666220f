"""A bridge's own settings and its ports', and the static FDB entries a hand adds on a port: rtnetlink both ways.

A bridge's settings (IFLA_BR_* in its IFLA_INFO_DATA: ``ip -d link show type bridge``) come in the link dump
every status reads anyway, a port's (IFLA_BRPORT_* in IFLA_PROTINFO: ``bridge -d link``) in the AF_BRIDGE link
dump it reads for hairpin and STP state. Each is said as a word and its value as ``ip``/``bridge`` print and take
them (``stp_state 1``, ``bcast_flood off``), and only where it is not what the kernel gives a new bridge or port:
netlab makes cni0 and br0 with the kernel's defaults, and so does the bridge CNI plugin (plugins/main/bridge:
``netlink.Bridge`` with only a name and MTU; a port with only its hairpin mode, and ``isolated`` off unless
``portIsolation``), so a plan's words are none.

A changelink carries the planned value of each setting that differs (RTM_NEWLINK with the bridge's kind and
data; RTM_SETLINK AF_BRIDGE with IFLA_PROTINFO for a port), as ``ip link set dev BR type bridge stp_state 0``
and ``bridge link set dev PORT bcast_flood on`` do.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from netlab.kernel.netlink import NLM_F_CREATE, NLM_F_EXCL, attrs, mac, message, nested, string, u8, u16, u32
from netlab.kernel.rtnl import (AF_BRIDGE, IFLA_INFO_DATA, IFLA_INFO_KIND, IFLA_LINKINFO, IFLA_PROTINFO, NDMSG,
                                NUD_NOARP, NUD_PERMANENT, NUD_REACHABLE, RTM_DELNEIGH, RTM_NEWLINK, RTM_NEWNEIGH,
                                RTM_SETLINK, _ifinfo, hairpin_set, port_state_set)

if TYPE_CHECKING:  # a probe loads this module, not the plan's
    from netlab.plan.bridge_fdb import PortFdb

NTF_MASTER, NTF_EXT_LEARNED, NTF_STICKY = 0x04, 0x10, 0x40
# An FDB entry's flags a hand may add it with, as `bridge fdb` says them (besides master, which every one has):
# extern_learn, an entry the bridge never ages out (br_fdb_cleanup skips it) nor moves by learning
FDB_FLAGS = ((NTF_EXT_LEARNED, "extern_learn"), (NTF_STICKY, "sticky"))
NDA_LLADDR, NDA_VLAN = 2, 5

# (attribute, word, size in bytes, the kernel's default), in the order `ip -d link` prints them
BRIDGE_SETTINGS: tuple[tuple[int, str, int, int], ...] = (
    (1, "forward_delay", 4, 1500), (2, "hello_time", 4, 200), (3, "max_age", 4, 2000), (4, "ageing_time", 4, 30000),
    (5, "stp_state", 4, 0), (6, "priority", 2, 32768), (7, "vlan_filtering", 1, 0), (39, "vlan_default_pvid", 2, 1),
    (9, "group_fwd_mask", 2, 0), (22, "mcast_router", 1, 1), (23, "mcast_snooping", 1, 1),
    (25, "mcast_querier", 1, 0), (36, "nf_call_iptables", 1, 0), (37, "nf_call_ip6tables", 1, 0),
    (38, "nf_call_arptables", 1, 0))

# A port's: on/off ones (size 1) said "on"/"off", priority and cost as numbers. A veth's default cost is 2
# (br_port_cost: its ethtool speed, 10000 Mb/s); hairpin (MODE) and the STP state are Veth's own fields
PORT_SETTINGS: tuple[tuple[int, str, int, int], ...] = (
    (2, "priority", 2, 32), (3, "cost", 4, 2), (5, "guard", 1, 0), (6, "root_block", 1, 0), (7, "fastleave", 1, 0),
    (8, "learning", 1, 1), (9, "flood", 1, 1), (10, "proxy_arp", 1, 0), (12, "proxy_arp_wifi", 1, 0),
    (27, "mcast_flood", 1, 1), (28, "mcast_to_unicast", 1, 0), (29, "vlan_tunnel", 1, 0), (30, "bcast_flood", 1, 1),
    (32, "neigh_suppress", 1, 0), (33, "isolated", 1, 0), (39, "locked", 1, 0), (40, "mab", 1, 0))

_FORMATS = {1: "=B", 2: "=H", 4: "=I"}


def _read(a: dict[int, bytes], table: tuple[tuple[int, str, int, int], ...]) -> dict[str, int]:
    out = {}
    for kind, word, size, _default in table:
        v = a.get(kind)
        if v is not None and len(v) >= size:
            out[word] = struct.unpack_from(_FORMATS[size], v)[0]
    return out


def _words(values: dict[str, int], table: tuple[tuple[int, str, int, int], ...], onoff: bool) -> tuple[str, ...]:
    out = []
    for _kind, word, size, default in table:
        value = values.get(word, default)
        if value != default:
            out.append(f"{word} {('on' if value else 'off') if onoff and size == 1 else value}")
    return tuple(out)


def _values(words: tuple[str, ...], table: tuple[tuple[int, str, int, int], ...]) -> dict[str, int]:
    """Every setting of ``table``: the value ``words`` say, the default otherwise."""
    said = dict(w.split(" ", 1) for w in words)
    out = {}
    for _kind, word, _size, default in table:
        text = said.get(word)
        out[word] = default if text is None else 1 if text == "on" else 0 if text == "off" else int(text)
    return out


def _encode(want: tuple[str, ...], have: tuple[str, ...], table: tuple[tuple[int, str, int, int], ...]) -> bytes:
    a, b = _values(want, table), _values(have, table)
    enc = {1: u8, 2: u16, 4: u32}
    return b"".join(enc[size](kind, a[word]) for kind, word, size, _ in table if a[word] != b[word])


def bridge_words(info_data: bytes | None) -> tuple[str, ...]:
    """A bridge's settings away from the kernel's defaults, from its IFLA_INFO_DATA."""
    return bridge_options(_read(attrs(info_data), BRIDGE_SETTINGS) if info_data else {})


def bridge_options(values: dict[str, int]) -> tuple[str, ...]:
    return _words(values, BRIDGE_SETTINGS, onoff=False)


def bridge_values(words: tuple[str, ...]) -> dict[str, int]:
    return _values(words, BRIDGE_SETTINGS)


def port_words(protinfo: dict[int, bytes]) -> tuple[str, ...]:
    """A port's settings away from the kernel's defaults, from its IFLA_PROTINFO's attributes."""
    return _words(_read(protinfo, PORT_SETTINGS), PORT_SETTINGS, onoff=True)


def port_values(words: tuple[str, ...]) -> dict[str, int]:
    return _values(words, PORT_SETTINGS)


def canonical(words: tuple[str, ...], table: str = "port") -> tuple[str, ...]:
    """``words`` as a dump says them: in the kernel's order, the defaults left out (the fake kernel's)."""
    if table == "port":
        return _words(port_values(words), PORT_SETTINGS, onoff=True)
    return bridge_options(bridge_values(words))


def default_of(word: str, table: str = "port") -> str:
    """The kernel's default of a setting, in its words (``on``, ``32768``)."""
    for _kind, name, size, default in PORT_SETTINGS if table == "port" else BRIDGE_SETTINGS:
        if name == word:
            return ("on" if default else "off") if table == "port" and size == 1 else str(default)
    return "?"


def bridge_set(index: int, want: tuple[str, ...], have: tuple[str, ...]) -> bytes:
    """``ip link set dev IDX type bridge NAME VALUE ...``: the settings of ``want`` that ``have`` does not hold."""
    data = nested(IFLA_INFO_DATA, _encode(want, have, BRIDGE_SETTINGS))
    return message(RTM_NEWLINK, 0, _ifinfo(index) + nested(IFLA_LINKINFO, string(IFLA_INFO_KIND, "bridge"), data))


def port_set(index: int, want: tuple[str, ...], have: tuple[str, ...]) -> bytes:
    """``bridge link set dev IDX NAME on|off|VALUE ...``: nested in IFLA_PROTINFO as for hairpin."""
    body = _ifinfo(index, family=AF_BRIDGE) + nested(IFLA_PROTINFO, _encode(want, have, PORT_SETTINGS))
    return message(RTM_SETLINK, 0, body)


# A link's attributes (kernel.base.LINK_ATTRS) that are its bridge's to change, not `ip link set`'s
OWN = ("hairpin", "port_state", "settings", "port_settings")


def changes(index: int, old: object, new: object, attrs_changed: list[str]) -> list[bytes]:
    """The bridge's messages that turn ``old`` (a link of plan.resources; None: one just made, with the kernel's
    defaults) into ``new`` for the attributes of ``attrs_changed``: hairpin, STP state, the port's and the
    bridge's settings, in that order."""
    out = []
    if "hairpin" in attrs_changed:
        out.append(hairpin_set(index, bool(getattr(new, "hairpin", False))))
    state = getattr(new, "port_state", None)
    if "port_state" in attrs_changed and state is not None:  # `bridge link set dev PORT state forwarding`
        out.append(port_state_set(index, state))
    for name, build in (("port_settings", port_set), ("settings", bridge_set)):
        want, have = getattr(new, name, ()), getattr(old, name, ())
        if name in attrs_changed and want != have:
            out.append(build(index, want, have))
    return out


# `dynamic` (NUD_REACHABLE): an entry that ages, a hand's only with sticky (kept_state)
FDB_KEPT = {"static": NUD_NOARP, "permanent": NUD_PERMANENT, "dynamic": NUD_REACHABLE}


def kept_state(state: int, flags: int = 0) -> str | None:
    """An FDB entry a hand added (``bridge fdb add ... static|permanent``, or ``dynamic sticky``), in its state's
    word; None for a learned one (the kernel ages it). Learning never sets NTF_STICKY nor NTF_EXT_LEARNED (an entry
    the kernel never ages: `bridge fdb add ... master extern_learn`, qa62r): a sticky entry, dynamic or
    not, is a hand's (the kernel refreshes a dynamic one on each frame from its MAC but never moves it, so the MAC
    stays pinned to that port; QA fx61a 1)."""
    if state & NUD_PERMANENT:
        return "permanent"
    if state & NUD_NOARP:
        return "static"
    return "dynamic" if flags & (NTF_STICKY | NTF_EXT_LEARNED) else None


def fdb_flag_words(flags: int) -> tuple[str, ...]:
    """An FDB entry's ndm_flags as ``bridge fdb`` says them (``sticky``)."""
    return tuple(word for bit, word in FDB_FLAGS if flags & bit)


def _fdb(index: int, lladdr: str, vlan: int | None, state: int, words: tuple[str, ...] = ()) -> bytes:
    flags = NTF_MASTER
    for bit, word in FDB_FLAGS:
        flags |= bit if word in words else 0
    body = NDMSG.pack(AF_BRIDGE, index, state, flags, 0) + mac(NDA_LLADDR, lladdr)
    return body + (u16(NDA_VLAN, vlan) if vlan else b"")


def port_fdb_add(index: int, lladdr: str, vlan: int | None, state: str, flags: tuple[str, ...] = ()) -> bytes:
    """``bridge fdb add MAC dev IDX [vlan V] master static|permanent [sticky]``."""
    return message(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_EXCL, _fdb(index, lladdr, vlan, FDB_KEPT[state], flags))


def port_fdb_del(index: int, lladdr: str, vlan: int | None) -> bytes:
    """``bridge fdb del MAC dev IDX [vlan V] master``."""
    return message(RTM_DELNEIGH, 0, _fdb(index, lladdr, vlan, 0))


def port_fdb(verb: str, index: int, e: PortFdb) -> bytes:
    """An op's message for a bridge's entry: ``del`` deletes it, anything else adds it (with its flags)."""
    return port_fdb_del(index, e.lladdr, e.vlan) if verb == "del" else \
        port_fdb_add(index, e.lladdr, e.vlan, e.state, e.flags)
