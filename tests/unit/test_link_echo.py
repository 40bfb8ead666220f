"""A link's notification that only says it came to run (the kernel's link watch, up to a second late on a busy
machine) is no change the watcher says; a link set down, deleted, its MTU, address or master changed, its
carrier lost, still is. Real notifications, captured in a throwaway namespace (golden/link_notifications.txt)."""

from __future__ import annotations

import os

from netlab.kernel import events, netlink
from netlab.kernel.link_echo import Links

GOLDEN = os.path.join(os.path.dirname(__file__), "golden", "link_notifications.txt")


def _captured() -> dict[int, netlink.Msg]:
    out = {}
    with open(GOLDEN) as fh:
        for line in fh:
            if line.startswith("#"):
                continue
            i, _step, mtype, body = line.split()
            out[int(i)] = netlink.Msg(int(mtype), 0, 0, bytes.fromhex(body))
    return out


def _said(links: Links | None, msgs: dict[int, netlink.Msg], which: range | list[int]) -> dict[int, str | None]:
    return {i: events.describe(msgs[i], links=links) for i in which}


def test_the_link_watch_catching_up_after_the_links_were_set_up_is_no_change():
    msgs = _captured()
    links = Links(msgs[i] for i in range(0, 8))  # the links as made: the listener's dump when it opens
    # `ip link set up` of the three: the apply's own change, said (the watcher's first apply is done before it
    # listens; a repair's echo is sorted by the round after it)
    assert _said(links, msgs, range(8, 12)) == {8: "link wa up", 9: "link wnbr up", 10: "link wb up",
                                                11: "bridge port wb disabled"}
    # Then the link watch: the port forwarding, the three operationally up (IFF_RUNNING, operstate UP) and nothing
    # else changed. Was "bridge port wb forwarding; link wb up; link wa up; link wnbr up" (CI: "link eth0 up; link
    # cni0 up", a second after the watcher said it watched).
    assert _said(links, msgs, range(12, 17)) == {i: None for i in range(12, 17)}


def test_a_listener_that_opened_after_the_links_were_set_up_hears_the_link_watch_as_no_change():
    msgs = _captured()
    links = Links([msgs[i] for i in range(0, 8)] + [msgs[i] for i in range(8, 12)])  # dumped once set up
    assert _said(links, msgs, range(12, 17)) == {i: None for i in range(12, 17)}
    # and once more, as when the dump came after the link watch's change and before its message
    assert _said(links, msgs, [12, 14, 15, 16]) == {12: None, 14: None, 15: None, 16: None}


def test_a_change_of_a_running_link_is_said():
    msgs = _captured()
    links = Links(msgs[i] for i in range(0, 17))  # the lab up and running
    assert _said(links, msgs, [17, 18]) == {17: "link wa up", 18: "link wa up"}  # its MTU, then its address
    # wb out of the bridge: its first word is the bridge dropping its promiscuity (ifi_change IFF_PROMISC, which
    # the flags do not show: nothing of the link as read changed), the next ones say it
    assert _said(links, msgs, range(19, 23)) == {19: None, 20: "bridge port wb disabled",
                                                 21: "bridge port wb released", 22: "link wb up"}
    # wa set down: wb's carrier lost (LOWERLAYERDOWN), though it is still up
    assert _said(links, msgs, [34, 35, 36, 39]) == {34: "link wa down", 35: "bridge port wb disabled",
                                                    36: "link wb up", 39: "link wa deleted"}


def test_a_link_the_listener_never_heard_of_is_said_as_before():
    msgs = _captured()
    assert _said(Links(), msgs, [14, 15, 16]) == {14: "link wb up", 15: "link wa up", 16: "link wnbr up"}
    assert _said(None, msgs, [12, 14]) == {12: "bridge port wb forwarding", 14: "link wb up"}


def _with_port_settings(m: netlink.Msg, *attrs: bytes) -> netlink.Msg:
    """A bridge port's AF_BRIDGE word as ``m`` (its header, name, master), its IFLA_PROTINFO holding ``attrs``."""
    from netlab.kernel import rtnl

    a = netlink.attrs(m.body, rtnl.IFINFO.size)
    body = m.body[:rtnl.IFINFO.size] + b"".join(netlink.attr(k, v) for k, v in a.items() if k != rtnl.IFLA_PROTINFO)
    return netlink.Msg(m.mtype, 0, 0, body + netlink.nested(rtnl.IFLA_PROTINFO, netlink.u8(rtnl.IFLA_BRPORT_STATE, 3),
                                                           *attrs))


def test_a_ports_settings_changed_are_said_though_it_still_forwards():
    """`bridge link set dev PORT bcast_flood off`: the bridge's word is the port's, forwarding as before (it was
    taken for the link watch's echo); its settings are what changed."""
    msgs = _captured()
    links = Links(msgs[i] for i in range(0, 17))  # the lab up and running
    plain = _with_port_settings(msgs[12])
    assert events.describe(plain, links=links) is None  # the link watch's echo, as before
    off = _with_port_settings(msgs[12], netlink.u8(30, 0))  # IFLA_BRPORT_BCAST_FLOOD 0
    assert events.describe(off, links=links) == "bridge port wb forwarding (bcast_flood off)"
    assert events.describe(plain, links=links) == "bridge port wb forwarding"  # and set back


def test_an_fdb_entry_a_hand_adds_to_a_bridge_is_said_a_learned_one_is_not():
    """`bridge fdb add MAC dev PORT master static`: the lab's drift (plan/bridge_fdb.py); the kernel's learning
    is not."""
    from netlab.kernel import rtnl

    def entry(state: int) -> netlink.Msg:
        body = rtnl.NDMSG.pack(rtnl.AF_BRIDGE, 3, state, 0, 0) + netlink.mac(2, "02:00:00:00:00:07")
        return netlink.Msg(rtnl.RTM_NEWNEIGH, 0, 0, body + netlink.u32(rtnl.NDA_MASTER, 2))

    assert events.describe(entry(rtnl.NUD_NOARP)) == "fdb entry 02:00:00:00:00:07 static added"
    assert events.describe(entry(rtnl.NUD_PERMANENT)) == "fdb entry 02:00:00:00:00:07 permanent added"
    assert events.describe(entry(rtnl.NUD_REACHABLE)) is None
