"""Overlay drift that breaks traffic, as status must see it (no root; QA qa59f, fl59a).

The kernel's answers are encoded by pyroute2 as the kernel sends them (a dump of flannel.1, of its FDB, of the
node's neighbours), decoded by netlab's codec, turned into resources (realize/observe.py) and compared with the
plan's (realize/diff.py). Each of these was "all as planned" while the node's traffic to the other node's pods
was lost:

- an FDB entry with the plan's MAC and remote but another UDP port, VNI or underlay device (the kernel says
  NDA_PORT, NDA_VNI, NDA_IFINDEX only when they differ from the device's own);
- an FDB entry made dynamic (it ages out after the device's ageing time) or static;
- flannel.1 given another TTL, TOS, DF or ageing time, or a default remote (whose all-zeros FDB entry, the
  device's own, was said extra and fought over by every up);
- flannel.1 set NOARP or promiscuous;
- the ARP entry for the other node's VTEP made REACHABLE (said missing, though it is there).
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface

from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.ndmsg import ndmsg

from netlab.kernel import netlink as nl
from netlab.kernel import rtnl, rtnl_parse
from netlab.kernel.base import Snapshot
from netlab.plan.resources import Address, Fdb, Neigh, Veth, Vxlan
from netlab.realize.diff import diff_netns
from netlab.realize.observe import observe

NS = "fa-n1"
MAC, PEER_MAC = "02:00:00:00:00:0c", "0a:a9:f5:50:48:c0"
ETH0 = Veth(netns=NS, name="eth0", mtu=1500, mac="02:00:00:00:00:0a", peer_netns="fa-underlay", peer_name="p1",
            peer_mac="02:00:00:00:00:0b", txqlen=1000)
VX = Vxlan(netns=NS, name="flannel.1", mtu=1450, mac=MAC, vni=1, port=8472, local=IPv4Address("192.168.122.2"),
           dev="eth0", txqlen=0)
FDB = Fdb(netns=NS, dev="flannel.1", lladdr=PEER_MAC, dst=IPv4Address("192.168.122.3"))
NEIGH = Neigh(netns=NS, dev="flannel.1", dst=IPv4Address("10.244.1.0"), lladdr=PEER_MAC)
PLANNED = [VX, FDB, NEIGH]
BROADCAST, MULTICAST, NOARP, PROMISC = 0x2, 0x1000, 0x80, 0x100


def encode(cls, mtype: int, fields: dict, attrs: list) -> nl.Msg:
    msg = cls()
    for key, value in fields.items():
        msg[key] = value
    msg["attrs"] = attrs
    msg["header"]["type"] = mtype
    msg.encode()
    (out,) = list(nl.split(bytes(msg.data)))
    return out


def vxlan_link(flags: int = rtnl.IFF_UP | BROADCAST | MULTICAST, **settings) -> rtnl_parse.LinkMsg:
    """flannel.1 as the kernel dumps it (vxlan_fill_info: every setting, its defaults included)."""
    data = {"IFLA_VXLAN_ID": 1, "IFLA_VXLAN_LINK": 2, "IFLA_VXLAN_LOCAL": "192.168.122.2", "IFLA_VXLAN_TTL": 0,
            "IFLA_VXLAN_TOS": 0, "IFLA_VXLAN_DF": 0, "IFLA_VXLAN_LEARNING": 0, "IFLA_VXLAN_PROXY": 0,
            "IFLA_VXLAN_RSC": 0, "IFLA_VXLAN_L2MISS": 0, "IFLA_VXLAN_L3MISS": 0, "IFLA_VXLAN_AGEING": 300,
            "IFLA_VXLAN_PORT": 8472, "IFLA_VXLAN_UDP_CSUM": 1}
    data.update(settings)
    return rtnl_parse.parse_link(encode(ifinfmsg, rtnl.RTM_NEWLINK, {"index": 5, "flags": flags | rtnl.IFF_RUNNING},
                                        [("IFLA_IFNAME", "flannel.1"), ("IFLA_MTU", 1450), ("IFLA_ADDRESS", MAC),
                                         ("IFLA_TXQLEN", 0),
                                         ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "vxlan"),
                                                                      ("IFLA_INFO_DATA",
                                                                       {"attrs": list(data.items())})]})]))


def fdb_entry(mac: str = PEER_MAC, dst: str = "192.168.122.3", state: int = rtnl.NUD_PERMANENT,
              extra: list | None = None) -> rtnl_parse.NeighMsg:
    """An entry of flannel.1's FDB as `bridge fdb show` dumps it (vxlan_fdb_info)."""
    return rtnl_parse.parse_neigh(encode(ndmsg, rtnl.RTM_NEWNEIGH,
                                         {"family": rtnl.AF_BRIDGE, "ifindex": 5, "state": state,
                                          "flags": rtnl.NTF_SELF},
                                         [("NDA_LLADDR", mac), ("NDA_DST", dst)] + (extra or [])))


