"""An address's flags and lifetimes are part of it (QA 62k #2, #3): one added again with ``noprefixroute`` (the
connected route gone, a pod's routes through its gateway refused: up failed every time with "network unreachable")
or with ``valid_lft 40 preferred_lft 40`` (the kernel deletes it 40 s later) was "as planned". The lab's addresses
are valid forever with their connected route: another flag is drift that up mends by adding the address again (the
kernel's replace keeps the flags), before the routes that need it and with those its deletion took; a finite
lifetime only is set forever in place (``ip addr replace``), nothing taken away meanwhile."""

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


def test_a_finite_lifetime_is_drift_and_up_sets_it_forever_in_place(lab):
    k = FakeKernel()
    up(lab, k)
    a = _pod_address(k)
    fading = replace(a, valid_lft=38, preferred_lft=38)
    k.ns["fk-a"].addrs[k.ns["fk-a"].addrs.index(a)] = fading
    said = status(lab, k)
    assert said.drift == [
        "different: address 10.244.0.2/24 on eth0 in fk-a (valid_lft finite (want forever): the kernel deletes it "
        "when it runs out, preferred_lft finite (want forever))"]
    # The seconds left count down: in the JSON's details alone, so that two statuses' words are the same
    [detail] = said.details
    assert (detail["valid_lft_s"], detail["preferred_lft_s"]) == (38, 38)
    k.ns["fk-a"].addrs[k.ns["fk-a"].addrs.index(fading)] = replace(fading, valid_lft=37, preferred_lft=None)
    again = status(lab, k)
    assert again.drift == [
        "different: address 10.244.0.2/24 on eth0 in fk-a (valid_lft finite (want forever): the kernel deletes it "
        "when it runs out)"]
    assert (again.details[0]["valid_lft_s"], again.details[0]["preferred_lft_s"]) == (37, None)
    k.ns["fk-a"].addrs[k.ns["fk-a"].addrs.index(replace(fading, valid_lft=37, preferred_lft=None))] = fading
    k.log.clear()
    up(lab, k)
    assert [(op.verb, op.res, op.old) for op in k.log] == [("replace", a, fading)]  # no route taken meanwhile
    assert status(lab, k).ok and _pod_address(k) == a


def test_lifetimes_and_flags_are_read_and_sent():
    from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
    from test_rtnl import encode as encode_msg

    m = encode_msg(ifaddrmsg, rtnl.RTM_NEWADDR, {"family": 2, "prefixlen": 24, "index": 3},
                   [("IFA_LOCAL", "10.244.0.2"), ("IFA_ADDRESS", "10.244.0.2"), ("IFA_FLAGS", 0x200),
                    ("IFA_CACHEINFO", {"ifa_preferred": 30, "ifa_valid": 40, "cstamp": 1, "tstamp": 2})])
    got = rtnl_parse.parse_addr(m)
    assert (got.valid_lft, got.preferred_lft, bool(got.flags & rtnl.IFA_F_NOPREFIXROUTE)) == (40, 30, True)
    forever = encode_msg(ifaddrmsg, rtnl.RTM_NEWADDR, {"family": 2, "prefixlen": 24, "index": 3},
                         [("IFA_LOCAL", "10.244.0.2"), ("IFA_CACHEINFO", {"ifa_preferred": 0xFFFFFFFF,
                                                                          "ifa_valid": 0xFFFFFFFF})])
    assert (rtnl_parse.parse_addr(forever).valid_lft, rtnl_parse.parse_addr(forever).preferred_lft) == (None, None)

    a = Address(netns="x", dev="eth0", address=IPv4Interface("10.244.0.2/24"))
    [plain] = encode(Op("add", a), lambda ns, dev: 3)
    [flagged] = encode(Op("add", replace(a, noprefixroute=True, valid_lft=40, preferred_lft=30)), lambda ns, dev: 3)
    [again] = encode(Op("replace", a), lambda ns, dev: 3)
    body = 16 + 8  # nlmsghdr, ifaddrmsg
    assert rtnl.IFA_FLAGS not in attrs(plain, body) and rtnl.IFA_CACHEINFO not in attrs(plain, body)
    assert get_u32(attrs(flagged, body), rtnl.IFA_FLAGS) == rtnl.IFA_F_NOPREFIXROUTE
    assert attrs(flagged, body)[rtnl.IFA_CACHEINFO][:8] == (30).to_bytes(4, "little") + (40).to_bytes(4, "little")
    assert attrs(again, body)[rtnl.IFA_CACHEINFO][:8] == b"\xff" * 8  # forever, in place (NLM_F_REPLACE)
    flags = int.from_bytes(again[6:8], "little")
    assert flags & 0x100 and not flags & 0x200  # NLM_F_REPLACE, not NLM_F_EXCL


def test_the_plan_s_json_says_neither_and_a_live_one_s_round_trips():
    a = Address(netns="x", dev="eth0", address=IPv4Interface("10.244.0.2/24"))
    assert set(a.to_json()) == {"kind", "netns", "dev", "address", "broadcast", "scope", "metric"}
    live = replace(a, noprefixroute=True, valid_lft=0, preferred_lft=0)
    assert resource_from_json(live.to_json()) == live
    assert live.command().endswith(" dev eth0 noprefixroute valid_lft 0 preferred_lft 0")
