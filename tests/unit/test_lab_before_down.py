"""``Lab.down()``'s before-down hooks (the pytest plugin's: a failing test's lab is read before a ``with`` block's
end takes it down): called once, before the take-down, and never in its way: a Ctrl-C while one reads the lab
still takes the lab down. The plugin's hook reads the lab only while the test is failing."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import netlab.api.lab as lab_mod
from netlab import pytest_artifacts
from netlab.api import Lab


@pytest.fixture
def downs(monkeypatch):
    """lifecycle.down, recorded instead of run."""
    calls: list[str] = []

    def down(name, **kwargs):
        calls.append(name)
        return SimpleNamespace(lab=name, was_up=True, removed_netns=[], skipped=[], problems=[],
                               removed_pod_files=[], stopped=[])
    monkeypatch.setattr(lab_mod.lifecycle, "down", down)
    return calls


def test_a_hook_runs_before_the_take_down_and_once(downs):
    lab, seen = Lab("qh1"), []
    lab._before_down.append(lambda: seen.append(list(downs)))
    lab.down()
    lab.down()
    assert seen == [[]] and downs == ["qh1", "qh1"]


def test_ctrl_c_in_a_hook_still_takes_the_lab_down(downs):
    lab = Lab("qh2", owned=True)

    def interrupted():
        raise KeyboardInterrupt
    lab._before_down.append(interrupted)
    with pytest.raises(KeyboardInterrupt):
        with lab:
            raise AssertionError("the test fails")
    assert downs == ["qh2"]


@pytest.mark.parametrize("raised,read", [(None, False), (AssertionError("x"), True), (KeyboardInterrupt(), False),
                                         ("fail", True), ("skip", False)])
def test_the_plugins_hook_reads_the_lab_only_while_the_test_fails(monkeypatch, downs, raised, read):
    monkeypatch.setattr(pytest_artifacts, "snapshot", lambda lab, reaches, traces: {"status.json": {"ok": True}})
    item = SimpleNamespace(stash={})
    lab = Lab("qh3", owned=True)
    pytest_artifacts.used_by(item, lab)
    if raised == "fail":
        raised = pytest.fail.Exception("x")
    elif raised == "skip":
        raised = pytest.skip.Exception("x")
    try:
        with lab:
            if raised is not None:
                raise raised
    except BaseException as exc:  # noqa: BLE001 - the one raised above
        assert exc is raised
    assert (pytest_artifacts.TAKEN in item.stash) == read and downs == ["qh3"]
    pytest_artifacts.unhook(item)
    assert lab._before_down == []
