"""The one netlink codec, checked against pyroute2 both ways (no root).

Every request netlab encodes is decoded with pyroute2's parser; every answer
netlab decodes is encoded by pyroute2. So the hand-written codec cannot drift
from the kernel's wire format without a failing test.
"""

from __future__ import annotations

import socket
import struct
import threading
import time

import pytest

from pyroute2.netlink.rtnl.fibmsg import fibmsg
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.ndmsg import ndmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from netlab.kernel import netlink as nl
from netlab.kernel import nfnl, rtnl, rtnl_parse, rtnl_vxlan
from netlink_socket import QueuedSocket


def decode(cls, data: bytes):
    msg = cls(data)
    msg.decode()
    length, mtype, flags, seq, _ = struct.unpack_from("=IHHII", data)
    assert length == len(data)
    return msg, mtype, flags


def encode(cls, mtype: int, fields: dict, attrs: list) -> nl.Msg:
    """A message as the kernel would send it, made by pyroute2's encoder."""
    msg = cls()
    for key, value in fields.items():
        msg[key] = value
    msg["attrs"] = attrs
    msg["header"]["type"] = mtype
    msg.encode()
    (out,) = list(nl.split(bytes(msg.data)))
    return out


# --- requests, decoded by pyroute2 -------------------------------------------------


def test_veth_add_carries_both_ends_their_indexes_and_the_link_group():
    data = rtnl.veth_add(1001, "vethabcd1234", "02:00:00:00:00:02", 1450, 2, 2, "eth0", "0a:58:0a:f4:00:02", 99,
                         group=1)
    msg, mtype, flags = decode(ifinfmsg, data)
    assert mtype == rtnl.RTM_NEWLINK and flags & nl.NLM_F_CREATE and flags & nl.NLM_F_EXCL
    assert msg["index"] == 1001 and msg["flags"] & 1 and msg["change"] & 1
    assert msg.get_attr("IFLA_IFNAME") == "vethabcd1234" and msg.get_attr("IFLA_ADDRESS") == "02:00:00:00:00:02"
    assert msg.get_attr("IFLA_MTU") == 1450 and msg.get_attr("IFLA_MASTER") == 2 and msg.get_attr("IFLA_GROUP") == 1
    info = msg.get_attr("IFLA_LINKINFO")
    assert info.get_attr("IFLA_INFO_KIND") == "veth"
    peer = info.get_attr("IFLA_INFO_DATA").get_attr("VETH_INFO_PEER")
    assert peer["index"] == 2 and peer.get_attr("IFLA_IFNAME") == "eth0"
    assert peer.get_attr("IFLA_ADDRESS") == "0a:58:0a:f4:00:02" and peer.get_attr("IFLA_NET_NS_FD") == 99
    assert peer.get_attr("IFLA_MTU") == 1450


def test_vxlan_add_is_flannels_device():
    data = rtnl_vxlan.vxlan_add(5, "flannel.1", "02:7d:63:dd:1d:06", 1450, 1, "192.168.122.215", 8472, 3)
    msg, *_ = decode(ifinfmsg, data)
    assert msg.get_attr("IFLA_IFNAME") == "flannel.1" and msg.get_attr("IFLA_MTU") == 1450
    vx = msg.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_DATA")
    assert vx.get_attr("IFLA_VXLAN_ID") == 1 and vx.get_attr("IFLA_VXLAN_PORT") == 8472
    assert vx.get_attr("IFLA_VXLAN_LOCAL") == "192.168.122.215"
    assert vx.get_attr("IFLA_VXLAN_LINK") == 3 and vx.get_attr("IFLA_VXLAN_LEARNING") == 0


def test_bridge_add_and_link_up_with_the_ownership_alias():
    msg, mtype, flags = decode(ifinfmsg, rtnl.bridge_add(2, "cni0", "02:00:00:00:00:01", 1450))
    assert mtype == rtnl.RTM_NEWLINK and flags & nl.NLM_F_CREATE and flags & nl.NLM_F_EXCL
    assert msg.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_KIND") == "bridge" and msg["index"] == 2
    assert msg.get_attr("IFLA_IFNAME") == "cni0" and msg.get_attr("IFLA_MTU") == 1450
    msg, mtype, _ = decode(ifinfmsg, rtnl.link_up(1, "netlab:demo:abc"))
    assert mtype == rtnl.RTM_NEWLINK and msg["index"] == 1 and msg["flags"] & 1 and msg["change"] & 1
    assert msg.get_attr("IFLA_IFALIAS") == "netlab:demo:abc"
    get, mtype, _ = decode(ifinfmsg, rtnl.link_get(1))
    assert mtype == rtnl.RTM_GETLINK and get["index"] == 1


