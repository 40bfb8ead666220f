"""A bridge's settings, its ports' and the FDB entries a hand adds on a port, against the fake kernel (no root).

netlab's bridges (a node's cni0, the underlay's br0) and their ports have the kernel's defaults, as the bridge CNI
plugin leaves them (hairpin aside): a port set ``bcast_flood off`` or ``isolated on``, a bridge set
``stp_state 1``, or a static FDB entry that pins a pod's MAC to another port cut pods off. Status names each
(the port, the bridge, the setting, the plan's value), up changes it back in place (no link made again) and
deletes the entry. tests/integration/test_bridge_settings.py checks the same on real namespaces; the codec's
messages are checked against pyroute2's decoder here.
"""

from __future__ import annotations

import struct
from dataclasses import replace

import pytest
from fake_lab import make_lab, status, up
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.ndmsg import ndmsg

from netlab.kernel import netlink as nl
from netlab.kernel import rtnl, rtnl_bridge, rtnl_parse
from netlab.kernel.base import Op
from netlab.kernel.fake import FakeKernel
from netlab.plan.build import build_plan
from netlab.plan.resources import Bridge, PortFdb, Veth, resource_from_json

lab = pytest.fixture(make_lab, name="lab")


def port_of(lab, pod: str) -> Veth:
    return next(r for r in build_plan(lab).of_kind("veth") if isinstance(r, Veth) and r.peer_netns == f"fk-{pod}")


def bridge_of(lab, netns: str) -> Bridge:
    return next(r for r in build_plan(lab).of_kind("bridge") if isinstance(r, Bridge) and r.netns == netns)


def test_the_plan_holds_the_kernels_defaults(lab):
    plan = build_plan(lab)
    assert all(not r.settings for r in plan.of_kind("bridge"))  # type: ignore[attr-defined]
    assert all(not r.port_settings for r in plan.of_kind("veth"))  # type: ignore[attr-defined]
    assert "port_settings" not in port_of(lab, "a").to_json() and "settings" not in bridge_of(lab, "fk-n1").to_json()


@pytest.mark.parametrize("words, said", [
    (("bcast_flood off",), "bcast_flood off (want on)"),
    (("isolated on", "learning off"), "learning off (want on), isolated on (want off)"),
    (("cost 7",), "cost 7 (want 2)"),
])
def test_a_ports_setting_changed_by_hand_is_named_and_up_sets_only_it_back(lab, words, said):
    k = FakeKernel()
    up(lab, k)
    port = port_of(lab, "a")
    k.apply([Op("set", replace(port, port_settings=words), old=port)])  # `bridge link set dev PORT ...`
    assert status(lab, k).drift == [f"different: link {port.name} in fk-n1 (bridge port of cni0: {said})"]
    k.log.clear()
    up(lab, k)
    assert [op.describe() for op in k.log] == [f"set port_settings of link {port.name} in fk-n1"]
    assert status(lab, k).ok


def test_an_underlay_port_isolated_is_named(lab):
    k = FakeKernel()
    up(lab, k)
    port = next(r for r in build_plan(lab).of_kind("veth") if isinstance(r, Veth) and r.master == "br0")
    k.apply([Op("set", replace(port, port_settings=("isolated on",)), old=port)])
    assert status(lab, k).drift == [
        f"different: link {port.name} in {port.netns} (bridge port of br0: isolated on (want off))"]
    up(lab, k)
    assert status(lab, k).ok


def test_a_bridges_setting_changed_by_hand_is_named_and_up_sets_it_back(lab):
    k = FakeKernel()
    up(lab, k)
    br = bridge_of(lab, "fk-n1")
    k.apply([Op("set", replace(br, settings=("stp_state 1", "mcast_snooping 0")), old=br)])
    assert status(lab, k).drift == [
        "different: link cni0 in fk-n1 (stp_state 1 (want 0), mcast_snooping 0 (want 1))"]
    k.log.clear()
    up(lab, k)
    assert [op.describe() for op in k.log] == ["set settings of link cni0 in fk-n1"]
    assert status(lab, k).ok


def test_a_static_fdb_entry_added_by_hand_is_extra_and_up_deletes_it(lab):
    k = FakeKernel()
    up(lab, k)
    a = port_of(lab, "a")
    entry = PortFdb(netns="fk-n1", dev="cni0", lladdr=a.peer_mac, master="cni0", state="static")
    k.apply([Op("add", entry)])  # `bridge fdb add MAC-of-a dev cni0 master static`: a's frames go to the node
    assert status(lab, k).drift == [f"extra: bridge fdb {a.peer_mac} dev cni0 master cni0 static in fk-n1"]
    k.log.clear()
    up(lab, k)
    assert [op.describe() for op in k.log] == [
        f"del bridge fdb {a.peer_mac} dev cni0 master cni0 static in fk-n1"]
    assert status(lab, k).ok


