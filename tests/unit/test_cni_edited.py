"""A conflist edited in place while the lab runs (QA q3 #1, #3), against fake plugins and the fake kernel.

status names the pods attached with the old config, a plain up refuses before any plugin runs, and up
--reconfigure re-attaches each pod: DEL with the config it was attached with, then ADD with the new one. A
re-attach whose ADD fails is ADDed again with the config it had, or, when that fails too, said to be left
detached. The real plugins in real namespaces: tests/integration/test_cni_edited_live.py.
"""

from __future__ import annotations

import json

import pytest

from cni_fakes import add_result, cni_topo, cni_world, lab_of, up
from netlab.cni import lifecycle
from netlab.cni.invoke import PluginFailed
from netlab.errors import ApplyFailed, UsageError, netlab_command
from netlab.feature import ModuleFeature
from netlab.kernel.fake import FakeKernel
from netlab.lab import status as lab_status
from netlab.lab import teardown
from netlab.realize import state as state_mod
from netlab.realize.attachments import pod_records

TOPO = cni_topo("fked") + """\
  - {name: a, node: n1, ip: 10.244.0.2}
  - {name: b, node: n1, ip: 10.244.0.3}
"""


class Plugins:
    """Stands in for invoke.exec_plugin: records (pod, command, the chain's marker) and fails an ADD of ``fail``'s
    (pod, marker)."""

    def __init__(self):
        self.calls: list[tuple[str, str, object]] = []
        self.fail: set[tuple[str, object]] = set()

    def __call__(self, log, *, pod, network, plugin_path, command, conf, env, node_netns, timeout=None, program=None):
        if plugin_path.endswith("/chain"):
            self.calls.append((pod, command, conf.get("marker")))
            if command == "ADD" and (pod, conf.get("marker")) in self.fail:
                raise PluginFailed(f"pod {pod}: CNI plugin chain ADD: failed (exit 1): no")
        return add_result(pod, env) if command == "ADD" else None


@pytest.fixture
def world(tmp_path, monkeypatch):
    plugins = Plugins()
    with cni_world(tmp_path, monkeypatch, TOPO, plugins):
        lab = lab_of(tmp_path)
        k = FakeKernel()
        up(lab, k)
        (tmp_path / "net.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "net",
                                                           "plugins": [{"type": "chain", "marker": "new"}]}))
        plugins.calls.clear()
        yield lab, k, plugins, str(tmp_path / "net.conflist")
        plugins.fail.clear()
        teardown.down(lab.name, k, [ModuleFeature(lifecycle)])


def drift(lab, k):
    return lab_status.status(state_mod.load_state(lab.name), k, [ModuleFeature(lifecycle)]).drift


def markers(lab):
    return {p: rec["networks"][-1][0]["plugins"][0].get("marker") for p, rec in
            pod_records(state_mod.load_state(lab.name)).items()}


def test_status_names_the_pods_attached_with_the_old_config_and_checks_them_with_it(world):
    lab, k, plugins, path = world
    assert drift(lab, k) == [f"cni: conflist {path} changed since pods a, b were attached with it: their CHECK runs "
                             f"with the config they were attached with; "
                             f"`{netlab_command('up --lab fked --reconfigure')}` re-attaches them with the new one"]
    assert sorted(plugins.calls) == [("a", "CHECK", None), ("b", "CHECK", None)]  # the cached config's CHECK
    # only up --reconfigure repairs it (a plain up refuses): the repair status names says so (QA qr3 1)
    assert lab_status.status(state_mod.load_state(lab.name), k, [ModuleFeature(lifecycle)]).reconfigure
    up(lab, k, reconfigure=True)
    assert not lab_status.status(state_mod.load_state(lab.name), k, [ModuleFeature(lifecycle)]).reconfigure


