"""A chained plugin whose CHECK fails on its own fresh ADD, a result that loses the pod's address, and a removed pod's
first DEL (QA cnicheck), against fake plugins and the fake kernel. The real chain (Debian's bridge and host-local
with a plugin whose CHECK always fails) and a watcher that must not churn are
tests/integration/test_cni_check_fresh_live.py's."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import pytest

import test_cni_reattach
from test_cni_reattach import ADD_BOTH, DEL_BOTH, up
from test_cni_del_failed import without_b

from netlab.cni import lifecycle
from netlab.cni.invoke import PluginFailed
from netlab.errors import ApplyFailed
from netlab.feature import ModuleFeature, fresh_check_fix
from netlab.kernel.fake import FakeKernel
from netlab.lab import status as lab_status
from netlab.lab import teardown
from netlab.model.lab import Lab
from netlab.realize import state as state_mod
from netlab.realize.attachments import pod_records

world = test_cni_reattach.world


def _valid(lab: str) -> None:
    from netlab.realize.state_schema import check_state
    from netlab.realize.state_dir import read_state_file

    check_state(read_state_file(lab), lab)  # the fixture: fake plugins, a conflist lab (loopback, then chain)


def test_a_check_that_fails_on_its_own_fresh_add_fails_up_once_and_is_not_re_attached_again(world):
    lab, plugins = world
    k = FakeKernel()
    up(lab, k)
    plugins.fail.add(("a", "chain", "CHECK"))  # every CHECK of pod a's chain, also right after its own ADD
    plugins.calls.clear()
    result = up(lab, k)  # the lab stays up (nothing rolled back), and up exits 1 on result.failed, as status does
    [text] = result.failed
    assert text.startswith("pod a: CNI plugin chain's CHECK fails on its own fresh ADD: failed (exit 1): no; "), text
    assert "pod a keeps that attachment" in text and "does not re-attach it again" in text, text
    # and what does put it right, in status's words (workload/policy.up_leaves): the plugin fixed, or disableCheck
    assert text.endswith(f"a new ADD cannot mend it; {fresh_check_fix('chain')}") and '"disableCheck": true' in text, text
    assert plugins.of("a") == DEL_BOTH + ADD_BOTH  # one re-attach, then the one CHECK that tells it
    assert [c for p, n, c, _ in plugins.calls if (p, n) == ("a", "chain")].count("CHECK") == 2
    assert plugins.of("b") == []
    assert pod_records(state_mod.load_state(lab.name))["a"]["phase"] == "added"
    _valid(lab.name)  # the record's mark is the state file's schema's too (a state read untrusted is checked)
    assert lab_status.status(state_mod.load_state(lab.name), k, [ModuleFeature(lifecycle)]).drift == [
        "cni: CHECK of pod a failed: pod a: CNI plugin chain CHECK: failed (exit 1): no (as right after its own "
        "fresh ADD: up does not re-attach the pod for it)"]
    # The next up (a watcher's repair, every --resync) does not DEL and ADD it again: it says the same.
    plugins.calls.clear()
    again = up(lab, k)
    assert [line.split(": failed")[0] for line in again.failed] == [
        "pod a: CNI plugin chain's CHECK fails on its own fresh ADD (as found before, by its first CHECK after its ADD)"]
    assert plugins.of("a") == []
    # The plugin mended: its CHECK passes, nothing is re-attached, and a later failing CHECK re-attaches again.
    plugins.fail.clear()
    plugins.calls.clear()
    result = up(lab, k)
    assert plugins.of("a") == [] and not any("pod a" in f for f in result.fixed) and not result.failed
    assert "check_fails" not in pod_records(state_mod.load_state(lab.name))["a"]
    teardown.down(lab.name, k, [ModuleFeature(lifecycle)])


class Losing(test_cni_reattach.Plugins):
    """chain's ADD of pod a answers ``result(add_result)``."""

    def __init__(self, result):
        super().__init__()
        self.result = result

    def __call__(self, log, **kw):
        out = super().__call__(log, **kw)
        if kw["command"] == "ADD" and kw["pod"] == "a" and kw["plugin_path"].endswith("/chain"):
            return self.result(out)
        return out


