"""An up interrupted (Ctrl-C, SIGTERM) while a feature's start waits for what its start_early began (services: the
thread writing the pods' files in /etc/netns): the rollback still waits for it (abort_early) before its stop removes
the recorded paths, or the thread would write a file after the stop removed it, left in the host's /etc/netns."""

from __future__ import annotations

import pytest
from fake_lab import IdleFeature, make_lab

from netlab.kernel.fake import FakeKernel
from netlab.lab import up as lab_up
from netlab.lab.journal import Journal

lab = pytest.fixture(make_lab, name="lab")


class Waits(IdleFeature):
    """start_early hands out a handle; start is interrupted while it waits for it; the calls, in order."""

    name = "waits"

    def __init__(self, calls: list):
        self.calls = calls

    def start_early(self, lab, state):
        return "thread"

    def start(self, lab, state, early=None):
        self.calls.append(f"start waits for {early}")
        raise KeyboardInterrupt  # the signal lands during the wait

    def abort_early(self, handle):
        self.calls.append(f"abort_early {handle}")

    def stop(self, state, netns_names, everything=False, early=None):
        self.calls.append("stop")
        return []


def test_a_start_interrupted_while_it_waits_for_its_early_work_hands_it_to_the_rollback(lab):
    calls: list[str] = []
    kernel = FakeKernel()
    with pytest.raises(KeyboardInterrupt):
        lab_up.up(lab, kernel, features=(Waits(calls),), journal=Journal(kernel))
    assert calls[0] == "start waits for thread", calls
    assert "abort_early thread" in calls, calls
    assert calls.index("abort_early thread") < calls.index("stop"), calls
