"""Overlay and route drift against the fake kernel (no root), helper fl60's items: what up's lines say of a
link's flags, flannel.1's settings flanneld leaves at the kernel's defaults (udpcsum, srcport, maxaddress), its
ageing changed in place, a route's tos as part of its identity, a remade link's flags. The root test is
tests/integration/test_overlay_more_live.py."""

from __future__ import annotations

import pytest
from fake_lab import IdleFeature, make_lab, status, up

from netlab.errors import ApplyFailed
from netlab.lab import up as lab_up
from netlab.lab.journal import Journal
from netlab.kernel.fake import FakeKernel

lab = pytest.fixture(make_lab, name="lab")
N1 = "fk-n1"


def test_ups_line_names_the_flags_it_sets_and_clears(lab):
    k = FakeKernel()
    up(lab, k)
    k.ns[N1].links["flannel.1"].flags = ("arp off", "promisc on")  # `ip link set flannel.1 arp off promisc on`
    k.log.clear()
    up(lab, k)
    assert [op.describe() for op in k.log if op.res.kind != "sysctl"] == \
        [f"set arp on, promisc off of link flannel.1 in {N1}"]
    assert status(lab, k).ok


# `ip link add flannel.1 type vxlan ... noudpcsum | srcport 1000 2000 | maxaddress 5` (the kernel refuses to change
# any of them in place: `ip link set ... type vxlan noudpcsum` says "Cannot change UDP_CSUM flag"); flanneld sends
# none of them: UDP checksums on, source ports from the node's local port range ("srcport 0 0"), no address limit
SETTINGS = {
    "noudpcsum": ({"udp_csum": 0}, "udpcsum off (want on)"),
    "srcport": ({"srcport": (1000, 2000)}, "srcport 1000 2000 (want 0 0)"),
    "maxaddress": ({"limit": 5}, "maxaddress 5 (want 0)"),
}


@pytest.mark.parametrize("case", list(SETTINGS))
def test_flannels_udpcsum_srcport_and_maxaddress_are_compared_and_the_device_made_again(lab, case):
    changed, words = SETTINGS[case]
    k = FakeKernel()
    up(lab, k)
    k.ns[N1].links["flannel.1"].vxlan.update(changed)
    (drift,) = status(lab, k).drift
    assert drift.startswith("different: link flannel.1") and f"({words})" in drift, drift
    k.log.clear()
    up(lab, k)
    assert [(op.verb, op.res.kind) for op in k.log if op.res.kind != "sysctl"][:2] == [("del", "vxlan"),
                                                                                      ("add", "vxlan")]
    assert status(lab, k).ok, status(lab, k).drift


def test_flannels_ageing_is_set_back_in_place_and_a_failed_run_puts_the_hand_made_one_back(lab):
    """`ip link set flannel.1 type vxlan ageing 30`: the kernel changes IFLA_VXLAN_AGEING in place (changelink),
    so up does, with its flags in the same message: the device is not made again (nothing that hangs on it goes
    away), and a rollback sets the ageing it had back."""
    k = FakeKernel()
    up(lab, k)
    k.ns[N1].links["flannel.1"].vxlan["ageing"] = 30
    k.ns[N1].links["flannel.1"].flags = ("arp off",)
    (drift,) = status(lab, k).drift
    assert "(arp off (want on), ageing 30 (want 300))" in drift, drift
    k.log.clear()
    up(lab, k)
    assert [op.describe() for op in k.log if op.res.kind != "sysctl"] == \
        [f"set arp on, ageing 300 of link flannel.1 in {N1}"]
    assert status(lab, k).ok and k.ns[N1].links["flannel.1"].vxlan["ageing"] == 300
    undone = 0
    for at in range(1, 10):  # the run failed at each of its steps in turn (the last: an idle feature's start)
        k.ns[N1].links["flannel.1"].vxlan["ageing"] = 30
        k.log.clear()
        try:
            lab_up.up(lab, k, features=(IdleFeature(),), journal=Journal(k, fault_at=at))
        except ApplyFailed as exc:
            assert "rolled back" in str(exc)
            assert k.ns[N1].links["flannel.1"].vxlan["ageing"] == 30, f"fault at {at}"
            undone += any(op.verb == "set" and op.res.kind == "vxlan" for op in k.log)
            continue
        break
    assert undone and k.ns[N1].links["flannel.1"].vxlan["ageing"] == 300


# A route's identity is the kernel's fib key: table, prefix, tos, priority (fib_table_insert/fib_table_delete
# match all four): `ip route add 10.244.1.0/24 tos 0x10 via ...` beside the plan's is another route
ROUTE_NS = "fk-n1"