@pytest.mark.parametrize("result, why", [
    (lambda r: dict(r, ips=[]), "its result has no ips: it gives the pod no address"),
    (lambda r: dict(r, ips=[dict(r["ips"][0], interface=0)]),
     "its result gives 10.244.0.2 to interface 0 (vetha), not to eth0 (interface 1)"),
    (lambda r: {"cniVersion": "1.0.0", "code": 13, "msg": "quota"},
     "it exited 0 but printed an error object: quota [code 13] (a plugin that fails exits non-zero)"),
])
def test_a_result_that_loses_the_pods_address_names_the_plugin_and_its_del(tmp_path, monkeypatch, result, why):
    plugins = Losing(result)
    from cni_fakes import cni_world, lab_of
    with cni_world(tmp_path, monkeypatch, test_cni_reattach.TOPO, plugins, conflist={
            "cniVersion": "1.0.0", "name": "net", "plugins": [{"type": "chain", "capabilities": {"ipRanges": True}}]}):
        lab, k = lab_of(tmp_path), FakeKernel()
        with pytest.raises(ApplyFailed) as exc:
            up(lab, k)
        assert str(exc.value).startswith(f"pod a: CNI plugin chain ADD: {why}; its DEL ran: pod a is not attached"), \
            str(exc.value)
        assert plugins.of("a") == ADD_BOTH + DEL_BOTH


def test_a_removed_pods_first_del_is_not_said_to_run_again(world, tmp_path):
    lab, plugins = world
    k = FakeKernel()
    up(lab, k)
    smaller = without_b(tmp_path)
    plugins.calls.clear()
    out = lifecycle.start(smaller, state_mod.load_state(lab.name))  # b's record, no DEL of it tried yet
    assert plugins.of("b") == DEL_BOTH
    assert "ran the CNI DEL of removed pod b: it succeeded" in out.actions, out.actions
    teardown.down(lab.name, k, [ModuleFeature(lifecycle)])


def test_a_state_whose_record_says_detaching_is_valid_when_read_untrusted(world):
    """A re-attach writes phase "detaching" before its DEL (cni/lifecycle.py): a state read without its sum (checked
    whole) was refused as corrupt ("Input should be 'adding', 'added' or 'deleted'")."""
    lab, plugins = world
    up(lab, FakeKernel())
    st = state_mod.load_state(lab.name)
    pod_records(st)["a"]["phase"] = lifecycle.DETACHING
    st.save()
    _valid(lab.name)


class Saying(test_cni_reattach.Plugins):
    """chain's CHECK of a pod in ``fail`` answers ``said[pod]``: what it finds wrong with the pod now."""

    def __init__(self):
        super().__init__()
        self.said = {"a": "no"}

    def __call__(self, log, **kw):
        pod, plugin, command = kw["pod"], kw["plugin_path"].rsplit("/", 1)[-1], kw["command"]
        if command == "CHECK" and (pod, plugin, command) in self.fail:
            with self.lock:
                self.calls.append((pod, plugin, command, kw["env"]["CNI_IFNAME"]))
            raise PluginFailed(f"pod {pod}: CNI plugin {plugin} CHECK: failed (exit 1): {self.said[pod]} [code 11]")
        return super().__call__(log, **kw)


@contextmanager
def failing_chain(tmp_path, monkeypatch, plugins) -> Iterator[tuple[Lab, FakeKernel]]:
    """A lab whose conflist is one plugin, chain, up on a fake kernel with ``plugins``; then pod a's CHECK fails."""
    from cni_fakes import cni_world, lab_of
    with cni_world(tmp_path, monkeypatch, test_cni_reattach.TOPO, plugins, conflist={
            "cniVersion": "1.0.0", "name": "net", "plugins": [{"type": "chain", "capabilities": {"ipRanges": True}}]}):
        lab, k = lab_of(tmp_path), FakeKernel()
        up(lab, k)
        plugins.fail.add(("a", "chain", "CHECK"))
        plugins.calls.clear()
        yield lab, k


