"""A pod's first CHECK since its ADD (netlab/cni/first_check.py), against fake plugins and the fake kernel.

up runs no CHECK after a first ADD (containerd runs none), so a chain whose CHECK fails its own fresh ADD (Debian's
portmap for a hostPort, its bandwidth without rates) was first seen by status, as drift naming `up` as its repair;
that up DELed and ADDed the pod and only then marked the failure as the plugin's own. Now the first CHECK of a pod
since its ADD, by status or up, that fails while netlab's comparison of the pod with that ADD's cached result finds
it as the ADD made it is marked and said as the plugin's own at once (status records it under the lab's lock when
it is free); one that fails on a pod that differs from its ADD, or after a first CHECK that passed, is drift as
before. The real plugins in real namespaces are tests/integration/test_cni_first_check_live.py's.
"""

from __future__ import annotations

from ipaddress import IPv4Interface, IPv4Network

import pytest

import test_cni_reattach
from cni_fakes import VethPlugins, cni_topo, cni_world, lab_of, up
from test_cni_reattach import ADD_BOTH, DEL_BOTH
from netlab.cni import changed, first_check, lifecycle
from netlab.cni.changed import AGAIN, Changed
from netlab.cni.invoke import PluginFailed
from netlab.feature import FRESH_ADD_FAILS, ModuleFeature, Unmendable
from netlab.kernel import live
from netlab.kernel.base import Op
from netlab.kernel.fake import FakeKernel
from netlab.lab import status as lab_status
from netlab.lab import teardown
from netlab.plan.resources import Address, Route, Veth
from netlab.realize import state as state_mod
from netlab.realize.attachments import UNCHECKED, pod_records
from netlab.realize.lab_lock import LabLock
from netlab.realize.state_dir import read_state_file
from netlab.realize.state_schema import check_state
from netlab.workload.policy import up_leaves

world = test_cni_reattach.world
SAID = "cni: CHECK of pod a failed: pod a: CNI plugin chain CHECK: failed (exit 1): no"
FIRST_UP = "pod a: CNI plugin chain's CHECK fails on its own fresh ADD (its first CHECK since that ADD, the pod as "


def _records(lab):
    return pod_records(state_mod.load_state(lab.name))


def _status(lab, k):
    return lab_status.status(state_mod.load_state(lab.name), k, [ModuleFeature(lifecycle)]).drift


def test_a_first_check_settles_the_record_once():
    own = Changed(True, "pod a: CNI plugin chain CHECK: failed (exit 1): no", plugin="chain", first=True)
    other = Changed(True, "pod a: CNI plugin chain CHECK: failed (exit 1): no", plugin="chain")
    passed, failed, differs, older = {UNCHECKED: True}, {UNCHECKED: True}, {UNCHECKED: True}, {}
    assert first_check.settle(passed, None) and passed == {}
    assert first_check.settle(failed, own) and failed == {"check_fails": own.fresh_mark()}
    assert not first_check.settle(differs, other) and differs == {UNCHECKED: True}  # drift: up re-attaches it
    assert not first_check.settle(older, own) and older == {}  # CHECKed before: drift, as before


def test_status_says_a_first_check_failing_as_added_as_the_plugins_own_and_up_keeps_the_pod(world, monkeypatch):
    lab, plugins = world
    k = FakeKernel()
    up(lab, k)
    assert all(rec[UNCHECKED] is True for rec in _records(lab).values())  # no CHECK after a first ADD
    monkeypatch.setattr(changed, "as_added", lambda *args: True)
    plugins.fail.add(("a", "chain", "CHECK"))
    [line] = _status(lab, k)
    assert line == SAID + FRESH_ADD_FAILS and isinstance(line, Unmendable), line
    assert "fix the plugin chain" in str(up_leaves(line))  # status names no up as its repair, but what mends it
    recs = _records(lab)  # recorded by that status: a's failure marked, b's passing CHECK
    assert recs["a"]["check_fails"] == "chain: pod a: CNI plugin chain CHECK: failed (exit 1): no"
    assert UNCHECKED not in recs["a"] and UNCHECKED not in recs["b"], recs
    check_state(read_state_file(lab.name), lab.name)  # the state file's schema takes it
    assert _status(lab, k) == [SAID + FRESH_ADD_FAILS]  # the next status, from the mark
    plugins.calls.clear()
    result = up(lab, k)
    assert plugins.of("a") == [] and plugins.of("b") == [], plugins.calls  # no DEL, no ADD
    [failed] = result.failed
    assert failed.startswith(f"pod a: CNI plugin chain's CHECK fails on its own fresh ADD{AGAIN}: failed"), failed
    teardown.down(lab.name, k, [ModuleFeature(lifecycle)])


def test_up_right_after_up_marks_a_first_check_failing_as_added_without_re_attaching(world, monkeypatch):
    lab, plugins = world
    k = FakeKernel()
    up(lab, k)
    monkeypatch.setattr(changed, "as_added", lambda *args: True)
    plugins.fail.add(("a", "chain", "CHECK"))
    plugins.calls.clear()
    [failed] = up(lab, k).failed
    assert failed.startswith(FIRST_UP) and "pod a keeps that attachment" in failed, failed
    assert plugins.of("a") == [] and "check_fails" in _records(lab)["a"]
    assert UNCHECKED not in _records(lab)["b"]  # its first CHECK passed
    [again] = up(lab, k).failed
    assert again.startswith(f"pod a: CNI plugin chain's CHECK fails on its own fresh ADD{AGAIN}: ") and \
        plugins.of("a") == [], again
    teardown.down(lab.name, k, [ModuleFeature(lifecycle)])