def test_link_set_changes_only_what_it_names():
    msg, mtype, _ = decode(ifinfmsg, rtnl.link_set(7, up=True, mtu=1450, address="02:00:00:00:00:09", master=0))
    assert mtype == rtnl.RTM_NEWLINK and msg["index"] == 7 and msg["flags"] == 1 and msg["change"] == 1
    assert msg.get_attr("IFLA_MTU") == 1450 and msg.get_attr("IFLA_MASTER") == 0
    msg, *_ = decode(ifinfmsg, rtnl.link_set(7, up=False))
    assert msg["flags"] == 0 and msg["change"] == 1 and msg.get_attr("IFLA_MTU") is None
    msg, *_ = decode(ifinfmsg, rtnl.link_set(7, mtu=1400))
    assert msg["change"] == 0  # the up/down flag is left alone
    msg, mtype, _ = decode(ifinfmsg, rtnl.link_del(group=1))
    assert mtype == rtnl.RTM_DELLINK and msg["index"] == 0 and msg.get_attr("IFLA_GROUP") == 1


def test_link_inet_conf_sets_an_interfaces_arp_settings_one_attribute_each():
    """``sysctl -w net.ipv4.conf.eth0.arp_notify=1`` as a link change: IFLA_AF_SPEC / AF_INET / IFLA_INET_CONF
    holding one u32 attribute per setting, typed by its IPV4_DEVCONF_* number (a dump's is one packed array)."""
    data = rtnl.link_inet_conf(4, {"arp_notify": 1, "arp_ignore": 2})
    msg, mtype, flags = decode(ifinfmsg, data)
    assert mtype == rtnl.RTM_NEWLINK and msg["index"] == 4 and msg["change"] == 0  # nothing else changes
    assert flags == nl.NLM_F_REQUEST  # no NLM_F_CREATE: a change of an existing link
    spec = nl.attrs(data, 16 + rtnl.IFINFO.size)
    conf = nl.attrs(nl.attrs(nl.attrs(spec[rtnl.IFLA_AF_SPEC])[rtnl.AF_INET])[rtnl.IFLA_INET_CONF])
    assert conf == {22: struct.pack("=I", 1), 19: struct.pack("=I", 2)}  # ARP_NOTIFY = 22, ARP_IGNORE = 19
    with pytest.raises(ValueError, match="forwarding"):
        rtnl.link_inet_conf(4, {"forwarding": 1})  # its sysctl handler does more than store the value


def test_port_state_sets_nested_protinfo_as_bridge_link_set_state_does():
    data = rtnl.port_state_set(12, "forwarding")
    msg, mtype, _ = decode(ifinfmsg, data)
    assert mtype == rtnl.RTM_SETLINK and msg["family"] == rtnl.AF_BRIDGE and msg["index"] == 12
    length, kind = struct.unpack_from("=HH", data, 32)
    assert kind == rtnl.IFLA_PROTINFO | nl.NLA_F_NESTED
    assert struct.unpack_from("=HHB", data, 36) == (5, rtnl.IFLA_BRPORT_STATE, 3)  # BR_STATE_FORWARDING


def test_hairpin_sets_nested_protinfo():
    data = rtnl.hairpin_set(12, True)
    msg, mtype, _ = decode(ifinfmsg, data)
    assert mtype == rtnl.RTM_SETLINK and msg["family"] == rtnl.AF_BRIDGE and msg["index"] == 12
    length, kind = struct.unpack_from("=HH", data, 32)
    assert kind == rtnl.IFLA_PROTINFO | nl.NLA_F_NESTED
    assert struct.unpack_from("=HHB", data, 36) == (5, rtnl.IFLA_BRPORT_MODE, 1)