def test_a_sticky_entry_up_deleted_comes_back_sticky_when_its_run_rolls_back(lab):
    """A rollback adds back the entry that was there: `static sticky`, not a plain static one (which moves)."""
    from netlab.errors import ApplyFailed
    k = FakeKernel()
    up(lab, k)
    a = port_of(lab, "a")
    entry = PortFdb(netns="fk-n1", dev="cni0", lladdr=a.peer_mac, master="cni0", state="static", flags=("sticky",))
    k.apply([Op("add", entry), Op("set", replace(a, port_settings=("bcast_flood off",)), old=a)])
    assert (drift := status(lab, k).drift) == [
        f"different: link {a.name} in fk-n1 (bridge port of cni0: bcast_flood off (want on))",
        f"extra: bridge fdb {a.peer_mac} dev cni0 master cni0 static sticky in fk-n1"]
    k.log.clear()
    with pytest.raises(ApplyFailed):
        up(lab, k, fault_at=2)
    assert k.log[0].describe() == f"del bridge fdb {a.peer_mac} dev cni0 master cni0 static sticky in fk-n1"
    assert k.ns["fk-n1"].port_fdb[("cni0", a.peer_mac, None)] == ("static", ("sticky",))
    assert status(lab, k).drift == drift


def test_a_sticky_entrys_add_carries_ntf_sticky():
    msg = ndmsg()
    entry = PortFdb(netns="n", dev="p", lladdr="aa:00:00:00:00:04", master="br", flags=("sticky",))
    msg.data = rtnl_bridge.port_fdb("add", 7, entry)
    msg.decode()
    assert msg["flags"] == rtnl_bridge.NTF_MASTER | 0x40 and msg["state"] == rtnl.NUD_NOARP
    assert rtnl_bridge.fdb_flag_words(msg["flags"]) == ("sticky",)


def test_the_kernels_own_fdb_entries_are_not_extra():
    """Learned entries age; each port's own MAC (permanent) goes with the port: neither is a hand's."""
    from netlab.kernel.base import Snapshot
    from netlab.realize.observe import observe
    snap = Snapshot(netns="n")
    snap.links = {"br": rtnl_parse.LinkMsg(2, "br", "bridge", True, 1500, "aa:00:00:00:00:02", None, None, None, None,
                                           0, 1000),
                  "p": rtnl_parse.LinkMsg(3, "p", "veth", True, 1500, "aa:00:00:00:00:03", 2, None, None, None,
                                          0, 1000)}
    own = dict(family=rtnl.AF_BRIDGE, dst=None, flags=0, master=2)
    snap.fdb = [rtnl_parse.NeighMsg(index=3, lladdr="aa:00:00:00:00:03", state=rtnl.NUD_PERMANENT, **own),
                rtnl_parse.NeighMsg(index=2, lladdr="aa:00:00:00:00:02", state=rtnl.NUD_PERMANENT, vlan=1, **own),
                rtnl_parse.NeighMsg(index=3, lladdr="aa:00:00:00:00:09", state=rtnl.NUD_REACHABLE, **own),
                rtnl_parse.NeighMsg(index=3, lladdr="33:33:00:00:00:01", state=rtnl.NUD_PERMANENT,
                                    **{**own, "master": None, "flags": rtnl.NTF_SELF}),
                rtnl_parse.NeighMsg(index=3, lladdr="aa:00:00:00:00:07", state=rtnl.NUD_PERMANENT, **own),
                rtnl_parse.NeighMsg(index=3, lladdr="aa:00:00:00:00:08", state=rtnl.NUD_NOARP, vlan=5, **own)]
    objects = observe(snap, {}, {}).objects.values()
    assert sorted(r.describe() for r in objects if isinstance(r, PortFdb)) == [
        "bridge fdb aa:00:00:00:00:07 dev p master br permanent in n",
        "bridge fdb aa:00:00:00:00:08 dev p vlan 5 master br static in n"]


def test_port_and_bridge_words_round_trip_through_json():
    v = Veth(netns="n", name="p", mtu=1500, mac="aa:00:00:00:00:01", peer_netns="q", peer_name="eth0",
             peer_mac="aa:00:00:00:00:02", master="br", port_settings=("bcast_flood off",))
    b = Bridge(netns="n", name="br", mtu=1500, mac="aa:00:00:00:00:03", settings=("stp_state 1",))
    e = PortFdb(netns="n", dev="p", lladdr="aa:00:00:00:00:04", master="br", vlan=3, state="permanent")
    assert [resource_from_json(r.to_json()) for r in (v, b, e)] == [v, b, e]


