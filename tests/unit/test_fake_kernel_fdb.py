"""The fake kernel's VXLAN FDB as the real kernel keeps it (no root).

Measured on Linux 6.18 through netlab's own codec (LiveKernel.apply of rtnl_vxlan.fdb_del / fdb_append, the
requests `bridge fdb del|append ... self` sends) on flannel.1 of a real lab, read back with `bridge fdb show`:

- a delete of an entry whose MAC the device has no more (the same delete twice): ENOENT;
- a delete of a remote the MAC has not, while the MAC has another remote: accepted (0), nothing changes;
- an append of an entry that is there: accepted (0), nothing changes;
- an append of a second remote to a unicast MAC: accepted (0), and nothing changes (vxlan_fdb_update_existing
  appends remotes only to the all-zeros or a multicast MAC).

The fake refused the second delete with ENOENT also where the MAC had another remote, and an append of an entry
that is there with EEXIST, and gave a unicast MAC a second remote.
"""

from __future__ import annotations

import errno
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface

import pytest

from netlab.kernel.base import KernelError, Op
from netlab.kernel.fake import FakeKernel
from netlab.plan.resources import Address, Fdb, Veth, Vxlan

A, B = "tfdb-a", "tfdb-b"
VETH = Veth(netns=A, name="eth0", mtu=1500, mac="02:00:00:00:00:0a", peer_netns=B, peer_name="port",
            peer_mac="02:00:00:00:00:0b")
VX = Vxlan(netns=A, name="flannel.1", mtu=1450, mac="02:00:00:00:00:0c", vni=1, port=8472,
           local=IPv4Address("192.168.122.2"), dev="eth0")
PLANNED = Fdb(netns=A, dev="flannel.1", lladdr="0a:a9:f5:50:48:c0", dst=IPv4Address("192.168.122.7"))
WRONG = replace(PLANNED, dst=IPv4Address("192.168.122.254"))
FLOOD = Fdb(netns=A, dev="flannel.1", lladdr="00:00:00:00:00:00", dst=IPv4Address("192.168.122.7"))


@pytest.fixture
def k() -> FakeKernel:
    k = FakeKernel()
    for ns in (A, B):
        k.create_netns(ns, "t", [])
    k.apply([Op("add", VETH), Op("add", Address(netns=A, dev="eth0", address=IPv4Interface("192.168.122.2/24"))),
             Op("add", VX), Op("add", PLANNED)])
    return k


def fdb(k: FakeKernel) -> set[tuple[str, str]]:
    return {(m.lladdr, m.dst) for m in k.snapshot(A, tables=False).fdb}


def test_a_second_delete_of_an_fdb_entry_whose_mac_is_gone_is_enoent(k):
    k.apply([Op("del", PLANNED)])
    assert fdb(k) == set()
    with pytest.raises(KernelError) as err:  # the real kernel: ENOENT ("No such file or directory")
        k.apply([Op("del", PLANNED)])
    assert err.value.code == errno.ENOENT


def test_a_delete_of_a_remote_the_mac_has_not_is_accepted_and_changes_nothing(k):
    k.apply([Op("del", PLANNED), Op("add", WRONG)])  # vxlan-fdb-wrong-vtep's change
    k.apply([Op("del", PLANNED)])  # the real kernel: 0, the MAC keeps its other remote
    assert fdb(k) == {(WRONG.lladdr, str(WRONG.dst))}


def test_an_append_to_a_unicast_mac_is_accepted_and_changes_nothing(k):
    k.apply([Op("add", PLANNED)])  # the same entry again: the real kernel 0 (the fake said EEXIST)
    k.apply([Op("add", WRONG)])  # a second remote: the real kernel 0, and `bridge fdb show` lists only the first
    assert fdb(k) == {(PLANNED.lladdr, str(PLANNED.dst))}


def test_the_flooding_mac_lists_several_remotes(k):
    k.apply([Op("add", FLOOD), Op("add", replace(FLOOD, dst=IPv4Address("192.168.122.8"))), Op("add", FLOOD)])
    assert {d for m, d in fdb(k) if m == FLOOD.lladdr} == {"192.168.122.7", "192.168.122.8"}