def test_a_plain_up_refuses_before_any_plugin_runs_and_reconfigure_re_attaches_every_pod(world):
    lab, k, plugins, path = world
    with pytest.raises(UsageError) as exc:
        up(lab, k)
    assert str(exc.value) == (
        f"lab fked: conflist {path} changed since pods a, b were attached with it, and a pod attached now would get "
        f"the new config beside them: `{netlab_command('up --lab fked --reconfigure')}` re-attaches them (their DEL with the "
        f"config they were attached with, then ADD with the new one), or put the old config back")
    assert plugins.calls == [] and markers(lab) == {"a": None, "b": None}
    result = up(lab, k, reconfigure=True)
    for pod in "ab":  # DEL with the old config, then ADD with the new one, then one CHECK of that ADD
        assert [c for c in plugins.calls if c[0] == pod] == [(pod, "DEL", None), (pod, "ADD", "new"),
                                                             (pod, "CHECK", "new")]
        assert f"re-attached pod {pod} through CNI (conflist {path} changed since its ADD)" in result.fixed
    assert markers(lab) == {"a": "new", "b": "new"}
    assert drift(lab, k) == []


def test_a_re_attach_whose_add_fails_is_attached_again_with_the_config_it_had(world):
    lab, k, plugins, path = world
    plugins.fail.add(("a", "new"))
    with pytest.raises(ApplyFailed) as exc:
        up(lab, k, reconfigure=True)
    assert str(exc.value) == ("pod a: CNI plugin chain ADD: failed (exit 1): no; its DEL ran: pod a is not attached; "
                              "then pod a was attached again with the config it had before; rolled back")
    assert [c for c in plugins.calls if c[0] == "a"] == [("a", "DEL", None), ("a", "ADD", "new"), ("a", "DEL", "new"),
                                                         ("a", "ADD", None)]
    st = state_mod.load_state(lab.name)
    assert pod_records(st)["a"]["phase"] == "added" and markers(lab)["a"] is None
    assert f"conflist {path} changed since pod a was attached" in drift(lab, k)[0]


def test_a_re_attach_whose_add_fails_twice_says_the_pod_is_left_detached(world):
    lab, k, plugins, path = world
    plugins.fail |= {("a", "new"), ("a", None)}
    with pytest.raises(ApplyFailed) as exc:
        up(lab, k, reconfigure=True)
    assert str(exc.value).endswith(
        "; then its ADD with the config it had before failed too: CNI plugin chain ADD: failed (exit 1): no; rolled "
        "back, but for pod a, left detached (no eth0: the DEL before its ADD cannot be undone; "
        f"`{netlab_command('up --lab fked')}` attaches it again)")
    assert pod_records(state_mod.load_state(lab.name))["a"]["phase"] == "deleted"
    assert "cni: pod a is not attached through CNI (up attaches it)" in drift(lab, k)
    plugins.fail.clear()
    plugins.calls.clear()
    up(lab, k)  # b has the new config, a none: a plain up attaches a with the file's
    assert plugins.calls[-1] == ("a", "ADD", "new") and markers(lab) == {"a": "new", "b": "new"}


def test_a_pod_left_detached_beside_a_pod_with_the_old_config_is_attached_again_by_up_reconfigure(world):
    """a's re-attach fails twice (left detached), b's ADD of the new config fails and b is attached again with the
    old one: a plain up refuses the lab (b's config was edited since), so the line names `up --reconfigure`, not
    the `up --lab` it named."""
    lab, k, plugins, path = world
    plugins.fail |= {("a", "new"), ("a", None), ("b", "new")}
    with pytest.raises(ApplyFailed) as exc:
        up(lab, k, reconfigure=True)
    assert str(exc.value).endswith("rolled back, but for pod a, left detached (no eth0: the DEL before its ADD cannot "
                                   f"be undone; `{netlab_command('up --lab fked --reconfigure')}` attaches it again)"
                                   ), exc.value

    assert markers(lab)["b"] is None
    with pytest.raises(UsageError):
        up(lab, k)  # the plain up refuses, as the line says
    plugins.fail.clear()
    up(lab, k, reconfigure=True)  # the command it named
    assert markers(lab) == {"a": "new", "b": "new"}