def test_addresses_with_broadcast_and_scope():
    msg, mtype, _ = decode(ifaddrmsg, rtnl.addr_add(3, "10.244.0.1", 24, "10.244.0.255"))
    assert mtype == rtnl.RTM_NEWADDR and msg["prefixlen"] == 24 and msg["index"] == 3 and msg["scope"] == 0
    assert msg.get_attr("IFA_LOCAL") == "10.244.0.1" == msg.get_attr("IFA_ADDRESS")
    assert msg.get_attr("IFA_BROADCAST") == "10.244.0.255"
    msg, mtype, _ = decode(ifaddrmsg, rtnl.addr_add(1, "127.0.0.1", 8, scope=rtnl.RT_SCOPE_HOST))
    assert msg["scope"] == rtnl.RT_SCOPE_HOST and msg.get_attr("IFA_BROADCAST") is None
    msg, mtype, _ = decode(ifaddrmsg, rtnl.addr_del(3, "10.244.0.1", 24))
    assert mtype == rtnl.RTM_DELADDR and msg.get_attr("IFA_LOCAL") == "10.244.0.1"


def test_routes_carry_protocol_scope_type_table_and_metric():
    data = rtnl.route_replace("10.244.1.0", 24, 5, "10.244.1.0", onlink=True)
    msg, mtype, flags = decode(rtmsg, data)
    assert mtype == rtnl.RTM_NEWROUTE and flags & nl.NLM_F_REPLACE and flags & nl.NLM_F_CREATE
    assert msg["dst_len"] == 24 and msg["flags"] == rtnl.RTNH_F_ONLINK and msg["table"] == 254
    assert msg["proto"] == rtnl.RTPROT_BOOT and msg["scope"] == 0 and msg["type"] == rtnl.RTN_UNICAST
    assert msg.get_attr("RTA_DST") == "10.244.1.0" and msg.get_attr("RTA_GATEWAY") == "10.244.1.0"
    assert msg.get_attr("RTA_OIF") == 5 and msg.get_attr("RTA_TABLE") == 254
    msg, *_ = decode(rtmsg, rtnl.route_replace("0.0.0.0", 0, 2, "10.244.0.1", table=1000, priority=7))
    assert msg["dst_len"] == 0 and msg.get_attr("RTA_DST") is None and msg["table"] == 0 and msg["flags"] == 0
    assert msg.get_attr("RTA_TABLE") == 1000 and msg.get_attr("RTA_PRIORITY") == 7
    # A deletion names everything the kernel matches on, or it finds nothing.
    msg, mtype, _ = decode(rtmsg, rtnl.route_del("10.55.0.0", 16, 254, rtnl.RTPROT_BOOT, rtnl.RT_SCOPE_LINK,
                                                 rtnl.RTN_UNICAST))
    assert mtype == rtnl.RTM_DELROUTE and msg["scope"] == rtnl.RT_SCOPE_LINK and msg["proto"] == rtnl.RTPROT_BOOT
    assert msg["type"] == rtnl.RTN_UNICAST and msg.get_attr("RTA_DST") == "10.55.0.0"
    msg, *_ = decode(rtmsg, rtnl.route_del("0.0.0.0", 0, 100, rtnl.RTPROT_BOOT, 0, rtnl.RTN_BLACKHOLE))
    assert msg["type"] == rtnl.RTN_BLACKHOLE and msg.get_attr("RTA_TABLE") == 100


def test_neighbours_and_fdb_entries():
    msg, mtype, _ = decode(ndmsg, rtnl.neigh_replace(5, "10.244.1.0", "02:6b:ac:b7:3a:c5"))
    assert mtype == rtnl.RTM_NEWNEIGH and msg["state"] == rtnl.NUD_PERMANENT and msg["ifindex"] == 5
    assert msg.get_attr("NDA_DST") == "10.244.1.0" and msg.get_attr("NDA_LLADDR") == "02:6b:ac:b7:3a:c5"
    msg, mtype, flags = decode(ndmsg, rtnl_vxlan.fdb_append(5, "02:6b:ac:b7:3a:c5", "192.168.122.7"))
    assert msg["family"] == rtnl.AF_BRIDGE and msg["flags"] == rtnl.NTF_SELF and flags & nl.NLM_F_APPEND
    assert msg.get_attr("NDA_LLADDR") == "02:6b:ac:b7:3a:c5" and msg.get_attr("NDA_DST") == "192.168.122.7"
    msg, mtype, _ = decode(ndmsg, rtnl_vxlan.fdb_del(5, "02:6b:ac:b7:3a:c5", "192.168.122.99"))
    assert mtype == rtnl.RTM_DELNEIGH and msg.get_attr("NDA_DST") == "192.168.122.99"
    msg, mtype, flags = decode(ndmsg, rtnl.neigh_del(3, "10.244.0.2"))
    assert mtype == rtnl.RTM_DELNEIGH and not flags & nl.NLM_F_ACK and msg["ifindex"] == 3


