"""A run that repairs an MTU (a link's, a route's ``mtu``) flushes the path MTUs the lab's namespaces learned
(lab/pmtu.py): the senders behind the repaired hop cached its "fragmentation needed" for 600 s. Any other repair
flushes nothing."""

from __future__ import annotations

from dataclasses import replace

import pytest
from fake_lab import make_lab, status, up
from test_connected_route_drift import connected

from netlab.kernel.base import Op
from netlab.kernel.fake import FakeKernel
from netlab.lab.pmtu import changes_an_mtu
from netlab.plan.resources import VethPeer

lab = pytest.fixture(make_lab, name="lab")


def test_a_route_mtu_repaired_flushes_every_namespace_of_the_lab(lab):
    k = FakeKernel()
    up(lab, k)
    k.ns["fk-n1"].change_route("replace", connected("fk-n1", "10.244.0.0/24", "cni0", "10.244.0.1",
                                                    metrics=((2, 1000),)))
    result = up(lab, k)
    assert sorted(k.flushed) == sorted(k.ns)
    assert f"flushed the path MTUs learned while an MTU was other than planned in {len(k.ns)} namespaces (ip route flush " \
           "cache)" in result.fixed
    assert status(lab, k).ok


def test_a_link_mtu_repaired_flushes_and_another_repair_does_not(lab):
    k = FakeKernel()
    up(lab, k)
    k.ns["fk-b"].links["eth0"].up = False
    up(lab, k)
    assert k.flushed == []
    k.ns["fk-b"].links["eth0"].mtu = 1000
    up(lab, k)
    assert sorted(k.flushed) == sorted(k.ns)


def test_what_changes_an_mtu():
    eth0 = VethPeer(netns="x", name="eth0", mtu=1450, mac="aa:bb:cc:dd:ee:ff", txqlen=0)
    assert changes_an_mtu(Op("set", eth0, old=replace(eth0, mtu=1000)))
    assert not changes_an_mtu(Op("set", eth0, old=replace(eth0, up=False)))
    assert not changes_an_mtu(Op("add", eth0))  # made again: while it was missing, nothing learned through it
    route = connected("x", "10.0.0.0/24", "eth0", "10.0.0.1")
    assert changes_an_mtu(Op("del", replace(route, metrics=((2, 1000),))))
    assert not changes_an_mtu(Op("add", route))
