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