def test_a_pod_marked_check_fails_is_re_attached_for_another_failure_of_the_same_plugin(tmp_path, monkeypatch):
    """Review cnicheck 2: the mark kept only the plugin's name, so any later failure of it (real drift: a route
    deleted) was taken as "no ADD mends it" and never re-attached. The mark is the failure itself: the same one again
    is not re-attached; another is (DEL, ADD, one CHECK), and marked anew when that CHECK fails it too."""
    plugins = Saying()
    with failing_chain(tmp_path, monkeypatch, plugins) as (lab, k):
        [text] = up(lab, k).failed  # re-attached once, then its CHECK fails its fresh ADD: marked
        assert "CHECK fails on its own fresh ADD: failed (exit 1): no [code 11]" in text, text
        assert plugins.of("a") == DEL_BOTH + ADD_BOTH
        plugins.calls.clear()
        [text] = up(lab, k).failed  # the same failure: not re-attached
        assert "as found before, by its first CHECK after its ADD" in text and plugins.of("a") == [], text
        plugins.said["a"] = "route 10.96.0.0/12 via 10.244.0.1 is missing"  # real drift: another failure
        plugins.calls.clear()
        [text] = up(lab, k).failed
        assert plugins.of("a") == DEL_BOTH + ADD_BOTH, plugins.calls  # re-attached as any drift is
        assert "as found before" not in text and "route 10.96.0.0/12 via 10.244.0.1 is missing" in text, text
        plugins.calls.clear()
        [text] = up(lab, k).failed  # that failure, marked in turn, fails its fresh ADD too: not re-attached again
        assert "as found before, by its first CHECK after its ADD" in text and plugins.of("a") == [], text
        _valid(lab.name)
        teardown.down(lab.name, k, [ModuleFeature(lifecycle)])



class Counting(test_cni_reattach.Plugins):
    """chain's CHECK of a pod in ``fail`` says ``said`` with a new number at each call (a counter, a time, a process
    id, as a plugin's error may carry), with CNI error code ``code``."""

    def __init__(self):
        super().__init__()
        self.said, self.code, self.n = "check #{n} failed at 2026-12-06T08:10:{n:02d}.{n}Z (pid 40{n})", 11, 0

    def __call__(self, log, **kw):
        pod, plugin, command = kw["pod"], kw["plugin_path"].rsplit("/", 1)[-1], kw["command"]
        if command == "CHECK" and (pod, plugin, command) in self.fail:
            with self.lock:
                self.calls.append((pod, plugin, command, kw["env"]["CNI_IFNAME"]))
                self.n += 1
            msg = self.said.format(n=self.n)
            raise PluginFailed(f"pod {pod}: CNI plugin {plugin} CHECK: failed (exit 1): {msg} [code {self.code}]")
        return super().__call__(log, **kw)


def test_a_check_failure_whose_numbers_change_at_each_call_is_the_same_failure(tmp_path, monkeypatch):
    """A chained plugin whose CHECK's msg carries a counter (or a time) never matched its recorded mark (check_fails):
    every up DELed and ADDed the pod again. Its numbers are not the failure: the same words with other numbers are
    the same one (not re-attached); other words, or another CNI error code, are another (re-attached, marked anew)."""
    plugins = Counting()
    with failing_chain(tmp_path, monkeypatch, plugins) as (lab, k):
        [text] = up(lab, k).failed  # re-attached once (its CHECK said #1), then its fresh ADD's CHECK said #2
        assert "CHECK fails on its own fresh ADD: failed (exit 1): check #2 failed at 2026-12-06T08:10:02.2Z " \
            "(pid 402) [code 11]" in text, text
        assert plugins.of("a") == DEL_BOTH + ADD_BOTH
        for n in (3, 4):  # other numbers, the same failure: not re-attached, said as the earlier up's
            plugins.calls.clear()
            [text] = up(lab, k).failed
            assert plugins.of("a") == [] and "as found before, by its first CHECK after its ADD" in text, text
            assert f"check #{n} failed" in text, text  # what the CHECK says now
        assert lab_status.status(state_mod.load_state(lab.name), k, [ModuleFeature(lifecycle)]).drift[0].endswith(
            "(as right after its own fresh ADD: up does not re-attach the pod for it)")
        plugins.code = 12  # another CNI error code: another failure
        plugins.calls.clear()
        [text] = up(lab, k).failed
        assert plugins.of("a") == DEL_BOTH + ADD_BOTH and "as found before" not in text, text
        plugins.said = "check #{n}: route 10.96.0.0/12 is missing"  # other words: another failure
        plugins.calls.clear()
        [text] = up(lab, k).failed
        assert plugins.of("a") == DEL_BOTH + ADD_BOTH and "as found before" not in text, text
        plugins.said = "check #{n}: route 10.97.0.0/12 is missing"  # another address is no number to drop
        plugins.calls.clear()
        up(lab, k)
        assert plugins.of("a") == DEL_BOTH + ADD_BOTH
        plugins.calls.clear()
        up(lab, k)
        assert plugins.of("a") == []
        _valid(lab.name)
        teardown.down(lab.name, k, [ModuleFeature(lifecycle)])


