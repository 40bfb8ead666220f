"""kernel/cniprobe.py without root: its requests (a VLAN-filtering bridge and a port's VLAN, a vrf, an ingress qdisc,
a u32 filter with mirred's redirect) decoded by pyroute2's parsers, and what the probe says for each answer the
kernel may give, on a fake rtnetlink socket. The real kernel: tests/integration/test_doctor_cni_needs_live.py."""

from __future__ import annotations

import errno
import socket

import pytest
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.tcmsg import tcmsg

from netlab.kernel import cniprobe, netlink, rtnl, rtnl_parse, tc


def decoded(cls, data: bytes):
    msg = cls(data)
    msg.decode()
    assert msg["header"]["length"] == len(data)
    return msg


def test_the_bridge_plugins_vlan_requests():
    bridge = decoded(ifinfmsg, rtnl.bridge_add(0, "cni0", None, None, vlan_filtering=True))
    info = bridge.get_attr("IFLA_LINKINFO")
    assert info.get_attr("IFLA_INFO_KIND") == "bridge"
    assert info.get_attr("IFLA_INFO_DATA").get_attr("IFLA_BR_VLAN_FILTERING") == 1
    plain = decoded(ifinfmsg, rtnl.bridge_add(0, "cni0", None, None)).get_attr("IFLA_LINKINFO")
    assert plain.get_attr("IFLA_INFO_DATA") is None  # netlab's own bridges: as before
    port = decoded(ifinfmsg, rtnl.port_vlan_add(7, 100))
    assert port["header"]["type"] == rtnl.RTM_SETLINK and port["family"] == socket.AF_BRIDGE and port["index"] == 7
    spec = port.get_attr("IFLA_AF_SPEC")
    assert spec.get_attr("IFLA_BRIDGE_VLAN_FLAGS") == rtnl.BRIDGE_FLAGS_MASTER  # pyroute2's name for IFLA_BRIDGE_FLAGS
    assert spec.get_attr("IFLA_BRIDGE_VLAN_INFO") == {"flags": 6, "vid": 100}  # pvid | untagged


def test_a_vrf_with_its_table():
    info = decoded(ifinfmsg, rtnl.child_add("blue", "vrf", None, rtnl.vrf_table(100))).get_attr("IFLA_LINKINFO")
    assert info.get_attr("IFLA_INFO_KIND") == "vrf"
    assert info.get_attr("IFLA_INFO_DATA").get_attr("IFLA_VRF_TABLE") == 100


def test_the_bandwidth_plugins_egress_redirect():
    ingress = decoded(tcmsg, tc.ingress_add(3))
    assert (ingress["index"], ingress["handle"], ingress["parent"]) == (3, 0xFFFF0000, 0xFFFFFFF1)
    assert ingress.get_attr("TCA_KIND") == "ingress" and ingress.get_attr("TCA_OPTIONS") is None
    u32 = decoded(tcmsg, tc.u32_add(3, 1, 0x10001, redirect_to=9))
    assert u32["header"]["type"] == tc.RTM_NEWTFILTER and u32["parent"] == 0xFFFF0000
    assert u32["info"] == (1 << 16) | socket.htons(0x0003)  # prio 1, protocol all
    options = u32.get_attr("TCA_OPTIONS")
    assert options.get_attr("TCA_U32_CLASSID") == 0x10001
    sel = options.get_attr("TCA_U32_SEL")
    assert (sel["flags"], sel["nkeys"], sel["keys"]) == (1, 1, [{"key_mask": 0, "key_val": 0, "key_off": 0,
                                                                   "key_offmask": 0}])  # terminal, matches all
    action = options.get_attr("TCA_U32_ACT").get_attr("TCA_ACT_PRIO_1")
    assert action.get_attr("TCA_ACT_KIND") == "mirred"
    parms = action.get_attr("TCA_ACT_OPTIONS").get_attr("TCA_MIRRED_PARMS")
    assert (parms["eaction"], parms["ifindex"], parms["action"]) == (1, 9, 4)  # egress redirect, stolen
    assert decoded(tcmsg, tc.u32_add(3, 1, 0x10001)).get_attr("TCA_OPTIONS").get_attr("TCA_U32_ACT") is None


class FakeConn:
    """An rtnetlink socket of a kernel without ``absent`` (kinds, by the text of their request): refused with the
    errno the real kernel gives."""

    def __init__(self, absent: dict[bytes, int]):
        self.absent = absent
        self.asked: list[str] = []

    def request(self, what: str, msg: bytes) -> None:
        self.asked.append(what)
        for kind, code in self.absent.items():
            if kind in msg:
                raise netlink.NetlinkError(code, what)


@pytest.fixture
def links(monkeypatch):
    names = ((2, cniprobe.LOWER), (3, cniprobe.LOWER + "-p"), (4, "probe-vbridge"))
    monkeypatch.setattr(rtnl_parse, "dump_links", lambda conn, where: [
        rtnl_parse.LinkMsg(i, n, None, False, None, None, None, None, None, None, 0, None) for i, n in names])


