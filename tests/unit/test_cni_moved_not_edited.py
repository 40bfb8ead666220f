"""A pod its CNI plugins attached, moved to another node in the file, with the conflist unchanged: a move, not an
edited config (QA q21 #2). Each node's config differs (host-local's leases in the node's own folder), and the pod's
recorded networks were compared with the config for its new node: a plain `up` said the conflist changed and
pointed to --reconfigure, which then said the move, and `status -t` said both. Now `up` says the move's two steps,
status no conflist line; a move with the conflist edited too says both, its first `up` --reconfigure. Fake plugins
and kernel."""

from __future__ import annotations

import json

import pytest

from cni_fakes import cni_topo, cni_world, lab_of, up
from netlab import api
from netlab.api import internals, lifecycle as api_lifecycle
from netlab.cni import edited, lifecycle
from netlab.errors import netlab_command
from netlab.lab import status as lab_status
from netlab.cli import status_text
from netlab.cni.invoke import PluginFailed
from netlab.errors import UsageError
from netlab.feature import ModuleFeature
from netlab.kernel.fake import FakeKernel
from netlab.lab import teardown
from netlab.realize import state as state_mod
from test_cni_edited import Plugins

TOPO = cni_topo("fkmv", nodes=2) + """\
  - {name: a, node: n1, ip: 10.244.0.2}
  - {name: b, node: n2, ip: 10.244.1.2}
"""
CONFLIST = {"cniVersion": "1.0.0", "name": "net", "plugins": [{"type": "chain", "ipam": {"type": "host-local"}}]}
MOVE = ("lab fkmv: pod b moves from node n2 to n1, and its CNI plugins attached it on n2{}: take the pod out of "
        "the file and {} (its plugins' DEL runs), then put it back on n1 and `up` again")


class NodePlugins(Plugins):
    """Plugins whose CHECK of a pod fails on another node than its ADD's, as the bridge plugin's does (its host
    veth is not there)."""

    def __init__(self):
        super().__init__()
        self.added: dict[str, object] = {}

    def __call__(self, log, *, pod, node_netns, command, **kw):
        if command == "ADD":
            self.added[pod] = node_netns
        if command == "CHECK" and self.added.get(pod) != node_netns:
            self.calls.append((pod, command, None))
            raise PluginFailed(f"pod {pod}: CNI plugin chain CHECK: failed (exit 1): its veth is not on this node")
        return super().__call__(log, pod=pod, node_netns=node_netns, command=command, **kw)


@pytest.fixture
def world(tmp_path, monkeypatch):
    plugins = NodePlugins()
    with cni_world(tmp_path, monkeypatch, TOPO, plugins, conflist=CONFLIST):
        lab = lab_of(tmp_path)
        k = FakeKernel()
        up(lab, k)
        (tmp_path / "t.yaml").write_text(TOPO.replace("{name: b, node: n2, ip: 10.244.1.2}", "{name: b, node: n1}"))
        plugins.calls.clear()
        yield lab_of(tmp_path), k, plugins, tmp_path
        teardown.down(lab.name, k, [ModuleFeature(lifecycle)])


def test_a_moved_pod_is_a_move_not_an_edited_config(world):
    moved, k, plugins, _ = world
    state = state_mod.load_state(moved.name)
    assert edited.stale(moved, state) == []  # status -t: no conflist line, the move's (below)
    for reconfigure in (False, True):
        with pytest.raises(UsageError) as exc:
            up(moved, k, reconfigure=reconfigure)
        assert str(exc.value) == MOVE.format("", "`up`")
    assert plugins.calls == []


def test_a_moved_pod_with_the_conflist_edited_too_says_both(world):
    moved, k, plugins, tmp_path = world
    (tmp_path / "net.conflist").write_text(json.dumps({**CONFLIST, "plugins": [
        {"type": "chain", "marker": "new", "ipam": {"type": "host-local"}}]}))
    state = state_mod.load_state(moved.name)
    assert edited.stale(moved, state) == ["a", "b"]
    for reconfigure in (False, True):
        with pytest.raises(UsageError) as exc:
            up(moved, k, reconfigure=reconfigure)
        assert str(exc.value) == MOVE.format(f"; and conflist {tmp_path / 'net.conflist'} changed since pods a, b were "
                                             "attached with it", f"`{netlab_command('up --lab fkmv --reconfigure')}`")
    assert plugins.calls == []


def status_t(k, tmp_path, monkeypatch):
    """`status -t t.yaml` of the running lab, on the fake kernel with the CNI feature only."""
    monkeypatch.setattr(api_lifecycle, "status",
                        lambda state, kernel: lab_status.status(state, k, [ModuleFeature(lifecycle)]))
    return internals.internal_status(api.Lab.attach("fkmv"), str(tmp_path / "t.yaml"))


def test_status_against_the_file_says_the_move_as_drift_once(world, monkeypatch):
    # It said all as planned (ok, no drift) with only a warning that up refuses: `status -t F || up -t F` skipped
    # the step that fails. A builtin lab's moved pod is drift (QA q24 #2).
    _, k, plugins, tmp_path = world
    result = status_t(k, tmp_path, monkeypatch)
    assert not result.ok and result.drift == ("cni: " + MOVE.format("", "`up`").removeprefix("lab fkmv: "),)
    assert not [w for w in result.warnings if "moves from node" in w], result.warnings  # said once
    # No CHECK of b against n1, the file's node, where its plugins never attached it: it failed there, a second,
    # false line for the same pod (QA q29 #2); a's CHECK runs.
    assert [c[:2] for c in plugins.calls] == [("a", "CHECK")]
    # No `up` the file's up refuses (it named `up -t FILE --reconfigure`, exit 2): the two steps, no command
    assert result.repair is None and result.kept == result.drift, result


def test_status_text_of_a_move_names_no_up_as_its_repair(world, monkeypatch, capsys):
    _, k, _, tmp_path = world
    path = str(tmp_path / "t.yaml")
    status_text.say(status_t(k, tmp_path, monkeypatch), None, path)
    out = capsys.readouterr().out
    assert "CHECK" not in out and "run `" not in out, out
    assert out.endswith(f"`{netlab_command(f'up -t {path}')}` refuses the file (exit 2) while it moves a pod its CNI plugins "
                        "attached: the two steps its cni: line says apply it\n"), out


def test_status_against_the_file_with_the_conflist_edited_too_says_both_in_one_line(world, monkeypatch):
    _, k, _, tmp_path = world
    (tmp_path / "net.conflist").write_text(json.dumps({**CONFLIST, "plugins": [
        {"type": "chain", "marker": "new", "ipam": {"type": "host-local"}}]}))
    result = status_t(k, tmp_path, monkeypatch)
    assert result.drift == ("cni: " + MOVE.format(f"; and conflist {tmp_path / 'net.conflist'} changed since pods a, "
                                                  "b were attached with it", f"`{netlab_command('up --lab fkmv --reconfigure')}`"
                                                  ).removeprefix("lab fkmv: "),)
    # The first step's up is --reconfigure (the line says it), but that of this file is refused: no repair named
    assert result.repair is None and result.kept == result.drift, result