def test_status_names_no_up_for_a_check_that_fails_its_own_fresh_add():
    """QA q57 #3: the line up leaves as it is gets a reason of its own (status's last line), naming disableCheck."""
    from netlab.feature import FRESH_ADD_FAILS
    from netlab.workload.policy import up_leaves

    line = "cni: CHECK of pod a failed: pod a: CNI plugin portmap CHECK: failed (exit 1): could not check ipv6 dnat"
    assert up_leaves(line) is None  # not marked: up re-attaches the pod once
    why = up_leaves(line + FRESH_ADD_FAILS)
    assert why is not None and '"disableCheck": true' in why and "up --reconfigure" in why
    assert why.endswith(fresh_check_fix("portmap")) and "plugins#819" in why  # up's and the watcher's words too
    # QA 61 5: the fix names the plugin whose CHECK failed; it blamed portmap's bug for bandwidth's CHECK too
    line = ("cni: CHECK of pod c failed: pod c: CNI plugin bandwidth CHECK: failed (exit 2); stderr: panic: runtime "
            "error: invalid memory address or nil pointer dereference")
    why = up_leaves(line + FRESH_ADD_FAILS)
    assert why is not None and why.endswith(fresh_check_fix("bandwidth")), why
    assert "fix the plugin bandwidth (Debian's bandwidth panics in CHECK" in why and "portmap" not in why, why
    assert "fix the plugin chain, or give the conflist" in fresh_check_fix("chain")  # one netlab knows nothing of


def test_a_chain_without_check_that_differs_from_its_fresh_add_names_no_disable_check():
    """A chain netlab compares with its cached result (no CHECK: cniVersion 0.3.1, or disableCheck already) that
    differs right after its own fresh ADD: giving it disableCheck is no fix, and its line does not say it."""
    from netlab.cni.changed import Changed

    text = Changed(False, "its eth0 has no address 10.244.0.2/24").fresh_words("a")
    assert text.endswith("a new ADD cannot mend it") and "disableCheck" not in text, text


class OwnRange(test_cni_reattach.Plugins):
    """chain's ADD gives pod a 10.99.0.2, from an IPAM range of its own outside node n1's podCIDR."""

    def __call__(self, log, **kw):
        out = super().__call__(log, **kw)
        if kw["command"] == "ADD" and kw["pod"] == "a" and kw["plugin_path"].endswith("/chain"):
            return dict(out, ips=[dict(out["ips"][0], address="10.99.0.2/24")])
        return out


def test_an_address_outside_the_podcidr_is_the_plugins_not_drift(tmp_path, monkeypatch):
    """cn61: a conflist whose host-local range lies outside the node's podCIDR works (containerd runs the plugin
    whatever the podCIDR; the address is the plugin's, and the lab follows it), but status called the pod's address
    drift (exit 1, "up does not repair it"). It is as the plugins made it: status warns, as up does, naming what no
    other node would reach; nothing differs from the plan. One node here: no other node is cut off from it now."""
    plugins = OwnRange()
    with test_cni_reattach.cni_world(tmp_path, monkeypatch, test_cni_reattach.TOPO, plugins,
                                     conflist={"cniVersion": "1.0.0", "name": "net", "plugins": [{"type": "chain"}]}):
        lab = test_cni_reattach.lab_of(tmp_path)
        k = FakeKernel()
        result = up(lab, k)
        [warned] = [w for w in result.warnings if w.startswith("pod a's address 10.99.0.2")]
        got = lab_status.status(state_mod.load_state(lab.name), k, [ModuleFeature(lifecycle)])
        assert not any("10.99.0.2" in line for line in got.drift), got.drift
        assert warned in got.warnings, got.warnings
        assert "the address is its plugins' (the lab follows it)" in warned and "a node added to the lab would" in warned
        teardown.down(lab.name, k, [ModuleFeature(lifecycle)])
