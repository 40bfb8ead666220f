"""An address's flags are part of it (QA 62k #2): one added again with ``noprefixroute`` (the connected route gone,
a pod's routes through its gateway refused: up failed every time with "network unreachable") was "as planned". The
lab's addresses have their connected route: the flag is drift that up mends by adding the address again (the
kernel's replace keeps the flags), before the routes that need it and with those its deletion took."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Interface

import pytest
from fake_lab import make_lab, status, up

from netlab.kernel import rtnl, rtnl_parse
from netlab.kernel.base import Op
from netlab.kernel.fake import FakeKernel
from netlab.kernel.live_objects import encode
from netlab.kernel.netlink import attrs, get_u32
from netlab.plan.resources import Address, resource_from_json

lab = pytest.fixture(make_lab, name="lab")


def _pod_address(k: FakeKernel, ns: str = "fk-a") -> Address:
    [a] = [a for a in k.ns[ns].addrs if a.dev == "eth0"]
    return a


def test_noprefixroute_on_a_pod_is_drift_and_up_adds_the_address_again_before_its_routes(lab):
    k = FakeKernel()
    up(lab, k)
    a = _pod_address(k)
    k._apply(Op("del", a))  # its routes go with it (its device's last address)
    k._apply(Op("add", replace(a, noprefixroute=True)))
    drift = status(lab, k).drift
    assert drift == [
        "different: address 10.244.0.2/24 on eth0 in fk-a (noprefixroute: the kernel makes no connected route for "
        "it (want one))",
        "missing: route 10.244.0.0/16 via 10.244.0.1 dev eth0 in fk-a",
        "missing: route default via 10.244.0.1 dev eth0 in fk-a"], drift
    k.log.clear()
    up(lab, k)
    assert [op.describe() for op in k.log] == [
        "del address 10.244.0.2/24 on eth0 in fk-a", "add address 10.244.0.2/24 on eth0 in fk-a",
        "replace route 10.244.0.0/16 via 10.244.0.1 dev eth0 in fk-a",
        "replace route default via 10.244.0.1 dev eth0 in fk-a"]
    assert status(lab, k).ok and _pod_address(k) == a


def test_noprefixroute_on_a_node_s_only_address_puts_back_the_routes_and_arp_its_deletion_takes(lab):
    """The routes were there (added back by hand, onlink): taking the address away takes them (and the device's ARP
    entries), so up puts back the plan's through that device after the address."""
    k = FakeKernel()
    up(lab, k)
    n1 = k.ns["fk-n1"]
    [vtep] = [a for a in n1.addrs if a.dev == "flannel.1"]
    n1.addrs[n1.addrs.index(vtep)] = replace(vtep, noprefixroute=True)
    assert status(lab, k).drift == [
        "different: address 10.244.0.0/32 on flannel.1 in fk-n1 (noprefixroute: the kernel makes no connected "
        "route for it (want one))"]
    k.log.clear()
    up(lab, k)
    said = [op.describe() for op in k.log]
    assert said[:2] == ["del address 10.244.0.0/32 on flannel.1 in fk-n1",
                        "add address 10.244.0.0/32 on flannel.1 in fk-n1"], said
    assert sorted(said[2:]) == [
        "replace neighbour 10.244.1.0 lladdr fe:05:85:d1:4e:48 dev flannel.1 in fk-n1",
        "replace route 10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink in fk-n1"], said
    assert status(lab, k).ok


def test_the_flag_is_read_and_sent():
    from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
    from test_rtnl import encode as encode_msg

    m = encode_msg(ifaddrmsg, rtnl.RTM_NEWADDR, {"family": 2, "prefixlen": 24, "index": 3},
                   [("IFA_LOCAL", "10.244.0.2"), ("IFA_ADDRESS", "10.244.0.2"), ("IFA_FLAGS", 0x200)])
    assert rtnl_parse.parse_addr(m).flags & rtnl.IFA_F_NOPREFIXROUTE
    a = Address(netns="x", dev="eth0", address=IPv4Interface("10.244.0.2/24"))
    [plain] = encode(Op("add", a), lambda ns, dev: 3)
    [flagged] = encode(Op("add", replace(a, noprefixroute=True)), lambda ns, dev: 3)
    body = 16 + 8  # nlmsghdr, ifaddrmsg
    assert rtnl.IFA_FLAGS not in attrs(plain, body)
    assert get_u32(attrs(flagged, body), rtnl.IFA_FLAGS) == rtnl.IFA_F_NOPREFIXROUTE


def test_the_plan_s_json_says_no_flag_and_a_live_one_s_round_trips():
    a = Address(netns="x", dev="eth0", address=IPv4Interface("10.244.0.2/24"))
    assert set(a.to_json()) == {"kind", "netns", "dev", "address", "broadcast", "scope", "metric"}
    live = replace(a, noprefixroute=True)
    assert resource_from_json(live.to_json()) == live
    assert live.command().endswith(" dev eth0 noprefixroute")