def test_port_set_carries_only_what_differs_nested_in_protinfo():
    data = rtnl_bridge.port_set(12, ("cost 7",), ("bcast_flood off", "isolated on", "cost 7"))
    msg = ifinfmsg()
    msg.data = data
    msg.decode()
    assert msg["header"]["type"] == rtnl.RTM_SETLINK and msg["family"] == rtnl.AF_BRIDGE and msg["index"] == 12
    _length, kind = struct.unpack_from("=HH", data, 32)
    assert kind == rtnl.IFLA_PROTINFO | nl.NLA_F_NESTED
    assert nl.attrs(data[36:]) == {30: b"\x01", 33: b"\x00"}  # BCAST_FLOOD on, ISOLATED off; cost as it is


def test_bridge_set_is_a_changelink_of_the_bridges_kind():
    msg = ifinfmsg()
    msg.data = rtnl_bridge.bridge_set(5, (), ("stp_state 1", "ageing_time 100"))
    msg.decode()
    assert msg["header"]["type"] == rtnl.RTM_NEWLINK and msg["index"] == 5
    assert not msg["header"]["flags"] & nl.NLM_F_CREATE
    info = msg.get_attr("IFLA_LINKINFO")
    assert info.get_attr("IFLA_INFO_KIND") == "bridge"
    data = info.get_attr("IFLA_INFO_DATA")
    assert data.get_attr("IFLA_BR_STP_STATE") == 0 and data.get_attr("IFLA_BR_AGEING_TIME") == 30000


def test_port_fdb_del_names_the_entry_as_bridge_fdb_del_master_does():
    msg = ndmsg()
    msg.data = rtnl_bridge.port_fdb_del(7, "aa:00:00:00:00:04", 3)
    msg.decode()
    assert msg["header"]["type"] == rtnl.RTM_DELNEIGH and msg["family"] == rtnl.AF_BRIDGE and msg["ifindex"] == 7
    assert msg["flags"] == rtnl_bridge.NTF_MASTER
    assert msg.get_attr("NDA_LLADDR") == "aa:00:00:00:00:04" and msg.get_attr("NDA_VLAN") == 3


def test_a_dumps_words_say_only_what_is_not_the_default():
    port = {30: b"\x00", 33: b"\x01", 8: b"\x01", 3: struct.pack("=I", 2), 2: struct.pack("=H", 40)}
    assert rtnl_bridge.port_words(port) == ("priority 40", "bcast_flood off", "isolated on")
    data = nl.u32(5, 1) + nl.u32(4, 30000) + nl.u8(23, 0)
    assert rtnl_bridge.bridge_words(data) == ("stp_state 1", "mcast_snooping 0")


def test_a_sticky_entry_that_ages_is_a_hands_and_extra():
    """`bridge fdb replace MAC dev P master dynamic sticky`: reachable, then stale as it ages, refreshed on each
    frame from MAC but never moved (sticky), so it pins MAC to P. Learning never sets sticky: the entry is a
    hand's, extra (QA fx61a 1: it was taken for a learned one, status said all as planned)."""
    from netlab.kernel.base import Snapshot
    from netlab.realize.observe import observe
    snap = Snapshot(netns="n")
    snap.links = {"br": rtnl_parse.LinkMsg(2, "br", "bridge", True, 1500, "aa:00:00:00:00:02", None, None, None, None,
                                           0, 1000),
                  "p": rtnl_parse.LinkMsg(3, "p", "veth", True, 1500, "aa:00:00:00:00:03", 2, None, None, None,
                                          0, 1000)}
    own = dict(family=rtnl.AF_BRIDGE, dst=None, master=2, index=3)
    snap.fdb = [rtnl_parse.NeighMsg(lladdr="aa:00:00:00:00:09", state=rtnl.NUD_REACHABLE, flags=0x40, **own),
                rtnl_parse.NeighMsg(lladdr="aa:00:00:00:00:0a", state=rtnl.NUD_STALE, flags=0x40, **own),
                rtnl_parse.NeighMsg(lladdr="aa:00:00:00:00:0b", state=rtnl.NUD_STALE, flags=0, **own)]
    objects = observe(snap, {}, {}).objects.values()
    assert sorted(r.describe() for r in objects if isinstance(r, PortFdb)) == [
        "bridge fdb aa:00:00:00:00:09 dev p master br dynamic sticky in n",
        "bridge fdb aa:00:00:00:00:0a dev p master br dynamic sticky in n"]
    # up deletes it; a rollback adds it back as it was: dynamic (NUD_REACHABLE), sticky
    msg = ndmsg()
    msg.data = rtnl_bridge.port_fdb("add", 3, PortFdb(netns="n", dev="p", lladdr="aa:00:00:00:00:09", master="br",
                                                      state="dynamic", flags=("sticky",)))
    msg.decode()
    assert msg["state"] == rtnl.NUD_REACHABLE and msg["flags"] & 0x40
