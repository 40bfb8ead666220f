"""status after `ip netns delete` of a pod's namespace whose container still runs (the namespace lives on, unnamed,
held by the container's thread): the node's veth keeps its peer eth0, now in that unnamed namespace. Its line must
not name the deleted namespace as the place of its peer (q16 nit 1): it says the namespace is missing."""

from __future__ import annotations

import pytest

from netlab.kernel.fake import FakeKernel
from tests.unit.fake_lab import make_lab, status, up

lab = pytest.fixture(make_lab, name="lab")


def test_a_veth_whose_pods_namespace_is_deleted_says_that_namespace_is_missing(lab):
    k = FakeKernel()
    up(lab, k)
    host = lab.pod("a").host_veth
    k.ns.pop("fk-a")  # its name unmounted, its links (and the veth's peer) held on by a process: as ip netns delete
    result = status(lab, k)
    assert result.drift == [
        f"different: link {host} in fk-n1 (its peer is not eth0 in fk-a: namespace fk-a is missing)",
        "missing: namespace fk-a"], result.drift
    assert not any("is not its pair" in d["detail"] for d in result.details)