def test_route_get_is_ip_route_get_from_iif_and_fibmatch():
    msg, mtype, flags = decode(rtmsg, rtnl.route_get("10.244.1.3", "10.244.0.2", 4))
    assert mtype == rtnl.RTM_GETROUTE and flags == nl.NLM_F_REQUEST  # one answer: no dump, no ACK
    assert (msg["family"], msg["dst_len"], msg["src_len"], msg["flags"]) == (2, 32, 32, 0)
    assert msg.get_attr("RTA_DST") == "10.244.1.3" and msg.get_attr("RTA_SRC") == "10.244.0.2"
    assert msg.get_attr("RTA_IIF") == 4 and msg.get_attr("RTA_OIF") is None
    msg, *_ = decode(rtmsg, rtnl.route_get("192.168.122.7", fib_match=True))
    assert msg["flags"] == rtnl.RTM_F_FIB_MATCH == 0x2000 and msg["src_len"] == 0
    assert msg.get_attr("RTA_SRC") is None and msg.get_attr("RTA_IIF") is None
    # The same bytes pyroute2 sends for IPRoute.route("get", dst=..., src=..., iif=...) (seen with strace).
    # rtmsg (family, dst_len, src_len, tos, table 254, proto, scope, type, flags), RTA_DST, RTA_SRC, RTA_IIF
    body = bytes.fromhex("02 20 20 00 fe 00 00 00 00000000  0800 0100 0af40103  0800 0200 0af40002  0800 0300 02000000")
    assert rtnl.route_get("10.244.1.3", "10.244.0.2", 2)[16:] == body


def test_the_probers_neighbour_requests_ask_no_ack():
    """Sent by the thousand without NLM_F_ACK: the kernel answers only the ones that fail."""
    data = nl.with_seq(rtnl.neigh_add(3, "10.244.0.2", "0a:58:0a:f4:00:02"), 9)
    msg, mtype, flags = decode(ndmsg, data)
    assert mtype == rtnl.RTM_NEWNEIGH and not flags & nl.NLM_F_ACK and struct.unpack_from("=I", data, 8)[0] == 9
    assert flags & nl.NLM_F_EXCL and msg["state"] == rtnl.NUD_PERMANENT  # an existing entry is used, never replaced
    assert msg.get_attr("NDA_LLADDR") == "0a:58:0a:f4:00:02" and msg.get_attr("NDA_DST") == "10.244.0.2"
    data = nl.with_seq(rtnl.neigh_del(3, "10.244.0.2"), 7)
    length, mtype, flags, seq, _ = nl.HDR.unpack_from(data)
    assert length == len(data) == 36 and mtype == rtnl.RTM_DELNEIGH and flags == nl.NLM_F_REQUEST and seq == 7
    family, ifindex = struct.unpack_from("=Bxxxi", data, 16)
    assert (family, ifindex) == (socket.AF_INET, 3) and data[-4:] == bytes([10, 244, 0, 2])


def test_rules():
    data = rtnl.rule_add(10, 100, src="10.244.0.0", src_len=16, iif="eth0", fwmark=0x4000, fwmask=0x4000)
    msg, mtype, flags = decode(fibmsg, data)
    assert mtype == rtnl.RTM_NEWRULE and flags & nl.NLM_F_EXCL
    assert msg.get_attr("FRA_PRIORITY") == 10 and msg.get_attr("FRA_TABLE") == 100 and msg["table"] == 100
    assert msg["src_len"] == 16 and msg.get_attr("FRA_SRC") == "10.244.0.0" and msg.get_attr("FRA_IIFNAME") == "eth0"
    assert msg.get_attr("FRA_FWMARK") == 0x4000 and msg.get_attr("FRA_FWMASK") == 0x4000
    msg, mtype, _ = decode(fibmsg, rtnl.rule_del(32766, 254))
    assert mtype == rtnl.RTM_DELRULE and msg["action"] == rtnl.FR_ACT_TO_TBL


