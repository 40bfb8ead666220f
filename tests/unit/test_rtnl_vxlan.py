"""The overlay's requests (kernel/rtnl_vxlan.py), decoded by pyroute2 (no root): an FDB entry's whole remote
(port, VNI, device, state), a VXLAN device's settings away from the kernel's defaults, link flags."""

from __future__ import annotations

import struct

from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.ndmsg import ndmsg

from netlab.kernel import netlink as nl
from netlab.kernel import rtnl, rtnl_parse, rtnl_vxlan


def decode(cls, data: bytes):
    msg = cls(data)
    msg.decode()
    _length, mtype, flags, _seq, _ = struct.unpack_from("=IHHII", data)
    return msg, mtype, flags


def test_an_fdb_entry_is_replaced_whole_and_deleted_by_its_whole_remote():
    msg, mtype, flags = decode(ndmsg, rtnl_vxlan.fdb_replace(5, "0a:a9:f5:50:48:c0", "192.168.122.3"))
    assert mtype == rtnl.RTM_NEWNEIGH and flags & nl.NLM_F_REPLACE and flags & nl.NLM_F_CREATE
    assert not flags & nl.NLM_F_APPEND and msg["state"] == rtnl.NUD_PERMANENT and msg["flags"] == rtnl.NTF_SELF
    assert [name for name, _ in msg["attrs"]] == ["NDA_LLADDR", "NDA_DST"]  # the device's own port, VNI, route
    msg, *_ = decode(ndmsg, rtnl_vxlan.fdb_append(5, "00:00:00:00:00:00", "192.168.122.3", port=4789, vni=7, via=2,
                                                  state="dynamic"))
    assert (msg.get_attr("NDA_PORT"), msg.get_attr("NDA_VNI"), msg.get_attr("NDA_IFINDEX")) == (4789, 7, 2)
    assert msg["state"] == rtnl.NUD_REACHABLE
    msg, mtype, _ = decode(ndmsg, rtnl_vxlan.fdb_del(5, "00:00:00:00:00:00", "192.168.122.3", via=2))
    assert mtype == rtnl.RTM_DELNEIGH and msg.get_attr("NDA_IFINDEX") == 2 and msg.get_attr("NDA_PORT") is None


