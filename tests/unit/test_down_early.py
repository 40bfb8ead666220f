"""down begins what needs neither the lab's processes nor its namespaces first, and waits for it last
(netlab/lab/teardown.py; the services feature's pod files, tests/unit/test_pod_hosts.py), on the fake kernel."""

from __future__ import annotations

import pytest
from fake_lab import IdleFeature, make_lab, up

from netlab.kernel.fake import FakeKernel
from netlab.lab import teardown
from netlab.realize import state as state_mod

lab = pytest.fixture(make_lab, name="lab")


class Early(IdleFeature):
    """A feature with an early stop (as services' pod files): its calls, in order, into ``calls``."""

    name = "early"

    def __init__(self, calls: list):
        self.calls = calls

    def stop_early(self, state):
        self.calls.append("early: begun")
        return "handle"

    def stop(self, state, netns_names, everything=False, early=None):
        self.calls.append(f"early: stop (everything={everything}, early={early})")
        return ["early's problem"]


class Late(IdleFeature):
    """A feature without one (as the containers'): stopped before the namespaces go; ``fail``: it raises."""

    name = "late"

    def __init__(self, calls: list, fail: bool = False):
        self.calls, self.fail = calls, fail

    def stop(self, state, netns_names, everything=False, early=None):
        self.calls.append(f"late: stop {sorted(netns_names)} (early={early})")
        if self.fail:
            raise RuntimeError("late's stop failed")
        return []


def counting_kernel(calls: list) -> FakeKernel:
    k = FakeKernel()
    real = k.delete_netns_many

    def delete_netns_many(names):
        calls.append(f"namespaces: {len(list(names))} deleted")
        return real(names)

    k.delete_netns_many = delete_netns_many  # type: ignore[method-assign]
    return k


def test_an_early_stop_begins_before_the_others_and_is_waited_for_after_the_namespaces(lab):
    calls: list[str] = []
    k = counting_kernel(calls)
    up(lab, k)
    result = teardown.down(lab.name, k, [Early(calls), Late(calls)])
    names = sorted(n for n in result.removed_netns)
    assert calls == ["early: begun", f"late: stop {names} (early=None)", f"namespaces: {len(names)} deleted",
                     "early: stop (everything=True, early=handle)"]
    assert result.problems == ["early's problem"] and not k.ns and state_mod.load_state(lab.name) is None


def test_a_take_down_that_fails_still_waits_for_what_it_began(lab):
    calls: list[str] = []
    k = counting_kernel(calls)
    up(lab, k)
    with pytest.raises(RuntimeError, match="late's stop failed"):
        teardown.down(lab.name, k, [Early(calls), Late(calls, fail=True)])
    assert calls[0] == "early: begun" and calls[-1] == "early: stop (everything=True, early=handle)"
    assert state_mod.load_state(lab.name).phase == "deleting"  # the next down finishes it