def test_attributes_are_padded_to_four_bytes():
    assert len(nl.string(3, "eth0")) == 12  # 4 header + "eth0\\0" (5) + 3 padding
    assert len(nl.u8(7, 0)) == 8


def test_ct_delete_is_one_flow_by_its_original_tuple():
    """``conntrack -D -s 10.244.0.3 -d 10.96.0.20 -p tcp --sport 61234 --dport 80`` as ctnetlink."""
    from pyroute2.netlink.nfnetlink.nfctsocket import nfct_msg

    data = nfnl.ct_delete("10.244.0.3", "10.96.0.20", socket.IPPROTO_TCP, 61234, 80)
    length, mtype, flags, _seq, _pid = struct.unpack_from("=IHHII", data)
    assert length == len(data) and mtype == (nfnl.NFNL_SUBSYS_CTNETLINK << 8 | nfnl.IPCTNL_MSG_CT_DELETE)
    assert flags == nl.NLM_F_REQUEST  # no ACK asked: the prober sends hundreds and drains the errors
    msg = nfct_msg(data)
    msg.decode()
    assert (msg["nfgen_family"], msg["version"]) == (socket.AF_INET, 0)
    tup = msg.get_attr("CTA_TUPLE_ORIG")
    ip, ports = tup.get_attr("CTA_TUPLE_IP"), tup.get_attr("CTA_TUPLE_PROTO")
    assert ip.get_attr("CTA_IP_V4_SRC") == "10.244.0.3" and ip.get_attr("CTA_IP_V4_DST") == "10.96.0.20"
    assert ports.get_attr("CTA_PROTO_NUM") == socket.IPPROTO_TCP
    assert ports.get_attr("CTA_PROTO_SRC_PORT") == 61234 and ports.get_attr("CTA_PROTO_DST_PORT") == 80


# --- answers, encoded by pyroute2 ---------------------------------------------------


def test_parse_link_of_a_vxlan_device():
    m = encode(ifinfmsg, rtnl.RTM_NEWLINK, {"index": 4, "flags": 1},
               [("IFLA_IFNAME", "flannel.1"), ("IFLA_MTU", 1450), ("IFLA_ADDRESS", "02:7d:63:dd:1d:06"),
                ("IFLA_GROUP", 0), ("IFLA_TXQLEN", 0), ("IFLA_IFALIAS", "x"),
                ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "vxlan"),
                                             ("IFLA_INFO_DATA", {"attrs": [("IFLA_VXLAN_ID", 1),
                                                                           ("IFLA_VXLAN_LINK", 2),
                                                                           ("IFLA_VXLAN_LOCAL", "192.168.122.215"),
                                                                           ("IFLA_VXLAN_LEARNING", 0),
                                                                           ("IFLA_VXLAN_PORT", 8472)]})]})])
    link = rtnl_parse.parse_link(m)
    assert (link.index, link.name, link.kind, link.up, link.mtu) == (4, "flannel.1", "vxlan", True, 1450)
    assert link.mac == "02:7d:63:dd:1d:06" and link.txqlen == 0 and link.alias == "x"
    assert link.data == {"id": 1, "link": 2, "local": "192.168.122.215", "learning": 0, "port": 8472}


def test_parse_link_reads_the_ownership_tag_on_lo():
    m = encode(ifinfmsg, rtnl.RTM_NEWLINK, {"index": 1},
               [("IFLA_IFNAME", "lo"), ("IFLA_MTU", 65536), ("IFLA_IFALIAS", "netlab:demo:0123abcd")])
    assert rtnl_parse.parse_link(m).alias == "netlab:demo:0123abcd"
    m = encode(ifinfmsg, rtnl.RTM_NEWLINK, {"index": 1}, [("IFLA_IFNAME", "lo")])
    assert rtnl_parse.parse_link(m).alias is None


