"""QA qs2 2-5: what root runs or reads is checked all the way. A CNI plugin asked VERSION (validate, doctor, up's
first step) is checked as for ADD; NETLAB_CNI_PATH's folders' parents too; a symlink chain is checked at every
link and every folder it passes through, and the plugin run is the resolved file; a POSIX ACL letting another
user write is someone else's write; a group is the owner's private one only if no other account has it as its
primary group. As root, with tmp folders and files or links of nobody's."""

from __future__ import annotations

import os
import pwd
import struct
import types

import pytest

from helpers import write_program
from netlab.errors import TopologyError, UsageError
from netlab.model import trust
from netlab.model.load import load_topology

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the rule is root's")
NOBODY = pwd.getpwnam("nobody").pw_uid if os.geteuid() == 0 else 65534
TOPO = "name: sytrust\nnodes: [{name: n1}]\npods: [{name: a, node: n1}]\n"
PLUGIN = ('#!/bin/sh\necho "$CNI_COMMAND" >> {proof}\n'
          'echo \'{{"cniVersion": "1.0.0", "supportedVersions": ["1.0.0"]}}\'\n')


@pytest.fixture
def folder(tmp_path):
    os.chmod(tmp_path, 0o755)
    return tmp_path


def _nobodys(path, mode=0o755):
    path.mkdir()
    os.chown(path, NOBODY, -1)
    os.chmod(path, mode)
    return path


def _plugin(path, proof, mode=0o755):
    write_program(path, PLUGIN.format(proof=proof), mode)


def test_a_plugin_asked_version_is_checked_as_for_add(folder):
    from netlab.cni.check import ask
    from netlab.cni.invoke import CallLog, PluginFailed
    from netlab.cni.runtime import Runtime

    proof = folder / "proof"
    _plugin(folder / "bridge", proof, 0o777)
    with pytest.raises(UsageError, match=r"it is writable by everyone \(mode 777\)"):  # before any plugin runs
        ask([("bridge", "1.0.0")], [str(folder)])
    with pytest.raises(PluginFailed, match="writable by everyone"):
        Runtime("/nonexistent", [str(folder)], CallLog(None)).version("bridge")
    assert not proof.exists(), "the plugin ran as root"
    os.chmod(folder / "bridge", 0o755)
    (answer,) = ask([("bridge", "1.0.0")], [str(folder)])
    assert not answer.error and proof.read_text() == "VERSION\n", answer


def test_netlab_cni_path_under_someone_elses_folder_is_refused(folder):
    from netlab.realize.cni_path import checked

    nob = _nobodys(folder / "nob")
    (nob / "cnibin").mkdir(mode=0o755)  # root's 0755 folder, in a folder nobody can swap it out of
    with pytest.raises(UsageError, match=f"its folder {nob} is owned by nobody"):
        checked(str(nob / "cnibin"))
    os.chown(nob, 0, -1)
    assert checked(str(nob / "cnibin")) == [str(nob / "cnibin")]


def _chain(folder):
    """folder/links/t.yaml -> folder/nob/mid.yaml (in nobody's folder) -> folder/real/t.yaml, all else root's."""
    (folder / "real").mkdir(mode=0o755)
    (folder / "real" / "t.yaml").write_text(TOPO)
    nob = _nobodys(folder / "nob")
    os.symlink(folder / "real" / "t.yaml", nob / "mid.yaml")
    (folder / "links").mkdir(mode=0o755)
    os.symlink(nob / "mid.yaml", folder / "links" / "t.yaml")
    return nob


def test_a_link_in_the_middle_of_a_chain_is_checked_where_it_is(folder):
    nob = _chain(folder)
    path = folder / "links" / "t.yaml"
    with pytest.raises(TopologyError, match=f": its folder {nob} is owned by nobody"):
        load_topology(str(path))
    os.chown(nob, 0, -1)
    os.chmod(nob, 0o1777)  # /tmp-like: the folder is fine, the link in it is nobody's
    os.lchown(nob / "mid.yaml", NOBODY, -1)
    assert trust.untrusted(str(path)) == f"the symlink {nob}/mid.yaml on its way is owned by nobody, not by root or you"
    os.lchown(nob / "mid.yaml", 0, -1)
    assert load_topology(str(path)).name == "sytrust"


