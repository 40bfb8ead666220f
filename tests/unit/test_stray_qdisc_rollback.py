"""A root qdisc added by hand (impair/stray.py) against the fake kernel: ``up`` takes it off through its journal,
so a run that fails at any later step puts it back with the txqueuelen the kernel gave the device with it (before,
the rollback set the txqueuelen back to 1000 and left no qdisc: a txqlen drift with no cause named); and a removal
the kernel refuses is said once, not once per proof round."""

from __future__ import annotations

import errno

import pytest
from fake_lab import IdleFeature, make_lab, status
from test_lab_fake import link

from netlab.errors import ApplyFailed
from netlab.kernel import tc
from netlab.kernel.base import Op
from netlab.kernel.fake import FakeKernel
from netlab.lab import up as lab_up
from netlab.lab.journal import Journal
from netlab.plan.hand_qdisc import HandQdisc

lab = pytest.fixture(make_lab, name="lab")


def up(lab, kernel, **kw):
    return lab_up.up(lab, kernel, features=(IdleFeature(),), journal=Journal(kernel, **kw))


def hand_made_tbf(k) -> None:
    index = k.ns["fk-b"].links["eth0"].index
    body = tc.qdisc_replace(index, tc.TC_H_ROOT, 0x80010000, "tbf", tc.tbf_options(8000))[16:]
    k.apply([Op("add", HandQdisc("fk-b", dev="eth0", words="tbf rate 8kbit", body=body))])
    assert link(k, "fk-b", "eth0").txqlen == 1000  # as the kernel does for a qdisc on a txqueuelen-0 device


def test_a_failed_run_puts_back_the_hand_made_qdisc_with_its_txqlen(lab):
    for at in range(1, 10):
        k = FakeKernel()
        up(lab, k)
        hand_made_tbf(k)
        before = {name: k.snapshot(name) for name in sorted(k.ns)}
        drift = [str(d) for d in status(lab, k).drift]
        assert any("root qdisc tbf rate 8kbit added" in d and "txqlen 1000" in d for d in drift), drift
        try:
            up(lab, k, fault_at=at)
        except ApplyFailed as exc:
            assert "rolled back" in str(exc)
            assert {name: k.snapshot(name) for name in sorted(k.ns)} == before, f"fault at {at}"
            assert [str(d) for d in status(lab, k).drift] == drift, f"fault at {at}"
            continue
        assert at > 3  # the txqlen, the qdisc, the idle feature's start
        assert status(lab, k).ok and k.ns["fk-b"].qdiscs == {}
        break
    else:
        raise AssertionError("up never got past the injected faults")


def test_a_removal_the_kernel_refuses_is_said_once(lab):
    k = FakeKernel()
    up(lab, k)
    hand_made_tbf(k)
    k.fail = lambda op: errno.EPERM if op.verb == "del" and op.res.kind == "root qdisc" else None
    result = up(lab, k)
    said = [w for w in result.warnings if "could not remove root qdisc tbf rate 8kbit from eth0 in fk-b" in w]
    assert len(said) == 1, result.warnings
    assert link(k, "fk-b", "eth0").txqlen == 0  # the link's own repair
    assert "fk-b" in str(status(lab, k).drift)  # still there: drift


def test_a_qdisc_already_gone_when_up_comes_to_remove_it_is_said_gone_not_removed(lab):
    """Someone took it off between up's read and its removal (the kernel answers ENOENT, which the removal allows):
    up said it removed it."""
    k = FakeKernel()
    up(lab, k)
    hand_made_tbf(k)

    def gone_first(op):
        if op.verb == "del" and op.res.kind == "root qdisc":
            k.ns["fk-b"].qdiscs.pop("eth0")  # as `tc qdisc del` by hand, just before
        return None

    k.fail = gone_first
    result = up(lab, k)
    assert not [line for line in result.fixed if "removed root qdisc" in line], result.fixed
    said = [line for line in result.fixed if "root qdisc tbf rate 8kbit of eth0 in fk-b was already gone" in line]
    assert len(said) == 1, result.fixed
    assert status(lab, k).ok