def test_parse_link_of_a_veth_end_and_a_bridge_port():
    m = encode(ifinfmsg, rtnl.RTM_NEWLINK, {"index": 9, "flags": 0},
               [("IFLA_IFNAME", "veth1"), ("IFLA_MASTER", 3), ("IFLA_LINK", 2), ("IFLA_LINK_NETNSID", 0),
                ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "veth")]})])
    link = rtnl_parse.parse_link(m)
    assert (link.kind, link.up, link.master, link.peer, link.peer_netnsid) == ("veth", False, 3, 2, 0)
    port = encode(ifinfmsg, rtnl.RTM_NEWLINK, {"index": 9, "family": rtnl.AF_BRIDGE},
                  [("IFLA_IFNAME", "veth1"), ("IFLA_PROTINFO", {"attrs": [("IFLA_BRPORT_MODE", 1)]})])
    assert rtnl_parse.parse_bridge_port(port) == rtnl_parse.PortMsg(9, True, None)
    # `bridge link`'s state: the STP state the kernel holds the port in (learning: set by hand)
    port = encode(ifinfmsg, rtnl.RTM_NEWLINK, {"index": 9, "family": rtnl.AF_BRIDGE},
                  [("IFLA_IFNAME", "veth1"), ("IFLA_PROTINFO", {"attrs": [("IFLA_BRPORT_STATE", 2),
                                                                         ("IFLA_BRPORT_MODE", 0)]})])
    assert rtnl_parse.parse_bridge_port(port) == rtnl_parse.PortMsg(9, False, "learning")


def test_parse_addr_route_neigh_rule():
    a = rtnl_parse.parse_addr(encode(ifaddrmsg, rtnl.RTM_NEWADDR, {"index": 2, "prefixlen": 24, "family": 2},
                                     [("IFA_LOCAL", "10.244.0.2"), ("IFA_ADDRESS", "10.244.0.2"),
                                      ("IFA_BROADCAST", "10.244.0.255"), ("IFA_LABEL", "eth0")]))
    assert (a.index, a.address, a.prefixlen, a.broadcast, a.label) == (2, "10.244.0.2", 24, "10.244.0.255", "eth0")
    r = rtnl_parse.parse_route(encode(rtmsg, rtnl.RTM_NEWROUTE,
                                      {"family": 2, "dst_len": 24, "table": 254, "proto": 3, "scope": 0, "type": 1,
                                       "flags": rtnl.RTNH_F_ONLINK},
                                      [("RTA_DST", "10.244.1.0"), ("RTA_GATEWAY", "10.244.1.0"), ("RTA_OIF", 5),
                                       ("RTA_TABLE", 254), ("RTA_PRIORITY", 20)]))
    assert (r.dst, r.dst_len, r.gateway, r.oif, r.proto, r.priority) == ("10.244.1.0", 24, "10.244.1.0", 5, 3, 20)
    assert r.flags & rtnl.RTNH_F_ONLINK and r.table == 254
    n = rtnl_parse.parse_neigh(encode(ndmsg, rtnl.RTM_NEWNEIGH, {"family": 2, "ifindex": 5, "state": 0x80},
                                      [("NDA_DST", "10.244.1.0"), ("NDA_LLADDR", "02:6b:ac:b7:3a:c5")]))
    assert (n.index, n.dst, n.lladdr, n.state) == (5, "10.244.1.0", "02:6b:ac:b7:3a:c5", 0x80)
    rule = rtnl_parse.parse_rule(encode(fibmsg, rtnl.RTM_NEWRULE,
                                        {"family": 2, "table": 100, "action": 1, "src_len": 16},
                                        [("FRA_PRIORITY", 10), ("FRA_TABLE", 100), ("FRA_SRC", "10.244.0.0"),
                                         ("FRA_IIFNAME", "eth0")]))
    assert (rule.priority, rule.table, rule.src, rule.src_len, rule.iif) == (10, 100, "10.244.0.0", 16, "eth0")


# --- the socket: bounded waits, first failure stops ------------------------------------


class FakeSocket(QueuedSocket):
    """Answers each request with an ACK (or the errno in ``errors``), except those in ``drop``."""

    def __init__(self, errors: dict[int, int] | None = None, drop: set[int] | None = None):
        super().__init__()
        self.errors, self.drop = errors or {}, drop or set()
        self.sent: list[bytes] = []
        self.count = 0

    def send(self, data: bytes) -> int:
        self.sent.append(data)
        for m in nl.split(data):
            self.count += 1
            if self.count in self.drop:
                continue
            self._error(m.seq, self.errors.get(self.count, 0))
        return len(data)


