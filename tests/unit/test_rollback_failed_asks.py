"""A run on a running lab that fails, and whose rollback fails too: the lab's state keeps naming what the run
made, and what the lab is asked stays what its last good run made. It kept the refused change (a pod's impairment,
a pod more) as the lab's topology: `netlab status` planned it, and the `up --lab` the error names applied it."""

from __future__ import annotations

import re

import pytest
from fake_lab import make_lab, up

from netlab.errors import ApplyFailed, netlab_command
from netlab.lab import up as lab_up
from netlab.model.lab import resolve
from netlab.model.topology import Topology
from netlab.kernel.fake import FakeKernel
from netlab.realize import state as state_mod

lab = pytest.fixture(make_lab, name="lab")


def with_pod(lab, **pod):
    data = lab.topo.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["pods"].append(pod)
    return resolve(Topology.model_validate(data))


def test_a_failed_rollback_keeps_what_the_lab_was_asked(lab, monkeypatch):
    k = FakeKernel()
    up(lab, k)
    before = state_mod.load_state(lab.name)

    def fails(self, state, fresh, tag):
        raise ApplyFailed("cannot read the tags")

    with monkeypatch.context() as m, pytest.raises(ApplyFailed, match="the rollback failed too: cannot read the tags; what the run made is "
                                          f"left, named by the lab's state: `{re.escape(netlab_command(f'up --lab {lab.name}'))}` "
                                          "repairs it"):
        m.setattr(lab_up.Rollback, "_rollback", fails)
        up(with_pod(lab, name="c", node="n1", ip="10.244.0.9"), k, fault_at=1)
    after = state_mod.load_state(lab.name)
    assert after.topology == before.topology and after.source == before.source
    assert after.extra.get("addresses") == before.extra.get("addresses")
    assert set(k.ns) <= set(after.netns)  # what the run made is still named: a down or the next up takes it
    up(lab, k)  # the up the error names: the lab as it was asked
    assert sorted(k.ns) == sorted(before.netns)