def neigh(state: int = rtnl.NUD_PERMANENT) -> rtnl_parse.NeighMsg:
    return rtnl_parse.parse_neigh(encode(ndmsg, rtnl.RTM_NEWNEIGH, {"family": 2, "ifindex": 5, "state": state},
                                         [("NDA_DST", "10.244.1.0"), ("NDA_LLADDR", PEER_MAC)]))


def drift(link: rtnl_parse.LinkMsg | None = None, fdb: list | None = None, neighs: list | None = None,
          proxies: list | None = None) -> list[str]:
    """What status says of node fa-n1 holding ``link`` as flannel.1, ``fdb`` as its FDB, ``neighs``, and
    ``proxies`` (`ip neigh show proxy`)."""
    eth0 = rtnl_parse.LinkMsg(2, "eth0", "veth", True, 1500, ETH0.mac, None, None, None, None, 0, 1000)
    lo = rtnl_parse.LinkMsg(1, "lo", None, True, 65536, "00:00:00:00:00:00", None, None, None, None, 0, 1000)
    snap = Snapshot(netns=NS, links={"lo": lo, "eth0": eth0, "flannel.1": link or vxlan_link()},
                    fdb=fdb if fdb is not None else [fdb_entry()],
                    neighs=neighs if neighs is not None else [neigh()], proxies=proxies or [],
                    addrs=[rtnl_parse.AddrMsg(2, "192.168.122.2", 24, None, 0, "eth0")])
    want = PLANNED + [Address(netns=NS, dev="eth0", address=IPv4Interface("192.168.122.2/24"))]
    obs = observe(snap, {r.key: r for r in want}, {})
    obs.objects.pop(ETH0.key, None)  # its peer is not read here
    return [str(d) for d in diff_netns(want, obs) if d.resource.key != ETH0.key]


def test_flannels_device_and_entries_as_the_kernel_dumps_them_are_as_planned():
    assert drift() == []


def test_an_fdb_entry_to_another_udp_port_is_named_with_its_port():
    """`bridge fdb replace MAC dev flannel.1 dst IP port 4789 self permanent`: the frames go to UDP 4789, where
    no VXLAN device of the other node listens."""
    entry = fdb_entry(extra=[("NDA_PORT", 4789)])
    assert entry.port == 4789
    assert drift(fdb=[entry]) == [f"different: fdb {PEER_MAC} dst 192.168.122.3 dev flannel.1 in {NS} "
                                  f"(port 4789 (want flannel.1's own))"]


def test_an_fdb_entry_with_another_vni_or_underlay_device_is_named():
    vni = drift(fdb=[fdb_entry(extra=[("NDA_VNI", 7)])])
    assert vni == [f"different: fdb {PEER_MAC} dst 192.168.122.3 dev flannel.1 in {NS} (vni 7 (want flannel.1's "
                   f"own))"]
    # `... dst IP via lo`: the encapsulated packet is sent out of lo, not by the route to the other node
    (via,) = drift(fdb=[fdb_entry(extra=[("NDA_IFINDEX", 1)])])
    assert via.endswith("(via lo (want none))"), via


