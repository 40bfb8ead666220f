"""The hand-encoded rtnetlink requests, decoded back with pyroute2's parser (no root)."""

from __future__ import annotations

import struct

from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.ndmsg import ndmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from netlab.realize import nlmsg


def decode(cls, data: bytes):
    msg = cls(data)
    msg.decode()
    length, mtype, flags, seq, _ = struct.unpack_from("=IHHII", data)
    assert length == len(data)
    return msg, mtype, flags, seq


def test_veth_add_carries_both_ends_and_their_indexes():
    data = nlmsg.veth_add(7, 1001, "vethabcd1234", "02:00:00:00:00:02", 1450, 1, 2, 2, "eth0",
                          "0a:58:0a:f4:00:02", 99)
    msg, mtype, flags, seq = decode(ifinfmsg, data)
    assert (mtype, seq) == (nlmsg.RTM_NEWLINK, 7)
    assert flags & nlmsg.NLM_F_CREATE and flags & nlmsg.NLM_F_EXCL and flags & nlmsg.NLM_F_ACK
    assert msg["index"] == 1001 and msg["flags"] & 1
    assert msg.get_attr("IFLA_IFNAME") == "vethabcd1234"
    assert msg.get_attr("IFLA_ADDRESS") == "02:00:00:00:00:02"
    assert msg.get_attr("IFLA_MTU") == 1450 and msg.get_attr("IFLA_MASTER") == 2 and msg.get_attr("IFLA_GROUP") == 1
    info = msg.get_attr("IFLA_LINKINFO")
    assert info.get_attr("IFLA_INFO_KIND") == "veth"
    peer = info.get_attr("IFLA_INFO_DATA").get_attr("VETH_INFO_PEER")
    assert peer["index"] == 2
    assert peer.get_attr("IFLA_IFNAME") == "eth0" and peer.get_attr("IFLA_ADDRESS") == "0a:58:0a:f4:00:02"
    assert peer.get_attr("IFLA_NET_NS_FD") == 99 and peer.get_attr("IFLA_MTU") == 1450


def test_vxlan_add_is_flannels_device():
    data = nlmsg.vxlan_add(3, 5, "flannel.1", "02:7d:63:dd:1d:06", 1450, 1, "192.168.122.215", 8472, 3)
    msg, *_ = decode(ifinfmsg, data)
    assert msg.get_attr("IFLA_IFNAME") == "flannel.1" and msg.get_attr("IFLA_MTU") == 1450
    vx = msg.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_DATA")
    assert vx.get_attr("IFLA_VXLAN_ID") == 1
    assert vx.get_attr("IFLA_VXLAN_PORT") == 8472
    assert vx.get_attr("IFLA_VXLAN_LOCAL") == "192.168.122.215"
    assert vx.get_attr("IFLA_VXLAN_LINK") == 3 and vx.get_attr("IFLA_VXLAN_LEARNING") == 0


def test_bridge_add_link_up_and_alias():
    msg, mtype, *_ = decode(ifinfmsg, nlmsg.bridge_add(1, 2, "cni0", "02:00:00:00:00:01", 1450))
    assert msg.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_KIND") == "bridge" and msg["index"] == 2
    msg, mtype, *_ = decode(ifinfmsg, nlmsg.link_up(2, 1, "netlab:demo:abc"))
    assert mtype == nlmsg.RTM_NEWLINK and msg["index"] == 1 and msg["flags"] & 1 and msg["change"] & 1
    assert msg.get_attr("IFLA_IFALIAS") == "netlab:demo:abc"


def test_hairpin_sets_nested_protinfo():
    data = nlmsg.hairpin_on(4, 12)
    msg, mtype, *_ = decode(ifinfmsg, data)
    assert mtype == nlmsg.RTM_SETLINK and msg["family"] == nlmsg.AF_BRIDGE and msg["index"] == 12
    # IFLA_PROTINFO with NLA_F_NESTED, holding IFLA_BRPORT_MODE = 1
    length, kind = struct.unpack_from("=HH", data, 32)
    assert kind == nlmsg.IFLA_PROTINFO | nlmsg.NLA_F_NESTED
    assert struct.unpack_from("=HHB", data, 36) == (5, nlmsg.IFLA_BRPORT_MODE, 1)


