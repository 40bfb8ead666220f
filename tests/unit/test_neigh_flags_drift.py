"""Neighbour and FDB flags, and proxy neighbour entries, as status must see them (no root; QA 62k, qa62r).

The kernel's dumps are encoded by pyroute2 as the kernel sends them, decoded by netlab's codec, observed and
compared with the plan (test_overlay_drift's node). Each was "as planned" before, or said wrongly:

- flanneld's ARP entry for the other node's VTEP rewritten ``extern_learn``;
- a hand's ``nud reachable extern_learn`` entry (the kernel never ages it: it stays as a permanent one does);
- ``ip neigh add proxy IP [dev DEV]`` (the node answers ARP for IP): an extra entry;
- an FDB entry made ``dynamic extern_learn`` was said forgotten after the ageing time, its flag dropped.
"""

from __future__ import annotations

from ipaddress import IPv4Address

from pyroute2.netlink.rtnl.ndmsg import ndmsg

from netlab.kernel import rtnl, rtnl_neigh, rtnl_parse
from netlab.plan.resources import ProxyNeigh, resource_from_json
from test_overlay_drift import NS, PEER_MAC, drift, encode, fdb_entry, neigh


def _neigh(dst: str, state: int, flags: int, mac: str = PEER_MAC, index: int = 5) -> rtnl_parse.NeighMsg:
    return rtnl_parse.parse_neigh(encode(ndmsg, rtnl.RTM_NEWNEIGH,
                                         {"family": 2, "ifindex": index, "state": state, "flags": flags},
                                         [("NDA_DST", dst)] + ([("NDA_LLADDR", mac)] if mac else [])))


def test_extern_learn_on_the_planned_entry_is_drift():
    line, = drift(neighs=[_neigh("10.244.1.0", rtnl.NUD_PERMANENT, rtnl_neigh.NTF_EXT_LEARNED)])
    assert line == (f"different: neighbour 10.244.1.0 lladdr {PEER_MAC} dev flannel.1 in {NS} "
                    "(extern_learn (want none))"), line


def test_a_hands_extern_learn_entry_is_extra_and_said_never_aged():
    hand = _neigh("10.244.1.9", rtnl.NUD_REACHABLE, rtnl_neigh.NTF_EXT_LEARNED, "02:00:00:00:00:09")
    learned = _neigh("10.244.1.8", rtnl.NUD_REACHABLE, 0, "02:00:00:00:00:08")  # the kernel's own: it ages
    assert drift(neighs=[neigh(), hand, learned]) == [
        f"extra: neighbour 10.244.1.9 lladdr 02:00:00:00:00:09 dev flannel.1 extern_learn in {NS} "
        "(reachable, extern_learn: the kernel never ages it out)"]


def test_a_proxy_entry_is_extra_with_what_it_makes_the_node_do():
    on_dev = _neigh("10.244.0.77", 0, rtnl_neigh.NTF_PROXY, mac="")
    anywhere = _neigh("10.244.0.78", 0, rtnl_neigh.NTF_PROXY, mac="", index=0)
    lines = drift(proxies=[on_dev, anywhere])
    assert lines == [  # one on no device is left out (observe.py: of an origin the full suite did not show)
        f"extra: proxy neighbour 10.244.0.77 dev flannel.1 in {NS} (the node answers ARP for 10.244.0.77 on "
        "flannel.1 with its own MAC)"]
    assert ProxyNeigh(netns=NS, dst=IPv4Address("10.244.0.78")).describe().startswith("proxy neighbour 10.244.0.78")
    proxy = ProxyNeigh(netns=NS, dst=IPv4Address("10.244.0.77"), dev="flannel.1")
    assert resource_from_json(proxy.to_json()) == proxy
    assert proxy.command() == f"ip -n {NS} neigh add proxy 10.244.0.77 dev flannel.1"


def test_an_fdb_entry_that_never_ages_keeps_its_flag_in_the_words():
    entry = fdb_entry(state=rtnl.NUD_REACHABLE)
    kept = rtnl_parse.NeighMsg(**{**entry.__dict__, "flags": entry.flags | rtnl_neigh.NTF_EXT_LEARNED})
    line, = drift(fdb=[kept])
    assert line == (f"different: fdb {PEER_MAC} dst 192.168.122.3 dev flannel.1 in {NS} "
                    "(state dynamic (want permanent), extern_learn (want none))"), line
    aged, = drift(fdb=[entry])
    assert "ageing time" in aged and "extern_learn" not in aged, aged
