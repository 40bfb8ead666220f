"""A CNI re-attach (DEL, then ADD) that a signal or an error stops is rolled back truly (QA q11 1).

A Ctrl-C during the re-ADD said "rolled back" while the pod kept the new ADD, its record stayed "adding", and status
said it was "not attached" and called the plugin's veth extra; an error between the DEL and the ADD said "rolled
back" of a pod with no eth0. The rollback DELs every pod whose ADD or re-attach the run had begun (a record
"adding" or "detaching"), and the line names the pods it leaves detached; status then says so, and the next up
attaches them. Fake plugins and the fake kernel; the real plugins are tests/integration/test_cni_reattach_cut_live.py's.
"""

from __future__ import annotations

import os
import signal

import pytest

from test_cni_reattach import ADD_BOTH, DEL_BOTH, up, world  # noqa: F401 (world: the fixture)
from netlab.cni import lifecycle, runtime
from netlab.errors import ApplyFailed, netlab_command
from netlab.feature import ModuleFeature
from netlab.kernel.fake import FakeKernel
from netlab.lab import status as lab_status
from netlab.lab import teardown
from netlab.lab.rollback import Interrupted
from netlab.realize import state as state_mod
from netlab.realize.attachments import pod_records



def detached() -> str:
    """The rollback's line, its command under the test's state folder (errors.netlab_command, set once the fixtures
    ran)."""
    return ("but for pod a, left detached (no eth0: the run had begun to re-attach it, and the DEL before its ADD "
            f"cannot be undone; `{netlab_command('up --lab fkqc')}` attaches it again)")


def drift(lab, k):
    return lab_status.status(state_mod.load_state(lab.name), k, [ModuleFeature(lifecycle)]).drift


def then_up_attaches_it(lab, k, plugins):
    assert pod_records(state_mod.load_state(lab.name))["a"]["phase"] == "deleted"
    assert drift(lab, k) == ["cni: pod a is not attached through CNI (up attaches it)"]
    plugins.fail.clear()
    plugins.calls.clear()
    up(lab, k)
    assert plugins.of("a") == ADD_BOTH  # its DEL ran in the rollback: none before this ADD
    assert pod_records(state_mod.load_state(lab.name))["a"]["phase"] == "added" and drift(lab, k) == []
    teardown.down(lab.name, k, [ModuleFeature(lifecycle)])


def test_a_ctrl_c_during_a_re_add_dels_the_pod_and_says_it_is_left_detached(world, monkeypatch):  # noqa: F811
    lab, plugins = world
    k = FakeKernel()
    up(lab, k)
    plugins.calls.clear()
    plugins.fail |= {("a", "chain", "CHECK")}  # its chain no longer matches it: up DELs it, then ADDs it

    def ctrl_c_during_the_add(log, **kw):
        if (kw["pod"], kw["command"], kw["env"]["CNI_IFNAME"]) == ("a", "ADD", "eth0") and not sent:
            sent.append(True)
            os.kill(os.getpid(), signal.SIGINT)  # the run's handler raises in the main thread; this ADD finishes
        return plugins(log, **kw)

    sent: list[bool] = []
    monkeypatch.setattr(runtime, "exec_plugin", ctrl_c_during_the_add)
    with pytest.raises(Interrupted) as exc:
        up(lab, k)
    assert str(exc.value) == f"interrupted by SIGINT; rolled back, {detached()}"
    assert plugins.of("a") == DEL_BOTH + ADD_BOTH + DEL_BOTH  # the ADD the signal cut short: DELed
    then_up_attaches_it(lab, k, plugins)


def test_an_error_between_a_re_attachs_del_and_its_add_says_the_pod_is_left_detached(world, monkeypatch):  # noqa: F811
    lab, plugins = world
    k = FakeKernel()
    up(lab, k)
    plugins.calls.clear()
    plugins.fail |= {("a", "chain", "CHECK")}

    def fault_point(name):
        if name == "cni-detached":
            raise ApplyFailed("injected fault at cni-detached")

    monkeypatch.setattr(lifecycle.testhooks, "fault_point", fault_point)
    with pytest.raises(ApplyFailed) as exc:
        up(lab, k)
    assert str(exc.value) == f"injected fault at cni-detached; rolled back, {detached()}"
    assert plugins.of("a") == DEL_BOTH + DEL_BOTH  # DEL again (the spec allows it): the record says detached
    then_up_attaches_it(lab, k, plugins)


def test_a_re_attach_whose_detaching_record_cannot_be_written_dels_nothing(world, monkeypatch):  # noqa: F811
    """A full disk as the record is marked "detaching" (before the DEL): the pod keeps its attachment."""
    lab, plugins = world
    k = FakeKernel()
    up(lab, k)
    plugins.calls.clear()
    plugins.fail |= {("a", "chain", "CHECK")}
    save = state_mod.LabState.save
    failed: list[bool] = []

    def full_disk(self, best_effort=False):
        if pod_records(self).get("a", {}).get("phase") == "detaching" and not failed:
            failed.append(True)  # once: the rollback's own write goes through
            raise ApplyFailed("no space left on device")
        return save(self, best_effort=best_effort)

    monkeypatch.setattr(state_mod.LabState, "save", full_disk)
    with pytest.raises(ApplyFailed) as exc:
        up(lab, k)
    assert str(exc.value) == "no space left on device; rolled back"
    assert plugins.of("a") == [] and pod_records(state_mod.load_state(lab.name))["a"]["phase"] == "added"
    monkeypatch.setattr(state_mod.LabState, "save", save)
    teardown.down(lab.name, k, [ModuleFeature(lifecycle)])
