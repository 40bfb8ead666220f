"""Which link notifications only say a link came to run: the kernel's link watch catching up.

A link set up is not running yet: its carrier comes, then the kernel's link watch (a work item that needs the
RTNL lock, which it delays for non-urgent events) sets its operstate UP and IFF_RUNNING, and sends an
RTM_NEWLINK of it, its bridge's, and its bridge port's (AF_BRIDGE, "forwarding"). On a busy machine that comes
up to a second or more after the command that set the links up, when the watcher already listens: it said
"link eth0 up; link cni0 up" of its own first apply as something it saw (CI: the line then took the test's
change, made a moment later, for drift, and repaired it while the test held the lab).

Such a message changes nothing but the link's carrier bits (IFF_LOWER_UP, IFF_RUNNING, IFF_DORMANT, the
operstate and its counters) towards running: compared with the last word of that link (a dump when the
listener opens, then each notification), everything else (flags, name, MTU, address, master, peer, alias, group,
queue length, kind settings) is the same, no carrier bit lost, the link up and running. Anything else is
someone's change: a link set down, deleted, its MTU, address or master changed, its carrier lost (its peer set
down). A link the listener never heard of (made since it opened, a namespace it could not read) is said, as
before.
"""

from __future__ import annotations

from typing import Iterable

from netlab.kernel import netlink, rtnl, rtnl_parse

IFF_LOWER_UP, IFF_DORMANT = 0x10000, 0x20000
CARRIER = rtnl.IFF_RUNNING | IFF_LOWER_UP | IFF_DORMANT  # the bits the link watch sets and clears

Key = tuple[object, ...]


def _flags(m: netlink.Msg) -> int:
    return int(rtnl_parse.IFINFO.unpack_from(m.body)[3])


def _key(m: netlink.Msg) -> Key:
    """What someone changes of a link: its flags but the carrier's, and its settings (LinkMsg's compared fields)."""
    link = rtnl_parse.parse_link(m)
    return (_flags(m) & ~CARRIER, link, tuple(sorted(link.data.items())))


class Links:
    """The last word of each link of one namespace (by index), to tell a link watch echo from a change."""

    def __init__(self, dump: Iterable[netlink.Msg] = ()):
        self._seen: dict[int, tuple[Key, int]] = {}
        # each bridge port's settings as last heard (rtnl_bridge's words; none heard: the kernel's defaults)
        self._ports: dict[int, tuple[str, ...]] = {}
        for m in dump:
            self.note(m)

    def note(self, m: netlink.Msg) -> bool:
        """Remember a notification (or dump entry) of a link; True when it only says the link came to run."""
        if m.mtype not in (rtnl.RTM_NEWLINK, rtnl.RTM_DELLINK) or len(m.body) < rtnl_parse.IFINFO.size:
            return False
        family, _type, index, flags, _change = rtnl_parse.IFINFO.unpack_from(m.body)
        if m.mtype == rtnl.RTM_DELLINK:
            if family != rtnl.AF_BRIDGE:
                self._seen.pop(index, None)
            return False
        if family == rtnl.AF_BRIDGE:  # a bridge port's word: its link's state is noted by the link's own message
            return self._port_runs(m, index, flags)
        key, before = _key(m), self._seen.get(index)
        self._seen[index] = (key, flags)
        return before is not None and before[0] == key and _runs(flags) and not before[1] & CARRIER & ~flags

    def _port_runs(self, m: netlink.Msg, index: int, flags: int) -> bool:
        """A bridge port forwarding, its link up and running, in the bridge it was last seen in: the link watch
        enabling the port as its carrier came (a port set blocking or disabled by hand is said; so are its
        settings changed: `bridge link set dev PORT bcast_flood off` sends the same forwarding word)."""
        before = self._seen.get(index)
        port = rtnl_parse.parse_bridge_port(m)
        same = self._ports.get(index, ()) == port.settings
        self._ports[index] = port.settings
        if before is None or not same or not _runs(flags) or port.state != "forwarding":
            return False
        link = before[0][1]
        assert isinstance(link, rtnl_parse.LinkMsg)
        return link.master == rtnl_parse.parse_link(m).master and before[0][0] == flags & ~CARRIER


def _runs(flags: int) -> bool:
    return bool(flags & rtnl.IFF_UP and flags & rtnl.IFF_RUNNING)