def test_a_plugin_is_run_as_the_file_checked_not_by_the_name_found(folder):
    from netlab.cni.invoke import CallLog, PluginFailed
    from netlab.cni.runtime import Runtime

    (folder / "real").mkdir(mode=0o755)
    proof = folder / "proof"
    _plugin(folder / "real" / "bridge", proof)
    nob = _nobodys(folder / "nob")
    os.symlink(folder / "real", nob / "cur")
    os.symlink(nob / "cur", folder / "bin")  # root's binDir link through nobody's folder: nobody picks the plugin
    rt = Runtime("/nonexistent", [str(folder / "bin")], CallLog(None))
    with pytest.raises(PluginFailed, match=f"its folder {nob} is owned by nobody"):
        rt.version("bridge")
    assert not proof.exists()
    os.chown(nob, 0, -1)
    assert rt.plugin("bridge") == (str(folder / "bin" / "bridge"), str(folder / "real" / "bridge"))
    assert rt.version("bridge")["supportedVersions"] == ["1.0.0"] and proof.read_text() == "VERSION\n"


def _acl(path, *entries):
    """system.posix_acl_access as setfacl writes it: version 2, then (tag, perm, id) sorted by tag."""
    raw = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", t, p, i) for t, p, i in sorted(entries))
    try:
        os.setxattr(path, "system.posix_acl_access", raw)
    except OSError as exc:
        pytest.skip(f"no POSIX ACLs on {path}'s file system ({exc.strerror})")


USER_OBJ, USER, GROUP_OBJ, MASK, OTHER, NONE_ID = 0x01, 0x02, 0x04, 0x10, 0x20, 0xFFFFFFFF


@pytest.mark.parametrize("what", ["file", "folder"])
def test_an_acl_letting_another_user_write_is_someone_elses_write(folder, what):
    path = folder / "t.yaml"
    path.write_text(TOPO)
    os.chmod(path, 0o644)
    target = path if what == "file" else folder
    # setfacl -m u:nobody:rw (or rwx): the mode shows the mask as group write, and the group is root's
    perm = 6 if what == "file" else 7
    _acl(target, (USER_OBJ, perm, NONE_ID), (USER, perm, NOBODY), (GROUP_OBJ, perm & 5, NONE_ID),
         (MASK, perm, NONE_ID), (OTHER, perm & 5, NONE_ID))
    with pytest.raises(TopologyError, match="lets user nobody write it by its ACL"):
        load_topology(str(path))
    _acl(target, (USER_OBJ, perm, NONE_ID), (USER, perm, NOBODY), (GROUP_OBJ, perm & 5, NONE_ID),
         (MASK, perm & 5, NONE_ID), (OTHER, perm & 5, NONE_ID))  # the mask takes the write away
    assert load_topology(str(path)).name == "sytrust"


def test_a_group_another_account_has_as_primary_is_not_private(folder, monkeypatch):
    gid = 54321  # the owner's own group: named as nobody, no member listed
    path = folder / "t.yaml"
    path.write_text(TOPO)
    os.chown(path, NOBODY, gid)
    os.chmod(path, 0o664)
    monkeypatch.setenv("SUDO_UID", str(NOBODY))
    group = types.SimpleNamespace(gr_name="nobody", gr_mem=[], gr_gid=gid)
    real_getgrgid = trust.grp.getgrgid
    monkeypatch.setattr(trust.grp, "getgrgid", lambda g: group if g == gid else real_getgrgid(g))
    accounts = [a for a in pwd.getpwall() if a.pw_gid != gid]
    monkeypatch.setattr(trust.pwd, "getpwall", lambda: accounts)
    assert load_topology(str(path)).name == "sytrust"
    # useradd -M -N -g nobody evil: in the group by its passwd entry, listed nowhere in the group's
    accounts = accounts + [types.SimpleNamespace(pw_name="evil", pw_uid=4242, pw_gid=gid)]
    with pytest.raises(TopologyError, match="is writable by group nobody"):
        load_topology(str(path))