def test_a_lost_ack_is_a_timeout_not_a_hang(monkeypatch):
    sock = FakeSocket(drop={2})
    monkeypatch.setattr(nl, "_readable", lambda s, t: bool(sock.queue))
    conn = nl.Conn(sock=sock, timeout=0.05)  # type: ignore[arg-type]
    requests = [(f"r{i}", rtnl.link_set(i, up=True)) for i in range(1, 4)]
    try:
        conn.batch(requests)
    except nl.NetlinkTimeout as exc:
        assert "no answer from the kernel within 0.05 s" in str(exc)
    else:
        raise AssertionError("a lost ACK must raise NetlinkTimeout")


def test_each_answer_is_its_own_bytes_though_one_buffer_per_thread_receives_them(monkeypatch):
    """Answers are read into the thread's one buffer (no new mebibyte per answer) and copied out of it: an
    answer read earlier is not overwritten by the next, and another thread has a buffer of its own."""
    sock = FakeSocket()
    monkeypatch.setattr(nl, "_readable", lambda s, t: bool(sock.queue))
    conn = nl.Conn(sock=sock, timeout=1)  # type: ignore[arg-type]
    sock.queue += [b"first answer", b"second"]
    first, second = conn._recv(time.monotonic() + 1, "a"), conn._recv(time.monotonic() + 1, "b")
    assert (first, second) == (b"first answer", b"second") and type(first) is bytes
    mine = nl._recv_buffer()
    assert mine is nl._recv_buffer() and len(mine) == nl.RECV_MAX
    theirs: list[memoryview] = []
    worker = threading.Thread(target=lambda: theirs.append(nl._recv_buffer()))
    worker.start()
    worker.join()
    assert theirs[0] is not mine and theirs[0].obj is not mine.obj


def test_get_raises_the_kernels_refusal(monkeypatch):
    """An RTM_GETLINK answered by an error (no such device) is a NetlinkError, not a link."""
    sock = FakeSocket(errors={1: 19})
    monkeypatch.setattr(nl, "_readable", lambda s, t: bool(sock.queue))
    conn = nl.Conn(sock=sock, timeout=1)  # type: ignore[arg-type]
    try:
        conn.get("lo in x", rtnl.link_get(1))
    except nl.NetlinkError as exc:
        assert exc.errno == 19 and "lo in x" in str(exc)
    else:
        raise AssertionError("an error answer must raise NetlinkError")


def test_batch_reports_each_request_and_stops_after_the_failing_chunk(monkeypatch):
    sock = FakeSocket(errors={2: 19})
    monkeypatch.setattr(nl, "_readable", lambda s, t: bool(sock.queue))
    monkeypatch.setattr(nl, "CHUNK", 200)  # a few requests per send()
    conn = nl.Conn(sock=sock, timeout=1)  # type: ignore[arg-type]
    requests = [(f"r{i}", rtnl.link_set(i, up=True, mtu=1450)) for i in range(1, 20)]
    codes = conn.batch(requests)
    assert codes[0] == 0 and codes[1] == 19
    assert len(codes) < len(requests) and len(sock.sent) == 1  # nothing after the chunk that failed
    assert all(flags & nl.NLM_F_ACK for m in nl.split(sock.sent[0]) for flags in [m.flags])


def test_parse_link_reads_the_interfaces_ipv4_sysctls():
    """IFLA_AF_SPEC / AF_INET / IFLA_INET_CONF: one u32 per IPV4_DEVCONF_* (counted from 1)."""
    values = list(range(100, 130))  # devconf 1 -> 100, 2 -> 101 ...
    conf = nl.attr(rtnl.IFLA_INET_CONF, struct.pack(f"={len(values)}I", *values))
    spec = nl.nested(rtnl.IFLA_AF_SPEC, nl.nested(rtnl.AF_INET, conf))
    body = rtnl.IFINFO.pack(0, 0, 3, 1, 0) + nl.string(rtnl.IFLA_IFNAME, "eth0") + spec
    link = rtnl_parse.parse_link(nl.Msg(rtnl.RTM_NEWLINK, 0, 0, body))
    assert link.inet_conf["forwarding"] == "100" and link.inet_conf["rp_filter"] == "107"
    assert link.inet_conf["tag"] == "111" and link.inet_conf["arp_ignore"] == "118"
    assert link.inet_conf["arp_notify"] == "121"  # IPV4_DEVCONF_ARP_NOTIFY = 22 (a pod's eth0 has it at 1)
    assert rtnl_parse.parse_link(nl.Msg(rtnl.RTM_NEWLINK, 0, 0, body[:-len(spec)])).inet_conf == {}


