"""A bridge port's STP state against the fake kernel (no root): status names a state set by hand, up sets it back.

STP is off on netlab's bridges: the kernel makes a port forwarding once it is
up with carrier in a bridge that is up, and disables it while it is not
(``bridge link``: state disabled). A hand may hold it in another state
(``bridge link set dev PORT state learning``); the bridge then forwards
nothing to or from the pod behind it. The lab's plan holds every port of its
bridges forwarding: status names the state, up sets it back with one op (the
veth is not made again). A port the kernel disabled because its link, its
veth peer or its bridge is down is that link's drift, which status names
once; repairing it brings the port back by itself.

tests/integration/test_repair.py checks the same on real namespaces.
"""

from __future__ import annotations

import errno
from dataclasses import replace

import pytest
from fake_lab import make_lab, status, up

from netlab.errors import ApplyFailed
from netlab.kernel.base import KernelError, Op
from netlab.kernel.fake import FakeKernel
from netlab.plan.build import build_plan
from netlab.plan.resources import Bridge, Veth, VethPeer

lab = pytest.fixture(make_lab, name="lab")


def port_of(lab, pod: str) -> Veth:
    """The pod's port on its node's cni0, as planned."""
    return next(r for r in build_plan(lab).of_kind("veth") if isinstance(r, Veth) and r.peer_netns == f"fk-{pod}")


def state_of(k: FakeKernel, port: Veth) -> str:
    """The port's state as the kernel reports it (the AF_BRIDGE link dump's IFLA_BRPORT_STATE)."""
    snap = k.snapshot(port.netns)
    return snap.port_state[snap.links[port.name].index]


def set_by_hand(k: FakeKernel, port: Veth, state: str) -> None:
    """``bridge -n NODE link set dev PORT state STATE``."""
    k.apply([Op("set", replace(port, port_state=state), old=replace(port, port_state=None))])


def test_every_port_of_the_labs_bridges_is_planned_forwarding(lab):
    veths = [r for r in build_plan(lab).of_kind("veth") if isinstance(r, Veth)]
    assert {(v.master, v.port_state) for v in veths} == {("cni0", "forwarding"), ("br0", "forwarding")}
    assert len(veths) == 4  # two pods' ports on cni0, two nodes' on the underlay's br0


@pytest.mark.parametrize("state", ["learning", "listening", "disabled"])
def test_a_port_state_set_by_hand_is_named_and_up_sets_only_it_back(lab, state):
    k = FakeKernel()
    up(lab, k)
    port = port_of(lab, "a")
    set_by_hand(k, port, state)
    assert state_of(k, port) == state
    assert status(lab, k).drift == [
        f"different: link {port.name} in fk-n1 (bridge port of cni0 in state {state}, want forwarding: cni0 forwards "
        "nothing to or from eth0 in fk-a)"]
    k.log.clear()
    up(lab, k)
    # The minimal op: the port's state set (RTM_SETLINK, AF_BRIDGE), not the veth made again.
    assert [op.describe() for op in k.log] == [f"set port_state of link {port.name} in fk-n1"]
    assert state_of(k, port) == "forwarding" and status(lab, k).ok


def test_blocking_is_forwarding_at_once_as_without_stp():
    """br_set_port_state runs the port state selection: with STP off a blocking port is made forwarding."""
    k = FakeKernel()
    port = Veth(netns="n", name="p", mtu=1500, mac="aa:00:00:00:00:01", peer_netns="q", peer_name="eth0",
                peer_mac="aa:00:00:00:00:02", master="br", port_state="forwarding")
    for ns in ("n", "q"):
        k.create_netns(ns, "t", ())
    k.apply([Op("add", Bridge(netns="n", name="br", mtu=1500, mac="aa:00:00:00:00:03")), Op("add", port)])
    set_by_hand(k, port, "blocking")
    assert state_of(k, port) == "forwarding"


@pytest.mark.parametrize("cause", ["pod eth0 down", "port down", "bridge down"])
def test_a_port_the_kernel_disabled_is_its_links_drift_only_and_comes_back_with_it(lab, cause):
    """A hand's state, then the port's link, its veth peer or its bridge down: the kernel disables the port, and
    makes it forwarding again once they are up. Status names the link down, not the port a second time; up sets
    the link up and nothing else of the port."""
    k = FakeKernel()
    up(lab, k)
    port = port_of(lab, "a")
    set_by_hand(k, port, "learning")
    down = {"pod eth0 down": VethPeer(netns="fk-a", name="eth0", mtu=port.mtu, mac=port.peer_mac),
            "port down": port,
            "bridge down": next(r for r in build_plan(lab).of_kind("bridge") if r.netns == "fk-n1")}[cause]
    k.apply([Op("set", replace(down, up=False), old=down)])
    assert state_of(k, port) == "disabled"
    drift = status(lab, k).drift
    assert f"different: {down.describe()} (down)" in drift, drift
    assert not any("bridge port" in line for line in drift), drift
    # A port without carrier takes no other state (the kernel says ENETDOWN), or none while it is down.
    if cause != "bridge down":
        with pytest.raises(KernelError) as exc:
            set_by_hand(k, port, "forwarding")
        assert exc.value.code == errno.ENETDOWN
    k.log.clear()
    up(lab, k)
    assert not any("port_state" in op.describe() for op in k.log), [op.describe() for op in k.log]
    assert state_of(k, port) == "forwarding" and status(lab, k).ok


def test_a_port_released_from_its_bridge_is_enslaved_again_as_a_new_port_forwarding(lab):
    """`ip link set PORT nomaster` after a hand's state: the link's master is the drift; enslaving it again
    makes a new port, which the kernel makes forwarding: no state op, no second line."""
    k = FakeKernel()
    up(lab, k)
    port = port_of(lab, "a")
    set_by_hand(k, port, "learning")
    k.apply([Op("set", replace(port, master=None), old=port)])
    drift = status(lab, k).drift
    assert len(drift) == 1 and "master none (want cni0)" in drift[0] and "bridge port" not in drift[0], drift
    k.log.clear()
    up(lab, k)
    assert [op.describe() for op in k.log] == [f"set master, hairpin of link {port.name} in fk-n1"]
    assert state_of(k, port) == "forwarding" and status(lab, k).ok


def test_a_failed_port_state_set_leaves_the_port_as_it_was(lab):
    k = FakeKernel()
    up(lab, k)
    port = port_of(lab, "b")
    set_by_hand(k, port, "listening")
    k.fail = lambda op: errno.EBUSY if op.verb == "set" and isinstance(op.res, Veth) else None
    with pytest.raises(ApplyFailed):
        up(lab, k)
    assert state_of(k, port) == "listening"
