"""Overlay and route drift against the fake kernel (no root), helper fl60's items: what up's lines say of a
link's flags, flannel.1's settings flanneld leaves at the kernel's defaults (udpcsum, srcport, maxaddress), its
ageing changed in place, a route's tos as part of its identity, a remade link's flags. The root test is
tests/integration/test_overlay_more_live.py."""

from __future__ import annotations

import pytest
from fake_lab import make_lab, status, up

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