def test_a_first_check_failing_on_a_pod_unlike_its_add_is_drift_that_up_re_attaches(world):
    lab, plugins = world
    k = FakeKernel()
    up(lab, k)  # the fake world's comparison finds the pods unlike their ADD (cni_fakes.cni_world)
    plugins.fail.add(("a", "chain", "CHECK"))
    [line] = _status(lab, k)
    assert line == SAID and not isinstance(line, Unmendable) and up_leaves(line) is None, line
    assert _records(lab)["a"][UNCHECKED] is True  # nothing recorded of it
    plugins.calls.clear()
    [failed] = up(lab, k).failed  # re-attached; its CHECK fails that fresh ADD too: marked then, as before
    assert plugins.of("a") == DEL_BOTH + ADD_BOTH
    assert failed.startswith("pod a: CNI plugin chain's CHECK fails on its own fresh ADD: failed"), failed
    assert UNCHECKED not in _records(lab)["a"] and "check_fails" in _records(lab)["a"]
    teardown.down(lab.name, k, [ModuleFeature(lifecycle)])


def test_a_failure_after_a_first_check_that_passed_is_drift(world, monkeypatch):
    lab, plugins = world
    k = FakeKernel()
    up(lab, k)
    assert _status(lab, k) == [] and not any(UNCHECKED in rec for rec in _records(lab).values())
    monkeypatch.setattr(changed, "as_added", lambda *args: True)  # as its ADD made it: the CHECK failed since
    plugins.fail.add(("a", "chain", "CHECK"))
    assert _status(lab, k) == [SAID]
    plugins.calls.clear()
    up(lab, k)
    assert plugins.of("a") == DEL_BOTH + ADD_BOTH
    teardown.down(lab.name, k, [ModuleFeature(lifecycle)])


def test_status_records_nothing_while_another_command_holds_the_lab(world, monkeypatch):
    lab, plugins = world
    k = FakeKernel()
    up(lab, k)
    monkeypatch.setattr(changed, "as_added", lambda *args: True)
    plugins.fail.add(("a", "chain", "CHECK"))
    before = read_state_file(lab.name)
    with LabLock(lab.name, "netlab up"):  # its work half done: status writes nothing, and says the same
        assert _status(lab, k) == [SAID + FRESH_ADD_FAILS]
    assert read_state_file(lab.name) == before
    assert _status(lab, k) == [SAID + FRESH_ADD_FAILS] and "check_fails" in _records(lab)["a"]
    teardown.down(lab.name, k, [ModuleFeature(lifecycle)])


# --- the comparison itself: the fake kernel's pods, read by cni/verify.py -----------------------------------------

TOPO = cni_topo("fkfc") + "  - {name: a, node: n1, ip: 10.244.0.2}\n"


class Plugins(VethPlugins):
    """A ptp-like chain whose ADD makes the pod's veth and address, and the node's route to it, in the fake kernel,
    and whose CHECK always fails."""

    prefix = "fc"

    def __call__(self, log, *, conf, **kw):
        if kw["command"] == "CHECK" and kw["env"]["CNI_IFNAME"] == "eth0":
            raise PluginFailed(f"pod {kw['pod']}: CNI plugin chain CHECK: failed (exit 1): no")
        return super().__call__(log, conf=conf, **kw)

    def add(self, pod, ip, env, *, node_netns, netns, host):
        self.kernel.apply([
            Op("add", Veth(netns=node_netns, name=host, mtu=1500, mac="02:00:00:00:01:01", peer_netns=netns,
                           peer_name="eth0", peer_mac="02:00:00:00:02:01")),
            Op("add", Address(netns=netns, dev="eth0", address=IPv4Interface(f"{ip}/24"))),
            Op("add", Route(netns=node_netns, dst=IPv4Network(f"{ip}/32"), gateway=None, dev=host, scope="host"))])
        return {"cniVersion": "1.0.0", "interfaces": [{"name": host}, {"name": "eth0", "sandbox": env["CNI_NETNS"],
                                                                        "mac": "02:00:00:00:02:01"}],
                "ips": [{"address": f"{ip}/24", "interface": 1}]}


class _Live:
    """The live kernel of the comparison: the fake one."""

    def __init__(self, k):
        self.k = k

    def snapshot(self, netns, sysctls=(), tables=True):
        return self.k.snapshot(netns, sysctls, tables)

    def forget(self, netns):
        pass

    def close(self):
        pass


@pytest.mark.parametrize("address_deleted", [False, True])
def test_the_comparison_with_the_adds_result_tells_the_plugins_own_failure_from_drift(tmp_path, monkeypatch,
                                                                                      address_deleted):
    k = FakeKernel()
    real = changed.as_added
    with cni_world(tmp_path, monkeypatch, TOPO, Plugins(k)):
        monkeypatch.setattr(changed, "as_added", real)
        monkeypatch.setattr(live, "LiveKernel", lambda: _Live(k))
        lab = lab_of(tmp_path)
        up(lab, k)
        if address_deleted:  # by hand, before the pod's first CHECK: its ADD's address is gone
            k.apply([Op("del", Address(netns=lab.pod("a").netns, dev="eth0",
                                       address=IPv4Interface("10.244.0.2/24")))])
        [line] = _status(lab, k)
        assert isinstance(line, Unmendable) is not address_deleted and line.endswith(FRESH_ADD_FAILS) is not \
            address_deleted, line
        assert ("check_fails" in _records(lab)["a"]) is not address_deleted
        teardown.down(lab.name, k, [ModuleFeature(lifecycle)])