def route_msg(tos: int = 0, gateway: str = "10.244.1.0"):
    from pyroute2.netlink.rtnl.rtmsg import rtmsg

    from netlab.kernel import netlink as nl
    from netlab.kernel import rtnl, rtnl_parse

    msg = rtmsg()
    for key, value in dict(family=2, dst_len=24, tos=tos, table=254, proto=rtnl.RTPROT_BOOT, scope=0,
                           type=rtnl.RTN_UNICAST, flags=rtnl.RTNH_F_ONLINK).items():
        msg[key] = value
    msg["attrs"] = [("RTA_TABLE", 254), ("RTA_DST", "10.244.1.0"), ("RTA_GATEWAY", gateway), ("RTA_OIF", 5)]
    msg["header"]["type"] = rtnl.RTM_NEWROUTE
    msg.encode()
    (out,) = list(nl.split(bytes(msg.data)))
    return rtnl_parse.parse_route(out)


def route_drift(*routes) -> list[str]:
    from ipaddress import IPv4Address, IPv4Network

    from netlab.kernel import rtnl_parse
    from netlab.kernel.base import Snapshot
    from netlab.plan.resources import Route
    from netlab.realize.diff import diff_netns
    from netlab.realize.observe import observe

    vx = rtnl_parse.LinkMsg(5, "flannel.1", None, True, 1450, "02:00:00:00:00:0c", None, None, None, None, 0, 0)
    snap = Snapshot(netns=ROUTE_NS, links={"flannel.1": vx}, routes=list(routes))
    want = [Route(netns=ROUTE_NS, dst=IPv4Network("10.244.1.0/24"), gateway=IPv4Address("10.244.1.0"),
                  dev="flannel.1", onlink=True)]
    obs = observe(snap, {r.key: r for r in want}, {})
    return [str(d) for d in diff_netns(want, obs) if d.resource.kind == "route"]


def test_a_route_with_the_plans_destination_and_a_tos_is_another_route():
    assert route_drift(route_msg()) == []
    # the kernel dumps the route with a tos first: it stood for the plan's (as planned, or "different")
    assert route_drift(route_msg(tos=0x10, gateway="10.244.1.9"), route_msg()) == \
        [f"extra: route 10.244.1.0/24 tos 0x10 via 10.244.1.9 dev flannel.1 onlink in {ROUTE_NS}"]
    assert route_drift(route_msg(tos=0x10)) == [  # the plan's deleted, one with a tos added
        f"missing: route 10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink in {ROUTE_NS}",
        f"extra: route 10.244.1.0/24 tos 0x10 via 10.244.1.0 dev flannel.1 onlink in {ROUTE_NS}"]


def test_up_deletes_a_route_with_a_tos_and_puts_back_the_plans_it_stood_for(lab):
    from dataclasses import replace

    k = FakeKernel()
    up(lab, k)
    (planned,) = [r for r in k.ns[N1].routes if str(r.dst) == "10.244.1.0/24"]
    k.ns[N1].routes.remove(planned)  # `ip route del 10.244.1.0/24; ip route add 10.244.1.0/24 tos 0x10 via ...`
    k.ns[N1].routes.append(replace(planned, tos=0x10))
    assert sorted(d.split(" in ")[0] for d in status(lab, k).drift) == [
        "extra: route 10.244.1.0/24 tos 0x10 via 10.244.1.0 dev flannel.1 onlink",
        "missing: route 10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink"]
    k.log.clear()
    up(lab, k)
    assert [op.describe() for op in k.log if op.res.kind == "route"] == [
        f"del route 10.244.1.0/24 tos 0x10 via 10.244.1.0 dev flannel.1 onlink in {N1}",
        f"replace route 10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink in {N1}"]
    assert status(lab, k).ok and k.ns[N1].routes.count(planned) == 1 and all(r.tos == 0 for r in k.ns[N1].routes)


def test_a_bridge_up_deleted_is_made_again_by_a_rollback_with_its_flags(lab):
    """`ip link add br9 type bridge; ip link set br9 promisc on arp off` in a node: extra, deleted by up; a run that
    fails after makes it again with the flags it had (the journal's add of it as it was read)."""
    from netlab.kernel.fake_objects import FLink

    undone = 0
    for at in range(1, 10):
        k = FakeKernel()
        up(lab, k)
        k.ns[N1].links["br9"] = FLink("br9", 99, "bridge", 1500, "02:00:00:00:00:99", True,
                                      flags=("arp off", "promisc on"))
        k.log.clear()
        try:
            lab_up.up(lab, k, features=(IdleFeature(),), journal=Journal(k, fault_at=at))
        except ApplyFailed:
            deleted = any(op.verb == "del" and getattr(op.res, "name", "") == "br9" for op in k.log)
            assert "br9" in k.ns[N1].links and k.ns[N1].links["br9"].flags == ("arp off", "promisc on"), at
            undone += deleted
            continue
        break
    assert undone and "br9" not in k.ns[N1].links