def test_an_fdb_entry_that_ages_out_or_is_static_is_named_by_its_state():
    (dynamic,) = drift(fdb=[fdb_entry(state=rtnl.NUD_REACHABLE)])
    assert "(state dynamic (want permanent)" in dynamic and "ageing time" in dynamic, dynamic
    (static,) = drift(fdb=[fdb_entry(state=rtnl.NUD_NOARP)])
    assert "(state static (want permanent)" in static, static


def test_the_vxlan_settings_flannel_leaves_at_the_kernels_defaults_are_compared():
    """`ip link set flannel.1 type vxlan ttl 1 tos 0x10 df set ageing 30`: the encapsulated packets die at the
    first router (ttl 1), carry another TOS, are never fragmented, and learned entries age out in 30 s."""
    (line,) = drift(link=vxlan_link(IFLA_VXLAN_TTL=1, IFLA_VXLAN_TOS=0x10, IFLA_VXLAN_DF=1, IFLA_VXLAN_AGEING=30))
    assert line.startswith(f"different: link flannel.1 in {NS} (")
    for words in ("ttl 1 (want auto)", "tos 0x10 (want 0)", "df set (want unset)", "ageing 30 (want 300)"):
        assert words in line, line


def test_a_default_remote_on_flannels_device_is_the_devices_drift_not_an_extra_fdb_entry():
    """`ip link set flannel.1 type vxlan remote 192.168.122.3`: the kernel gives the device an all-zeros FDB entry
    of its own (dst the remote, via its underlay device): every unknown MAC's frame goes there. The device
    differs; the entry is not another drift (a delete of it alone the kernel answers ENOENT, and puts it back
    with the device)."""
    own = fdb_entry(mac="00:00:00:00:00:00", extra=[("NDA_IFINDEX", 2)])
    lines = drift(link=vxlan_link(IFLA_VXLAN_GROUP="192.168.122.3"), fdb=[own, fdb_entry()])
    assert lines == [f"different: link flannel.1 in {NS} (remote 192.168.122.3 (want none))"]
    # Another all-zeros remote appended by hand is the FDB's own extra entry
    appended = fdb_entry(mac="00:00:00:00:00:00", dst="192.168.122.9")
    assert drift(fdb=[fdb_entry(), appended]) == [f"extra: fdb 00:00:00:00:00:00 dst 192.168.122.9 dev flannel.1 "
                                                   f"in {NS}"]


def test_flannels_device_set_noarp_or_promiscuous_is_named():
    (line,) = drift(link=vxlan_link(flags=rtnl.IFF_UP | BROADCAST | MULTICAST | NOARP | PROMISC))
    assert "arp off (want on)" in line and "promisc on (want off)" in line, line


def test_the_vteps_arp_entry_made_reachable_is_different_not_missing():
    """`ip neigh replace 10.244.1.0 lladdr MAC dev flannel.1 nud reachable`: there, but the kernel may forget or
    re-resolve it (flannel.1 answers no ARP for another node's VTEP)."""
    assert drift(neighs=[neigh(rtnl.NUD_REACHABLE)]) == [
        f"different: neighbour 10.244.1.0 lladdr {PEER_MAC} dev flannel.1 in {NS} (state reachable (want permanent))"]


def test_a_flag_the_plan_sets_and_the_link_lacks_is_said_with_its_name():
    """diff's plan-side words said ``on (want off)``, the flag's name left out (review item 5: one flipped())."""
    from dataclasses import replace

    from netlab.realize.diff import describe_difference

    want = Vxlan(netns="x", name="flannel.1", mtu=1450, mac="aa:bb:cc:dd:ee:ff", vni=1, port=8472,
                 local=IPv4Address("192.168.122.2"), dev="eth0", flags=("arp off",))
    assert describe_difference(want, replace(want, flags=())) == "arp on (want off)"
    assert describe_difference(replace(want, flags=()), want) == "arp off (want on)"
