"""A running lab's namespace unmounted by hand (``umount /run/netns/<lab>-<pod>``: the empty file stays, the
namespace is gone from its name), against the fake kernel: ``up`` repairs it as it repairs an ``ip netns del``,
since the name is one its state lists; a placeholder the state does not list is someone else's, and a refused
run removes no placeholder at all."""

from __future__ import annotations

import pytest
from fake_lab import make_lab, status, up

from netlab.errors import OwnershipConflict
from netlab.kernel.fake import FakeKernel
from netlab.realize import state as state_mod

lab = pytest.fixture(make_lab, name="lab")


def unmount(k: FakeKernel, name: str) -> None:
    """What `umount /run/netns/NAME` leaves: no namespace by that name (its veths gone with it), the empty file."""
    k.delete_netns(name)
    k.placeholders.add(name)


def test_up_makes_a_namespace_of_the_lab_unmounted_by_hand_again(lab):
    k = FakeKernel()
    up(lab, k)
    unmount(k, "fk-a")
    assert any("missing: namespace fk-a" in line for line in status(lab, k).drift)
    result = up(lab, k)
    assert result.created_netns == ["fk-a"]
    assert "fk-a" not in k.placeholders and "fk-a" in k.ns
    assert status(lab, k).ok
    assert state_mod.load_state(lab.name).netns["fk-a"] == "created"


def test_a_placeholder_the_state_does_not_list_is_not_the_labs(lab):
    k = FakeKernel()
    k.placeholders.add("fk-a")  # someone's crashed `ip netns add fk-a`, before the lab was ever up
    with pytest.raises(OwnershipConflict, match="namespace fk-a already exists"):
        up(lab, k)
    assert k.placeholders == {"fk-a"} and not k.ns


def test_a_refused_repair_removes_no_placeholder_of_the_lab(lab):
    k = FakeKernel()
    up(lab, k)
    unmount(k, "fk-a")
    k.delete_netns("fk-b")
    k.create_netns("fk-b", "netlab:00000001:00000002", [])  # someone else's namespace under the lab's name
    with pytest.raises(OwnershipConflict, match="fk-b"):
        up(lab, k)
    assert "fk-a" in k.placeholders and "fk-a" not in k.ns  # nothing changed: refused before any change
