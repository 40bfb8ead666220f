"""Overlay drift repaired by up, and a failed repair of it taken back whole, against the fake kernel (no root).

What test_overlay_drift.py has status see, up puts back as Flannel has it: an FDB entry of the plan's MAC and
remote with another port, VNI, device or state is replaced in place (flanneld's AddFDB), the ARP entry made
PERMANENT again, a flag of flannel.1 set back; flannel.1 with another setting of its own (a default remote, a
TTL) is made again, as flanneld's ensureLink does, with everything that hangs on it. A repair that fails at any
of its operations leaves the node as it found it (the device's remote and its all-zeros entry, once). The root
test is tests/integration/test_overlay_drift_live.py.
"""

from __future__ import annotations

import pytest
from fake_lab import make_lab, status, up

from netlab.errors import ApplyFailed
from netlab.kernel import rtnl
from netlab.kernel.fake import FakeKernel
from netlab.realize.observe import observe

lab = pytest.fixture(make_lab, name="lab")
N1 = "fk-n1"


def fdb_entry(k: FakeKernel) -> tuple[str, str, str]:
    (entry,) = k.ns[N1].fdb
    return entry


def break_fdb_port(k: FakeKernel) -> None:  # `bridge fdb replace MAC dev flannel.1 dst IP port 4789 self permanent`
    k.ns[N1].fdb_extra[fdb_entry(k)] = (4789, None, None, "permanent")


def break_fdb_state(k: FakeKernel) -> None:  # `... self dynamic`: ages out
    k.ns[N1].fdb_extra[fdb_entry(k)] = (None, None, None, "dynamic")


def break_remote(k: FakeKernel) -> None:  # `ip link set flannel.1 type vxlan remote 192.168.122.7 ttl 1`
    k.ns[N1].links["flannel.1"].vxlan.update(group="192.168.122.7", ttl=1)


def break_flags(k: FakeKernel) -> None:  # `ip link set flannel.1 arp off promisc on`
    k.ns[N1].links["flannel.1"].flags = ("arp off", "promisc on")


def break_neigh(k: FakeKernel) -> None:  # `ip neigh replace 10.244.1.0 lladdr MAC dev flannel.1 nud reachable`
    mac, _ = k.ns[N1].neighs[("flannel.1", "10.244.1.0")]
    k.ns[N1].neighs[("flannel.1", "10.244.1.0")] = (mac, rtnl.NUD_REACHABLE)


CASES = {
    "fdb port": (break_fdb_port, "(port 4789 (want flannel.1's own))", [("replace", "fdb")]),
    "fdb dynamic": (break_fdb_state, "(state dynamic (want permanent)", [("replace", "fdb")]),
    # made again, and what hung on it put back: its address, the ARP and FDB entries, the route, its sysctls
    "remote and ttl": (break_remote, "(remote 192.168.122.7 (want none), ttl 1 (want auto))",
                       [("del", "vxlan"), ("add", "vxlan"), ("add", "address"), ("replace", "neigh"),
                        ("add", "fdb"), ("replace", "route")]),
    "arp off": (break_flags, "(arp off (want on), promisc on (want off))", [("set", "vxlan")]),
    "arp entry reachable": (break_neigh, "(state reachable (want permanent))", [("replace", "neigh")]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_overlay_drift_is_named_once_and_up_puts_it_back(lab, case):
    breaker, words, ops = CASES[case]
    k = FakeKernel()
    up(lab, k)
    breaker(k)
    drift = status(lab, k).drift
    assert len(drift) == 1 and words in drift[0], drift  # the device's remote: no extra all-zeros FDB entry
    k.log.clear()
    up(lab, k)
    assert status(lab, k).ok, status(lab, k).drift
    assert [(op.verb, op.res.kind) for op in k.log if op.res.kind != "sysctl"] == ops
    assert k.ns[N1].fdb_extra == {} and k.ns[N1].links["flannel.1"].flags == ()


def snapshot(k: FakeKernel) -> dict:
    """The node's objects as status reads them (a device made again has another index)."""
    return observe(k.snapshot(N1), {}, {}).objects


def test_a_failed_remake_of_flannels_device_gives_it_back_its_remote_and_one_all_zeros_entry(lab):
    """flannel.1 with a default remote by hand; the repair that makes it again fails at each of its operations
    in turn: the node is as it was (the remote, its all-zeros entry once, the entries and routes on it), and
    status says the same drift. Before, each failed up left one more all-zeros entry (its delete, without the
    entry's device, matched nothing; the rollback appended one)."""
    for at in range(1, 30):
        k = FakeKernel()
        up(lab, k)
        break_remote(k)
        before, drift = snapshot(k), status(lab, k).drift
        try:
            up(lab, k, fault_at=at)
        except ApplyFailed as exc:
            assert "rolled back" in str(exc)
            assert snapshot(k) == before, f"fault at {at}"
            assert status(lab, k).drift == drift
            continue
        assert at > 2 and status(lab, k).ok
        break
    else:
        raise AssertionError("up never got past the injected faults")
