"""status holds what it reads and builds to its end: Python's cycle collector is off while it runs (nothing of it
is garbage: lab/collector.py), and on again afterwards as it was, also when status raises."""

from __future__ import annotations

import gc

import pytest

from netlab.kernel.fake import FakeKernel
from netlab.lab import status as lab_status
from netlab.realize import state as state_mod
from tests.unit.fake_lab import make_lab, up

lab = pytest.fixture(make_lab, name="lab")


class _Watching:
    """A feature whose drift notes whether the collector is on while status works it out."""

    name = "watching"

    def __init__(self, fail: bool = False):
        self.seen: list[bool] = []
        self.fail = fail

    def drift(self, lab, state):
        self.seen.append(gc.isenabled())
        if self.fail:
            raise RuntimeError("drift failed")
        return []


@pytest.fixture
def collector_on():
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_status_runs_with_the_collector_off_and_leaves_it_on(lab, collector_on):
    k = FakeKernel()
    up(lab, k)
    feature = _Watching()
    result = lab_status.status(state_mod.load_state(lab.name), k, [feature])
    assert result.ok, result.drift
    assert feature.seen == [False]
    assert gc.isenabled()


def test_the_collector_is_on_again_when_status_raises(lab, collector_on):
    k = FakeKernel()
    up(lab, k)
    with pytest.raises(RuntimeError, match="drift failed"):
        lab_status.status(state_mod.load_state(lab.name), k, [_Watching(fail=True)])
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off(lab, collector_on):
    k = FakeKernel()
    up(lab, k)
    gc.disable()
    lab_status.status(state_mod.load_state(lab.name), k, [_Watching()])
    assert not gc.isenabled()