def test_a_vxlan_device_made_again_with_the_settings_it_had():
    data = rtnl_vxlan.vxlan_add(5, "flannel.1", "02:7d:63:dd:1d:06", 1450, 1, "192.168.122.215", 8472, 3,
                                remote="192.168.122.7", ttl="1", tos=0x10, df="set", ageing=30,
                                options=("l2miss", "gbp"),
                                flags=rtnl_parse.flag_bits(("arp off",)))
    msg, *_ = decode(ifinfmsg, data)
    assert msg["flags"] & rtnl.IFF_NOARP and msg["change"] & rtnl.IFF_NOARP and msg["flags"] & rtnl.IFF_MULTICAST
    vx = msg.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_DATA")
    assert vx.get_attr("IFLA_VXLAN_GROUP") == "192.168.122.7" and vx.get_attr("IFLA_VXLAN_TTL") == 1
    assert vx.get_attr("IFLA_VXLAN_TOS") == 0x10 and vx.get_attr("IFLA_VXLAN_DF") == 1
    assert vx.get_attr("IFLA_VXLAN_AGEING") == 30 and vx.get_attr("IFLA_VXLAN_L2MISS") == 1
    assert vx.get_attr("IFLA_VXLAN_GBP") is True  # a flag: there or not
    inherit, *_ = decode(ifinfmsg, rtnl_vxlan.vxlan_add(5, "flannel.1", None, None, 1, None, 8472, None,
                                                        ttl="inherit"))
    vx = inherit.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_DATA")
    assert vx.get_attr("IFLA_VXLAN_TTL_INHERIT") is True and vx.get_attr("IFLA_VXLAN_TTL") is None
    # Flannel's own: nothing beyond what flanneld sends but the kernel's defaults
    plain, *_ = decode(ifinfmsg, rtnl_vxlan.vxlan_add(5, "flannel.1", None, 1450, 1, "192.168.122.215", 8472, 3))
    names = [name for name, _ in plain.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_DATA")["attrs"]]
    assert names == ["IFLA_VXLAN_ID", "IFLA_VXLAN_LINK", "IFLA_VXLAN_LOCAL", "IFLA_VXLAN_LEARNING", "IFLA_VXLAN_PORT"]


def test_link_flags_set_back_to_the_kernels_defaults():
    """`ip link set flannel.1 arp on promisc off allmulticast off multicast on`: one message, only those bits."""
    msg, *_ = decode(ifinfmsg, rtnl.link_set(5, flags=rtnl_parse.flag_bits(())))
    assert msg["change"] == rtnl.IFF_NOARP | rtnl.IFF_PROMISC | rtnl.IFF_ALLMULTI | rtnl.IFF_MULTICAST
    assert msg["flags"] == rtnl.IFF_MULTICAST
    lo, *_ = decode(ifinfmsg, rtnl.link_set(1, up=True, flags=rtnl_parse.flag_bits((), loopback=True)))
    assert lo["flags"] == rtnl.IFF_UP and lo["change"] & rtnl.IFF_UP
    assert rtnl_parse.flag_words(rtnl.IFF_UP | rtnl.IFF_MULTICAST | rtnl.IFF_NOARP | rtnl.IFF_PROMISC) == \
        ("arp off", "promisc on")
    assert rtnl_parse.flag_words(rtnl.IFF_UP | rtnl.IFF_LOOPBACK) == () and rtnl_parse.flag_words(None) == ()
    assert rtnl_parse.flag_words(rtnl.IFF_UP) == ("multicast off",)


def test_udpcsum_srcport_and_maxaddress_are_read_and_sent_where_not_the_kernels_defaults():
    """IFLA_VXLAN_UDP_CSUM, IFLA_VXLAN_PORT_RANGE and IFLA_VXLAN_LIMIT: the kernel says each always (vxlan_fill_info);
    a device made again with them (a rollback of a remade flannel.1 that had them) sends them, Flannel's none."""
    data = rtnl_vxlan.vxlan_add(5, "flannel.1", None, 1450, 1, "192.168.122.215", 8472, 3, udpcsum=False,
                                srcport=(1000, 2000), maxaddress=5)
    msg, *_ = decode(ifinfmsg, data)
    vx = msg.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_DATA")
    assert vx.get_attr("IFLA_VXLAN_UDP_CSUM") == 0 and vx.get_attr("IFLA_VXLAN_LIMIT") == 5
    assert vx.get_attr("IFLA_VXLAN_PORT_RANGE") == {"low": 1000, "high": 2000}
    # the kernel's answer read back (parse_link): the same message, as a dump's
    parsed = rtnl_parse.parse_link(nl.Msg(rtnl.RTM_NEWLINK, 0, 0, data[16:]))
    assert (parsed.data["udp_csum"], parsed.data["srcport"], parsed.data["limit"]) == (0, (1000, 2000), 5)


def test_ageing_changed_in_place_in_the_message_that_sets_the_flags():
    """`ip link set flannel.1 arp on type vxlan ageing 300`: one RTM_NEWLINK without NLM_F_CREATE (changelink),
    IFLA_INFO_DATA holding the ageing alone (any other setting sent would be one the kernel refuses to change)."""
    msg, mtype, flags = decode(ifinfmsg, rtnl.link_set(5, flags=rtnl_parse.flag_bits(()),
                                                       info=rtnl_vxlan.vxlan_change(300)))
    assert mtype == rtnl.RTM_NEWLINK and not flags & nl.NLM_F_CREATE and msg["change"] & rtnl.IFF_NOARP
    info = msg.get_attr("IFLA_LINKINFO")
    assert info.get_attr("IFLA_INFO_KIND") == "vxlan"
    assert [(name, value) for name, value in info.get_attr("IFLA_INFO_DATA")["attrs"]] == [("IFLA_VXLAN_AGEING", 300)]


def test_a_bridge_and_a_veth_made_again_with_their_flags():
    """A rollback makes again a bridge or veth up deleted as it was read: its flags in the RTM_NEWLINK that makes it
    (`ip link add br9 promisc on type bridge`), none changed when it had none."""
    msg, *_ = decode(ifinfmsg, rtnl.bridge_add(9, "br9", None, 1500, flags=rtnl_parse.flag_bits(("promisc on",))))
    assert msg["flags"] & rtnl.IFF_PROMISC and msg["change"] & rtnl.IFF_PROMISC and msg["flags"] & rtnl.IFF_UP
    msg, *_ = decode(ifinfmsg, rtnl.veth_add(9, "v9", None, 1500, None, 10, "p9", None, None,
                                             flags=rtnl_parse.flag_bits(("arp off",))))
    assert msg["flags"] & rtnl.IFF_NOARP and msg["change"] & rtnl.IFF_NOARP
    plain, *_ = decode(ifinfmsg, rtnl.bridge_add(9, "br9", None, 1500))
    assert plain["change"] == rtnl.IFF_UP