def test_a_multipath_route_is_ip_routes_nexthops():
    """``ip route replace 203.0.113.101/32 nexthop via 192.168.122.2 dev eth0 nexthop via 192.168.122.3 dev eth0``:
    RTA_MULTIPATH's rtnexthops as pyroute2 reads them, each with its gateway, device and weight 1; no RTA_OIF nor
    RTA_GATEWAY beside them."""
    data = rtnl.route_replace("203.0.113.101", 32, 2, None, nexthops=[("192.168.122.2", 2), ("192.168.122.3", 4)])
    msg, mtype, flags = decode(rtmsg, data)
    assert mtype == rtnl.RTM_NEWROUTE and flags & nl.NLM_F_REPLACE and msg.get_attr("RTA_DST") == "203.0.113.101"
    assert msg.get_attr("RTA_OIF") is None and msg.get_attr("RTA_GATEWAY") is None
    hops = msg.get_attr("RTA_MULTIPATH")
    assert [(h["oif"], h["hops"], h["flags"], h.get_attr("RTA_GATEWAY")) for h in hops] == [
        (2, 0, 0, "192.168.122.2"), (4, 0, 0, "192.168.122.3")]
    # The bytes, as the kernel's rtnh_ok()/rtnh_next() walk them: each hop 16 bytes (8 of rtnexthop, 8 of gateway).
    attr = data[16 + 12 + 8:16 + 12 + 8 + 36]
    assert attr == bytes.fromhex("2400 0900" "1000 00 00 02000000 0800 0500 c0a87a02"
                                 "1000 00 00 04000000 0800 0500 c0a87a03")


def test_parse_route_reads_the_hops_of_a_multipath_route():
    m = encode(rtmsg, rtnl.RTM_NEWROUTE, {"family": 2, "dst_len": 32, "table": 254, "proto": 3, "type": 1},
               [("RTA_DST", "203.0.113.101"), ("RTA_TABLE", 254),
                ("RTA_MULTIPATH", [{"oif": 2, "hops": 0, "attrs": [("RTA_GATEWAY", "192.168.122.2")]},
                                   {"oif": 2, "hops": 0, "attrs": [("RTA_GATEWAY", "192.168.122.3")]}])])
    r = rtnl_parse.parse_route(m)
    assert r.multipath and r.gateway is None and r.oif is None
    assert r.nexthops == (("192.168.122.2", 2), ("192.168.122.3", 2))
    # Ours read back by our parser too, and a one-gateway route has none.
    r = rtnl_parse.parse_route(nl.Msg(rtnl.RTM_NEWROUTE, 0, 0, rtnl.route_replace(
        "203.0.113.101", 32, None, None, nexthops=[("192.168.122.2", 5), ("192.168.122.4", 5)])[16:]))
    assert r.nexthops == (("192.168.122.2", 5), ("192.168.122.4", 5))
    assert rtnl_parse.parse_route(nl.Msg(rtnl.RTM_NEWROUTE, 0, 0, rtnl.route_replace(
        "10.0.0.0", 8, 5, "192.168.122.2")[16:])).nexthops == ()


def test_route_get_carries_the_flows_l4_keys_for_a_multipath_hash():
    """``ip route get 203.0.113.101 from 203.0.113.50 iif 3 ipproto tcp sport 40001 dport 80``."""
    data = rtnl.route_get("203.0.113.101", "203.0.113.50", 3, l4=(6, 40001, 80))
    msg, *_ = decode(rtmsg, data)  # pyroute2 0.9 names none of the three: the rest it reads as ever
    assert msg.get_attr("RTA_DST") == "203.0.113.101" and msg.get_attr("RTA_IIF") == 3
    # The three attributes as iproute2's `ip route get ... ipproto tcp sport 40001 dport 80` sends them (seen
    # with strace): RTA_IP_PROTO a u8, RTA_SPORT and RTA_DPORT in network order, each padded to 4 bytes.
    assert data.endswith(bytes.fromhex("0500 1b00 06000000" "0600 1c00 9c410000" "0600 1d00 00500000"))
    assert len(data) == len(rtnl.route_get("203.0.113.101", "203.0.113.50", 3)) + 24
