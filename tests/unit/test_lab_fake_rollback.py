"""A failed or interrupted ``up`` against the fake kernel (no root) takes back exactly what it did: a repair
that fails at any of its operations, or that the kernel refuses midway, leaves the kernel as it found it; a
fresh lab's failed up leaves nothing (also with namespaces made on two threads); a namespace made just before
an interrupt goes with the rollback, and a signal reaches the caller as a KeyboardInterrupt.

The rest of the lab's lifecycle against the fake kernel is test_lab_fake.py's; the root integration tests
(tests/integration/test_repair.py and friends) check the same behaviour on real namespaces.
"""

from __future__ import annotations

import os
import signal
from dataclasses import replace
from ipaddress import IPv4Network

import pytest
from fake_lab import TOPO, make_lab, status, up
from test_lab_fake import link

from netlab.errors import ApplyFailed
from netlab.kernel.base import Op
from netlab.kernel.fake import FakeKernel
from netlab.lab import rollback, teardown
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.plan.build import build_plan
from netlab.plan.resources import Route, Rule, Sysctl
from netlab.realize import state as state_mod

lab = pytest.fixture(make_lab, name="lab")


def snapshot_all(k) -> dict:
    return {name: k.snapshot(name) for name in sorted(k.ns)}


def test_a_failed_repair_takes_back_exactly_its_own_ops(lab):
    """Break four things, fail the repair at op k, for every k: the kernel is exactly as it was before."""
    for at in range(1, 20):
        k = FakeKernel()
        up(lab, k)
        k.apply([Op("set", replace(link(k, "fk-b", "eth0"), up=False), old=link(k, "fk-b", "eth0")),
                 Op("replace", Route(netns="fk-n1", dst=IPv4Network("10.55.0.0/16"), gateway=None, dev="eth0",
                                     scope="link")),
                 Op("add", Rule(netns="fk-a", priority=10, table=100)),
                 Op("write", Sysctl(netns="fk-a", name="net.ipv4.conf.all.arp_ignore", value="8"))])
        before = snapshot_all(k)
        drift = status(lab, k).drift
        try:
            up(lab, k, fault_at=at)
        except ApplyFailed as exc:
            assert "rolled back" in str(exc)
            assert snapshot_all(k) == before, f"fault at {at}"
            assert status(lab, k).drift == drift
            continue
        assert at == 7  # six repairs (a link set up, two routes put back, a route, a rule deleted, a sysctl)
        assert status(lab, k).ok
        break
    else:
        raise AssertionError("up never got past the injected faults")


def test_a_kernel_refusal_mid_repair_rolls_back_and_keeps_what_existed(lab):
    k = FakeKernel()
    up(lab, k)
    k.apply([Op("replace", Route(netns="fk-n1", dst=IPv4Network("10.55.0.0/16"), gateway=None, dev="eth0",
                                 scope="link"))])
    k.ns["fk-n1"].sysctls["net.ipv4.ip_forward"] = "0"
    before = snapshot_all(k)
    k.fail = lambda op: 1 if op.verb == "del" and op.res.kind == "route" else None  # EPERM
    with pytest.raises(ApplyFailed, match="not permitted|rolled back"):
        up(lab, k)
    k.fail = lambda op: None
    assert snapshot_all(k) == before  # the sysctl written before the failure was written back


def test_a_failed_up_of_a_fresh_lab_leaves_nothing(lab):
    for at in range(1, 80):
        k = FakeKernel()
        try:
            up(lab, k, fault_at=at)
        except ApplyFailed:
            assert k.ns == {} and state_mod.load_state(lab.name) is None
            continue
        break
    else:
        raise AssertionError("up never succeeded")


def test_namespaces_made_by_two_threads_fail_and_roll_back_as_one_by_one(lab):
    """The live kernel makes namespaces on two threads (create_workers): a fault at any step of them leaves
    nothing, the journal counts each step once, and a run without a fault reports them in plan order."""
    one = FakeKernel()
    result = up(lab, one)
    made = sorted(one.ns)
    teardown.down(lab.name, one)
    for at in range(1, len(result.created_netns) + 2):
        k = FakeKernel()
        k.create_workers = 2
        try:
            up(lab, k, fault_at=at)
        except ApplyFailed as exc:
            assert f"injected fault at operation {at} (" in str(exc)
            assert k.ns == {} and state_mod.load_state(lab.name) is None, f"fault at {at}"
            continue
        raise AssertionError(f"a fault at step {at} of {len(result.created_netns)} namespaces did not stop up")
    k = FakeKernel()
    k.create_workers = 2
    both = up(lab, k)
    assert both.created_netns == result.created_netns == build_plan(lab).netns
    assert both.operations == result.operations
    assert sorted(k.ns) == made


def test_a_namespace_made_then_interrupted_before_create_returned_is_rolled_back(lab, tmp_path):
    """A signal's exception can land in the main thread after the namespace was mounted and before
    create_netns returned: a running lab that grows must not keep that namespace after the rollback."""
    k = FakeKernel()
    up(lab, k)
    before = sorted(k.ns)
    path = tmp_path / "t.yaml"
    path.write_text(TOPO + "  - {name: c, node: n1, ip: 10.244.0.3}\n")
    bigger = resolve(load_topology(str(path)))
    real = k.create_netns

    def create_then_interrupted(name, tag, sysctls):
        real(name, tag, sysctls)
        raise KeyboardInterrupt  # as the SIGINT handler would raise it, a moment too late

    k.create_netns = create_then_interrupted
    with pytest.raises(KeyboardInterrupt):
        up(bigger, k)
    assert sorted(k.ns) == before  # fk-c went with the rollback


def test_a_signal_during_up_reaches_the_caller_as_a_keyboard_interrupt(lab):
    """A library caller's Ctrl-C during up: rolled back, then a KeyboardInterrupt (pytest stops the run), which
    is also netlab's Interrupted (the CLI's one line and exit 130). It was an Exception: pytest counted an error
    and ran the other tests."""
    k = FakeKernel()
    real = k.create_netns

    def create_then_signalled(name, tag, sysctls):
        real(name, tag, sysctls)
        os.kill(os.getpid(), signal.SIGINT)  # the handler up installs raises it here, in this thread

    k.create_netns = create_then_signalled
    with pytest.raises(KeyboardInterrupt) as info:
        up(lab, k)
    assert isinstance(info.value, rollback.Interrupted) and info.value.exit_code == 130
    assert not isinstance(info.value, Exception)  # a caller's `except Exception` lets it through, as a Ctrl-C
    assert "interrupted by SIGINT; rolled back" in str(info.value) and not k.ns