def test_addr_route_neigh_fdb():
    msg, mtype, *_ = decode(ifaddrmsg, nlmsg.addr_add(1, 3, "10.244.0.1", 24))
    assert mtype == nlmsg.RTM_NEWADDR and msg["prefixlen"] == 24 and msg["index"] == 3
    assert msg.get_attr("IFA_LOCAL") == "10.244.0.1" == msg.get_attr("IFA_ADDRESS")

    msg, mtype, flags, _ = decode(rtmsg, nlmsg.route_replace(2, "10.244.1.0", 24, 5, "10.244.1.0", True))
    assert mtype == nlmsg.RTM_NEWROUTE and flags & nlmsg.NLM_F_REPLACE
    assert msg["dst_len"] == 24 and msg["flags"] == nlmsg.RTNH_F_ONLINK and msg["table"] == 254
    assert msg.get_attr("RTA_DST") == "10.244.1.0" and msg.get_attr("RTA_GATEWAY") == "10.244.1.0"
    assert msg.get_attr("RTA_OIF") == 5

    msg, *_ = decode(rtmsg, nlmsg.route_replace(3, "0.0.0.0", 0, 2, "10.244.0.1", False))
    assert msg["dst_len"] == 0 and msg.get_attr("RTA_DST") is None and msg["flags"] == 0

    msg, mtype, *_ = decode(ndmsg, nlmsg.neigh_replace(4, 5, "10.244.1.0", "02:6b:ac:b7:3a:c5"))
    assert mtype == nlmsg.RTM_NEWNEIGH and msg["state"] == nlmsg.NUD_PERMANENT and msg["ifindex"] == 5
    assert msg.get_attr("NDA_DST") == "10.244.1.0" and msg.get_attr("NDA_LLADDR") == "02:6b:ac:b7:3a:c5"

    msg, mtype, flags, _ = decode(ndmsg, nlmsg.fdb_append(5, 5, "02:6b:ac:b7:3a:c5", "192.168.122.7"))
    assert msg["family"] == nlmsg.AF_BRIDGE and msg["flags"] == nlmsg.NTF_SELF and flags & nlmsg.NLM_F_APPEND
    assert msg.get_attr("NDA_LLADDR") == "02:6b:ac:b7:3a:c5" and msg.get_attr("NDA_DST") == "192.168.122.7"


def test_attributes_are_padded_to_four_bytes():
    assert len(nlmsg.string(3, "eth0")) == 12  # 4 header + "eth0\\0" (5) + 3 padding
    assert len(nlmsg.u8(7, 0)) == 8


def test_link_alias_reads_the_tag_from_an_answer():
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg as cls

    msg = cls()
    msg["index"] = 1
    msg["attrs"] = [("IFLA_IFNAME", "lo"), ("IFLA_MTU", 65536), ("IFLA_IFALIAS", "netlab:demo:0123abcd")]
    msg["header"]["type"] = nlmsg.RTM_NEWLINK
    msg.encode()
    assert nlmsg.link_alias(bytes(msg.data)) == "netlab:demo:0123abcd"
    msg["attrs"] = [("IFLA_IFNAME", "lo")]
    msg.encode()
    assert nlmsg.link_alias(bytes(msg.data)) is None
    error = struct.pack("=IHHIIi", 36, nlmsg.NLMSG_ERROR, 0, 1, 0, -19) + bytes(16)
    assert nlmsg.link_alias(error) is None
    get, *_ = decode(ifinfmsg, nlmsg.link_get(3, 1))
    assert get["index"] == 1


def test_prober_neighbour_requests_ask_no_ack():
    msg, mtype, flags, seq = decode(ndmsg, nlmsg.neigh_add_permanent(9, 3, "10.244.0.2", "0a:58:0a:f4:00:02"))
    assert (mtype, seq) == (nlmsg.RTM_NEWNEIGH, 9) and not flags & nlmsg.NLM_F_ACK
    assert flags & nlmsg.NLM_F_EXCL and msg["state"] == nlmsg.NUD_PERMANENT
    assert msg.get_attr("NDA_LLADDR") == "0a:58:0a:f4:00:02" and msg.get_attr("NDA_DST") == "10.244.0.2"
    msg, mtype, flags, _ = decode(ndmsg, nlmsg.neigh_delete(10, 3, "10.244.0.2"))
    assert mtype == nlmsg.RTM_DELNEIGH and not flags & nlmsg.NLM_F_ACK and msg["ifindex"] == 3