def test_each_feature_found_as_the_kernel_answers(links):
    conn = FakeConn({b"vrf\0": errno.EOPNOTSUPP, b"u32\0": errno.ENOENT})
    found = cniprobe.probe_cni_features(conn, list(cniprobe.FEATURES), ())  # type: ignore[arg-type]
    assert found["vrf"] == (False, "not in this kernel (ENOTSUP: Operation not supported)")
    assert found["ifb"] == (True, "created one in a throwaway namespace")
    assert found["macvlan"] == (True, "created one on a veth in a throwaway namespace")
    assert found["ingress"] == (True, cniprobe.MADE["ingress"])
    assert found["u32"] == (False, "not in this kernel (ENOENT: No such file or directory)")
    # mirred rides on a u32 filter: without one it is not tried, and its line says why
    assert found["mirred"] == (False, "not tried: it hangs on the u32 (not in this kernel (ENOENT: No such file or "
                                      "directory))")
    assert found["fib_rules"] == (True, cniprobe.MADE["fib_rules"])
    assert found["vlan_filtering"] == (True, cniprobe.MADE["vlan_filtering"])


def test_bridge_vlan_filtering_refused_at_the_bridge_or_at_the_ports_vlan(links):
    refused = FakeConn({rtnl.nested(rtnl.IFLA_INFO_DATA, netlink.u8(rtnl.IFLA_BR_VLAN_FILTERING, 1)):
                        errno.EOPNOTSUPP})
    assert cniprobe.probe_cni_features(refused, ["vlan_filtering"], ())["vlan_filtering"] == (  # type: ignore[arg-type]
        False, "not in this kernel (ENOTSUP: Operation not supported)")
    port = FakeConn({netlink.attr(rtnl.IFLA_BRIDGE_VLAN_INFO, b"\x06\x00\x05\x00"): errno.EOPNOTSUPP})
    assert cniprobe.probe_cni_features(port, ["vlan_filtering"], ())["vlan_filtering"] == (  # type: ignore[arg-type]
        False, "not in this kernel (ENOTSUP: Operation not supported)")
    assert port.asked[-2:] == ["a veth port of the VLAN-filtering bridge", "the port's VLAN"]


def test_a_step_whose_module_is_not_loaded_is_not_tried_nor_what_hangs_on_it(links):
    conn = FakeConn({})
    found = cniprobe.probe_cni_features(conn, ["ingress", "mirred"], {"u32"})  # type: ignore[arg-type]
    assert found["ingress"][0] is True and "u32" not in found
    assert found["mirred"] == (None, "not tried: it hangs on the u32, whose module cls_u32 is on disk but not loaded "
                                     "(trying would load it)")
    assert not any("mirred" in what or "u32" in what for what in conn.asked)


def test_a_step_asked_alone_gets_its_bases_made(links):
    conn = FakeConn({})
    assert cniprobe.probe_cni_features(conn, ["mirred"], ())["mirred"] == (  # type: ignore[arg-type]
        True, cniprobe.MADE["mirred"])
    assert conn.asked == ["a lower veth in a throwaway namespace", "a ingress in a throwaway namespace",
                          "a u32 in a throwaway namespace", "a mirred in a throwaway namespace"]


def test_sbrs_ipv6_rule_is_tried_beside_the_ipv4_one(links):
    conn = FakeConn({})
    found = cniprobe.probe_cni_features(conn, ["fib_rules", "fib_rules6"], ())  # type: ignore[arg-type]
    assert found == {"fib_rules": (True, cniprobe.MADE["fib_rules"]), "fib_rules6": (True, cniprobe.MADE["fib_rules6"])}
    # a kernel without IPv6 (ipv6.disable=1) refuses the family: EAFNOSUPPORT, as without CONFIG_IPV6_MULTIPLE_TABLES
    no_v6 = FakeConn({bytes([socket.AF_INET6, 0, 128]): errno.EAFNOSUPPORT})  # the rule's family, dst_len, src_len
    found = cniprobe.probe_cni_features(no_v6, ["fib_rules", "fib_rules6"], ())  # type: ignore[arg-type]
    assert found["fib_rules"][0] is True
    assert found["fib_rules6"] == (False, "not in this kernel (EAFNOSUPPORT: Address family not supported by protocol)")


def test_an_ipv6_rule_as_pyroute2_reads_it():
    from pyroute2.netlink.rtnl.fibmsg import fibmsg

    msg = decoded(fibmsg, rtnl.rule_add(1000, 100, src="fd00::1", src_len=128))
    assert (msg["family"], msg["src_len"], msg["table"]) == (socket.AF_INET6, 128, 100)
    assert msg.get_attr("FRA_SRC") == "fd00::1" and msg.get_attr("FRA_PRIORITY") == 1000
