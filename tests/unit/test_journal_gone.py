"""A rollback takes back only what took effect (no root): a deletion allowed to find nothing (an extra object
gone meanwhile, its device's remote taken away by hand, another up) that the kernel answered "no such entry"
took nothing away, and its take-back made what had never been there (an all-zeros FDB remote appended; QA
qa59f: each failed up of a lab whose flannel.1 had a default remote left one more)."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest
from fake_lab import make_lab, up

from netlab.kernel.base import Op
from netlab.kernel.fake import FakeKernel
from netlab.lab.journal import Journal
from netlab.plan.resources import Fdb

lab = pytest.fixture(make_lab, name="lab")


def test_a_rollback_does_not_make_what_a_delete_found_gone(lab):
    k = FakeKernel()
    up(lab, k)
    flood = Fdb(netns="fk-n1", dev="flannel.1", lladdr="00:00:00:00:00:00", dst=IPv4Address("192.168.122.9"))
    journal = Journal(k)
    journal.apply([Op("del", flood, missing_ok=True)])
    assert journal.applied == [] and journal.undo() == []
    assert [f for f in k.ns["fk-n1"].fdb if f[1] == flood.lladdr] == []
