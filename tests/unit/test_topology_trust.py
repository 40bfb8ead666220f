"""netlab as root runs a topology's container commands, and a CNI lab's plugins, as root: a topology, a file it
includes, a conflist or a binDir that someone other than root and the invoking user can change is refused in one
line naming it and why, as sshd's StrictModes refuses (found by a QA pass: a 0666 topology's `id -u` wrote 0).
Root's own 0644 files in /tmp, and the sudo user's own, keep working."""

from __future__ import annotations

import os
import pwd

import pytest

from netlab.errors import TopologyError
from netlab.model import trust
from netlab.model.load import load_topology

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the rule is root's")
NOBODY = pwd.getpwnam("nobody").pw_uid if os.geteuid() == 0 else 65534

TOPO = """name: sytrust
nodes: [{name: n1}]
pods:
  - name: a
    node: n1
    containers: [{name: main, command: [sh, -c, 'id -u > /tmp/sy-rootproof']}]
"""


@pytest.fixture
def folder(tmp_path):
    os.chmod(tmp_path, 0o755)
    return tmp_path


def _one_line(exc: TopologyError) -> str:
    text = str(exc)
    assert "\n" not in text.strip(), text
    return text


def test_roots_own_file_in_tmp_loads(folder):
    path = folder / "t.yaml"
    path.write_text(TOPO)
    os.chmod(path, 0o644)
    assert load_topology(str(path)).name == "sytrust"
    assert trust.untrusted(str(path)) is None


@pytest.mark.parametrize("how,why", [
    ("mode 666", "it is writable by everyone (mode 666)"),
    ("owned by nobody", "it is owned by nobody (mode 644), not by root or you"),
    ("folder 777", "its folder {folder} is writable by everyone (mode 777)"),
    ("folder of nobody", "its folder {folder} is owned by nobody (mode 755), not by root or you"),
])
def test_a_topology_someone_else_can_change_is_refused_naming_it_and_why(folder, how, why):
    path = folder / "t.yaml"
    path.write_text(TOPO)
    os.chmod(path, 0o644)
    if how == "mode 666":
        os.chmod(path, 0o666)
    elif how == "owned by nobody":
        os.chown(path, NOBODY, -1)
    elif how == "folder 777":
        os.chmod(folder, 0o777)
    else:
        os.chown(folder, NOBODY, -1)
    with pytest.raises(TopologyError) as info:
        load_topology(str(path))
    line = _one_line(info.value)
    # the same line for validate, which runs none of its commands (QA qr2 9: it said it "would run its commands")
    assert line.startswith(f"{path}: netlab refuses to read as root a file someone else can change (up runs its "
                           f"commands as root): {why.format(folder=folder)}; "), line


def test_the_sudo_users_own_file_loads_and_a_sticky_folder_is_fine(folder, monkeypatch):
    path = folder / "t.yaml"
    path.write_text(TOPO)
    os.chmod(path, 0o644)
    os.chown(path, NOBODY, -1)
    monkeypatch.setenv("SUDO_UID", str(NOBODY))  # `sudo netlab up -t ~/t.yaml`: the invoking user's file
    assert load_topology(str(path)).name == "sytrust"
    monkeypatch.delenv("SUDO_UID")
    os.chown(path, 0, -1)
    os.chmod(folder, 0o1777)  # /tmp: only the file's owner may replace it
    assert load_topology(str(path)).name == "sytrust"


def test_an_included_file_others_can_write_is_refused(folder):
    (folder / "policies").mkdir()
    inc = folder / "policies" / "p.yaml"
    inc.write_text("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny}\n"
                   "spec: {podSelector: {}, policyTypes: [Ingress]}\n")
    os.chmod(inc, 0o646)
    path = folder / "t.yaml"
    path.write_text(TOPO + "include: [policies/p.yaml]\n")
    with pytest.raises(TopologyError) as info:
        load_topology(str(path))
    assert "it is writable by everyone (mode 646)" in str(info.value), str(info.value)
    os.chmod(inc, 0o644)
    load_topology(str(path))


def test_a_conflist_and_a_bindir_others_can_write_are_refused(folder):
    conf = folder / "net.conflist"
    conf.write_text('{"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "bridge"}]}')
    os.chmod(conf, 0o666)
    bins = folder / "bin"
    bins.mkdir()
    os.chmod(bins, 0o777)
    path = folder / "t.yaml"
    path.write_text(TOPO + "network: {cni: {conflist: net.conflist, binDir: bin}}\n")
    with pytest.raises(TopologyError) as info:
        load_topology(str(path))
    text = str(info.value)
    assert f"{conf}: netlab runs as root and would run the CNI plugins it names as root, but it is writable by " \
           "everyone (mode 666)" in text, text
    assert f"{bins}: netlab runs as root and would run its CNI plugins as root, but it is writable by everyone " \
           "(mode 777)" in text, text


def test_a_plugin_others_can_change_is_not_run(folder):
    from netlab.cni.invoke import PluginFailed
    from netlab.cni.runtime import Runtime

    plugin = folder / "bridge"
    plugin.write_text("#!/bin/sh\nid -u > /tmp/sy-rootproof\n")
    os.chmod(plugin, 0o777)
    rt = Runtime(str(folder / "cache"), [str(folder)], log=None)  # type: ignore[arg-type]
    with pytest.raises(PluginFailed, match=f"CNI plugin {plugin}: .* it is writable by everyone"):
        rt.plugin_path("bridge")
    os.chmod(plugin, 0o755)
    assert rt.plugin_path("bridge") == str(plugin)


def test_validate_of_a_file_everyone_can_write_refuses_to_read_it_and_says_no_command_would_run(folder):
    """QA qr2 9: `validate` said "netlab runs as root and would run its commands as root"; it runs none. It
    refuses it as every reader as root does, in those words."""
    from cli_inprocess import run_cli

    path = folder / "t.yaml"
    path.write_text(TOPO)
    os.chmod(path, 0o666)
    got = run_cli("validate", "-t", str(path))
    assert got.returncode == 2 and got.stderr.count("\n") == 1, got
    assert got.stderr.startswith(f"{path}: netlab refuses to read as root a file someone else can change (up runs "
                                 "its commands as root): it is writable by everyone (mode 666); "), got.stderr
    assert "would run" not in got.stderr


def test_a_group_write_is_accepted_for_roots_group_and_the_owners_private_group_only(folder):
    """The README's rule, as the code has it: a root:root 775 folder is fine; another group's write is not."""
    path = folder / "t.yaml"
    path.write_text(TOPO)
    os.chmod(path, 0o664)
    os.chown(path, 0, 0)
    assert trust.untrusted(str(path)) is None
    os.chown(path, 0, 100)  # group users (Debian's gid 100): not root's, nor a group of root's own
    why = trust.untrusted(str(path))
    assert why is not None and why.startswith("it is writable by group ") and why.endswith(" (mode 664)"), why
