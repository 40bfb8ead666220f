"""The way back a failed up names for a lab whose conflist was edited in place is the one that works (fake plugins,
fake kernel). A plain `up` (and `Lab.repair()`) refuses such a lab (cni/edited.check): what a rollback could not
bring back, a pod a cut re-attach left detached or a namespace the run had begun to remove, is put back by
`up -t FILE --reconfigure` (`Lab.up(FILE, reconfigure=True)` in Python), which the lines named `up --lab`."""

from __future__ import annotations

import re

import pytest

from test_cni_edited import markers, up, world  # noqa: F401 (world: the fixture)
from netlab.cni import lifecycle
from netlab.errors import ApplyFailed, UsageError, netlab_command, python_words, repair_way
from netlab.lab.journal import Journal
from netlab.lab import up as lab_up
from netlab.feature import ModuleFeature
from netlab.model.lab import resolve
from netlab.model.load import load_topology


def again() -> str:
    """The line, its command under the test's state folder (errors.netlab_command, set once the fixtures ran)."""
    return f"`{netlab_command('up --lab fked --reconfigure')}`"  # no file: the lab by name


def test_a_re_attach_cut_between_del_and_add_names_up_reconfigure(world, monkeypatch):  # noqa: F811
    """up --reconfigure's error after a's DEL, before b's turn: a is left detached, b keeps the old config."""
    lab, k, plugins, path = world

    def fault_point(name):
        if name == "cni-detached":
            raise ApplyFailed("injected fault at cni-detached")

    real = lifecycle.testhooks.fault_point
    monkeypatch.setattr(lifecycle.testhooks, "fault_point", fault_point)
    with pytest.raises(ApplyFailed) as exc:
        up(lab, k, reconfigure=True)
    assert str(exc.value) == (
        "injected fault at cni-detached; rolled back, but for pod a, left detached (no eth0: the run had begun to "
        f"re-attach it, and the DEL before its ADD cannot be undone; {again()} attaches it again)")
    assert markers(lab)["b"] is None
    with pytest.raises(UsageError):
        up(lab, k)  # a plain up refuses: b was attached with the old config
    monkeypatch.setattr(lifecycle.testhooks, "fault_point", real)
    up(lab, k, reconfigure=True)  # the command named
    assert markers(lab) == {"a": "new", "b": "new"}


def test_a_namespace_the_run_had_begun_to_remove_names_up_reconfigure(world, tmp_path):  # noqa: F811
    lab, k, plugins, path = world
    (tmp_path / "less.yaml").write_text((tmp_path / "t.yaml").read_text().replace(
        "  - {name: b, node: n1, ip: 10.244.0.3}\n", ""))
    less = resolve(load_topology(str(tmp_path / "less.yaml")))
    said = []
    for at in range(1, 40):
        try:
            lab_up.up(less, k, features=[ModuleFeature(lifecycle)], journal=Journal(k, fault_at=at), reconfigure=True)
        except ApplyFailed as exc:
            if "which it had begun to remove" in str(exc):
                said.append(str(exc))
            continue
        break
    assert said
    for line in said:
        assert re.search(r"which it had begun to remove \((.*?) makes it again\)", line)[1] == again(), line  # b


def test_in_python_the_way_is_lab_up_reconfigure():
    cmd = netlab_command("up -t '/tmp/my lab.yaml' --reconfigure")

    with python_words(True):
        assert repair_way("L", cmd) == "Lab.up('/tmp/my lab.yaml', reconfigure=True)"
        assert repair_way("L", "sudo netlab up -t FILE --reconfigure") == "Lab.up(TOPOLOGY, reconfigure=True)"
        assert repair_way("L", "sudo netlab up -t /tmp/x.yaml") == "Lab('L').repair()"
    assert repair_way("L", cmd, api=False) == cmd


def test_a_rollback_that_fails_too_names_up_reconfigure(world, monkeypatch):  # noqa: F811
    lab, k, plugins, path = world

    def fails(self, state, fresh, tag):
        raise ApplyFailed("cannot read the tags")

    monkeypatch.setattr(lab_up.Rollback, "_rollback", fails)
    with pytest.raises(ApplyFailed) as exc:
        lab_up.up(lab, k, features=[ModuleFeature(lifecycle)], journal=Journal(k, fault_at=1), reconfigure=True)
    assert str(exc.value).endswith(f"the rollback failed too: cannot read the tags; what the run made is left, named "
                                   f"by the lab's state: {again()} repairs it"), exc.value
