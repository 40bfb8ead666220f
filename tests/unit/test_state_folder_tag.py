"""A lab up with another state folder (NETLAB_STATE_DIR: the pytest plugin's, a test's private one) is another
netlab's. From the default folder `list` called it "lost" with the advice to run `down --force`, and `down --force`
deleted it: its namespaces' tag said only the lab and the run. Now the tag names the state folder too (a hash of
its path, kernel/netns.py; recorded in the state): such a lab is `elsewhere`, named with its folder when the machine
shows it (its pins' tmpfs is mounted there), and `down --force` refuses it in one line, changing nothing. Tags of
an older netlab name no folder: taken as before. No root: the machine's namespaces, /etc/netns and mountinfo are
stand-ins (the real thing: tests/integration/test_state_folder_elsewhere.py).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from types import SimpleNamespace

import pytest
from fake_lab import make_lab, up

from netlab.api import lifecycle
from netlab.api.running import labs
from netlab.feature import ModuleFeature
from netlab.kernel import mountinfo as mountinfo_mod, netns as nsmod
from netlab.kernel.fake import FakeKernel
from netlab.lab import teardown
from netlab.lab.ownership import tag_for
from netlab.model.naming import pod_file_marker
from netlab.realize import ownership, state as state_mod, state_dir, tags
from netlab.realize.state import StateLost, lost_state
from netlab.realize.state_schema import check_state
from netlab.services import lifecycle as services, netns_files
from cli_inprocess import run_cli

LAB = "sx"
# Another netlab's state folder (never made: only its path is hashed); mountinfo writes its space as \040.
OTHER = "/srv/netlab other"
RUN = "0123456789abcdef0123456789abcdef"

lab = pytest.fixture(make_lab, name="lab")


@pytest.fixture
def machine(tmp_path, monkeypatch, state_root):
    """The machine's namespaces (name -> tag), /etc/netns and mount table, as stand-ins."""
    spaces: dict[str, str | None] = {}
    monkeypatch.setattr(tags.nsmod, "list_netns", lambda: sorted(spaces))
    monkeypatch.setattr(tags.nsmod, "read_tag", lambda name: spaces.get(name))
    etc = tmp_path / "etc-netns"
    etc.mkdir()
    monkeypatch.setattr(tags, "ETC_NETNS", str(etc))
    monkeypatch.setattr(netns_files, "ETC_NETNS", str(etc))
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text("22 1 0:21 / /run rw,nosuid - tmpfs tmpfs rw\n")
    monkeypatch.setattr(mountinfo_mod, "MOUNTINFO", str(mountinfo))
    return SimpleNamespace(spaces=spaces, etc=etc, mountinfo=mountinfo, root=state_root)


def pins_mounted(machine, folder: str, lab: str = LAB) -> None:
    """The lab's tmpfs of pins mounted on <folder>/<lab>/uts, as /proc/self/mountinfo writes it."""
    point = f"{folder}/{lab}/uts".replace(" ", "\\040")
    with open(machine.mountinfo, "a") as f:
        f.write(f"97 22 0:55 / {point} rw,relatime shared:40 - tmpfs netlab-uts rw,size=64k,mode=700\n")


def up_elsewhere(machine, folder: str = OTHER, pods: bool = True) -> list[str]:
    """Lab sx up with state folder ``folder``: its three namespaces tagged with it, its pods' files."""
    tag = nsmod.make_tag(LAB, RUN, tags.folder_tag(folder))
    names = [f"{LAB}-n1", f"{LAB}-a", f"{LAB}-b"]
    machine.spaces.update(dict.fromkeys(names, tag))
    for name in names[1:] if pods else []:
        (machine.etc / name).mkdir()
        (machine.etc / name / "hosts").write_text(f"{pod_file_marker(LAB)} pod's file\n")
    return names


def tree(root) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, dirs, files in os.walk(root) for f in dirs + files)


def test_a_tag_names_the_state_folder_and_reads_back_as_written():
    folder = tags.folder_tag("/tmp/one")
    tag = nsmod.make_tag(LAB, RUN, folder)
    values = nsmod.tag_values(tag)
    assert len(values) == 3 and all(0 < v < 2 ** 31 for v in values)
    assert nsmod.tag_of(str(v) for v in values) == tag
    assert tags.tag_owner(tag) == tags.tag_owner(nsmod.make_tag(LAB, RUN)) and tags.tag_folder(tag) == folder
    # one folder however it is spelled; another folder, another hash
    assert tags.folder_tag("/tmp/one/") == tags.folder_tag("/tmp/../tmp/one") == folder != tags.folder_tag("/tmp/two")
    # a namespace of an older netlab: no folder (0, or not read)
    old = nsmod.make_tag(LAB, RUN)
    assert nsmod.tag_of([str(v) for v in nsmod.tag_values(old)] + ["0"]) == old
    assert nsmod.tag_of(str(v) for v in nsmod.tag_values(old)) == old and tags.tag_folder(old) is None
    assert not tags.elsewhere(old)


def test_a_new_lab_records_its_folder_and_tags_its_namespaces_with_it(lab):
    k = FakeKernel()
    up(lab, k)
    st = state_mod.load_state(lab.name)
    assert st is not None
    rec = st.extra[tags.FOLDER_RECORD]
    assert rec == {"path": os.path.realpath(state_dir.STATE_ROOT), "tag": tags.folder_tag()}
    check_state(open(st.path, "rb").read(), lab.name)  # the strict schema takes it
    assert tag_for(st) == nsmod.make_tag(lab.name, st.run_id, rec["tag"])
    assert {k.read_tag(name) for name in st.netns} == {tag_for(st)}
    # a state of an older netlab records none: its tag is as it was
    del st.extra[tags.FOLDER_RECORD]
    assert tag_for(st) == nsmod.make_tag(lab.name, st.run_id)


def test_a_lab_up_with_another_folder_is_not_lost_and_its_folder_is_named(machine):
    names = up_elsewhere(machine)
    pins_mounted(machine, OTHER)
    pins_mounted(machine, "/tmp/third", "sy")  # another lab's, in yet another folder
    said = lost_state(LAB, pod_files=True)
    assert isinstance(said, tags.StateElsewhere) and not isinstance(said, StateLost) and said.exit_code == 3
    assert said.folder == OTHER and said.netns == sorted(names)
    assert str(said) == (
        f"lab sx is up under state folder {OTHER}, not {machine.root}: its namespaces (sx-a, sx-b, sx-n1) are "
        f"tagged with that folder, so netlab leaves them alone here; use that folder: "
        f"`sudo NETLAB_STATE_DIR='{OTHER}' netlab status --lab sx`")  # outside the CLI: a read, never a down


def test_a_folder_the_machine_does_not_show_is_still_not_this_one(machine):
    up_elsewhere(machine)  # no pins mounted from it: its path cannot be told, only that it is not this folder
    said = lost_state(LAB)
    assert isinstance(said, tags.StateElsewhere) and said.folder is None
    assert "another state folder (NETLAB_STATE_DIR), which this machine does not show" in str(said)
    assert "`sudo NETLAB_STATE_DIR=FOLDER netlab status --lab sx`" in str(said)


@pytest.mark.parametrize("folder", [None, "here"])
def test_a_tag_without_a_folder_or_with_this_one_is_lost_as_before(machine, folder):
    tag = nsmod.make_tag(LAB, RUN, tags.folder_tag() if folder else None)
    machine.spaces[f"{LAB}-a"] = tag
    assert isinstance(lost_state(LAB), StateLost)


def test_down_force_refuses_a_lab_up_with_another_folder_and_changes_nothing(machine):
    up_elsewhere(machine)
    pins_mounted(machine, OTHER)
    before = tree(machine.etc)
    k = FakeKernel()
    with pytest.raises(tags.StateElsewhere) as info:
        teardown.down(LAB, k, [ModuleFeature(services)], force=True)
    assert info.value.folder == OTHER
    assert tree(machine.etc) == before and os.listdir(machine.root) == []
    with pytest.raises(tags.StateElsewhere):  # plain down says the same
        teardown.down(LAB, k, [ModuleFeature(services)])


def test_down_force_by_the_cli_is_one_line_naming_the_folder_and_the_command(machine, monkeypatch):
    up_elsewhere(machine)
    pins_mounted(machine, OTHER)
    monkeypatch.setattr("netlab.cli.lab.require_root", lambda: None)
    monkeypatch.setattr(lifecycle, "live_kernel", FakeKernel)
    monkeypatch.setattr(lifecycle, "default_features", lambda: [ModuleFeature(services)])
    proc = run_cli("down", "--lab", LAB, "--force")
    assert (proc.returncode, proc.stdout) == (3, ""), proc
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(f"netlab: lab sx is up under state folder {OTHER}")
    assert proc.stderr.endswith(f"use that folder: `sudo NETLAB_STATE_DIR='{OTHER}' netlab down --lab sx --force`\n")


@pytest.mark.parametrize("words", [["probe", "--lab", LAB], ["status", "--lab", LAB, "-o", "json"],
                                   ["impair", "--lab", LAB, "a:eth0", "--delay", "10ms"],
                                   ["trace", "--lab", LAB, "a", "b"], ["exec", "--lab", LAB, "a", "--", "ip", "a"]])
def test_any_command_of_a_lab_up_with_another_folder_is_sent_there_as_it_was_typed(machine, monkeypatch, words):
    """`probe` of a lab up with another state folder answered "use that folder: `sudo NETLAB_STATE_DIR=... netlab
    down --lab L`": a destructive line for someone who asked to probe (QA docs58 2). The command they ran, with
    that folder after sudo, shell-quoted."""
    up_elsewhere(machine)
    pins_mounted(machine, OTHER)
    monkeypatch.setattr("netlab.cli.lab.require_root", lambda: None)
    monkeypatch.setattr(lifecycle, "live_kernel", FakeKernel)
    proc = run_cli(*words)
    assert proc.returncode == 3 and proc.stderr.count("\n") == 1, proc
    assert proc.stderr.startswith(f"netlab: lab sx is up under state folder {OTHER}"), proc.stderr
    said = f"use that folder: `sudo NETLAB_STATE_DIR='{OTHER}' netlab {shlex.join(words)}`\n"
    assert proc.stderr.endswith(said) and "down" not in proc.stderr, proc.stderr


def test_down_force_takes_its_own_runs_and_leaves_another_folders(machine):
    """A namespace of an older run of this folder's lab goes; one tagged with another folder is never named."""
    machine.spaces[f"{LAB}-old"] = nsmod.make_tag(LAB, "an old run", tags.folder_tag())
    machine.spaces[f"{LAB}-far"] = nsmod.make_tag(LAB, "a run elsewhere", tags.folder_tag(OTHER))
    parts = ownership.force_states(LAB, None)
    assert [sorted(st.netns) for st, _ in parts] == [[f"{LAB}-old"]]


def test_list_shows_it_elsewhere_never_lost(machine, monkeypatch):
    monkeypatch.setattr(state_dir, "DEFAULT_STATE_ROOT", str(machine.root))  # this folder is the default one
    up_elsewhere(machine)
    pins_mounted(machine, OTHER)
    rows = labs()
    assert [(r.lab, r.phase) for r in rows] == [(LAB, "elsewhere")]
    assert rows[0].error is not None and rows[0].error.startswith(f"lab sx is up under state folder {OTHER}")


@pytest.mark.parametrize("pods", [True, False], ids=["with-pods", "nodes-only"])
@pytest.mark.parametrize("default", [True, False], ids=["default-folder", "private-folder"])
def test_list_of_any_folder_shows_a_lab_of_another_folder_elsewhere(machine, monkeypatch, default, pods):
    """A private folder's `list` said "no lab is up" while another folder's lab was up (the default folder's found
    it by its pods' files alone): its namespaces' tags name that folder, whichever folder lists."""
    if default:
        monkeypatch.setattr(state_dir, "DEFAULT_STATE_ROOT", str(machine.root))
    up_elsewhere(machine, pods=pods)
    pins_mounted(machine, OTHER)
    if not default:  # an older netlab's, naming no folder: the default folder's (lost there), nothing here
        machine.spaces["old-n1"] = nsmod.make_tag("old", RUN)
    rows = labs()
    assert [(r.lab, r.phase) for r in rows] == [(LAB, "elsewhere")], rows
    assert str(rows[0].error).startswith(f"lab sx is up under state folder {OTHER}, not {machine.root}")


def test_up_names_the_folder_of_the_lab_whose_namespace_it_meets(machine, monkeypatch):
    up_elsewhere(machine)
    pins_mounted(machine, OTHER)
    monkeypatch.setattr(nsmod, "exists", lambda name: True)
    monkeypatch.setattr(nsmod, "is_netns_mount", lambda name: True)
    said = ownership.collision_message(f"{LAB}-a", LAB)
    assert said.startswith(f"namespace sx-a already exists and belongs to lab sx, up under state folder {OTHER}")
    # the command as it is pasted: that folder's down of that lab (it ended in a literal `--lab ...`)
    assert said.endswith(f"(`sudo NETLAB_STATE_DIR={shlex.quote(OTHER)} netlab down --lab sx`)"), said
    assert "stale" not in said and "ip netns del" not in said and "--force" not in said


@pytest.mark.parametrize("value", ["", None])
def test_an_empty_netlab_state_dir_is_unset(value):
    """`NETLAB_STATE_DIR= netlab list` said "no lab is up" (the working directory's labs), `up` "cannot create : its
    parent does not exist", the doctor "ok ... will be made": empty is unset, the default folder, for all of them."""
    env = {k: v for k, v in os.environ.items() if k != "NETLAB_STATE_DIR"}
    if value is not None:
        env["NETLAB_STATE_DIR"] = value
    code = "from netlab.realize import state_dir; print(state_dir.STATE_ROOT)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out == "/run/netlab\n"


@pytest.mark.parametrize("words", [["probe"], ["exec", "-ti", "a", "--", "ip", "-t", "a"]])
def test_a_lab_named_by_netlab_lab_is_named_in_the_line_for_the_other_folder(machine, monkeypatch, words):
    """A lab picked by $NETLAB_LAB (sudo drops it too) or as the only lab up here: the line's command names it
    after sudo, as the folder, or it would act on whichever lab that folder picks (demo, its only lab)."""
    up_elsewhere(machine)
    pins_mounted(machine, OTHER)
    monkeypatch.setattr("netlab.cli.lab.require_root", lambda: None)
    monkeypatch.setattr(lifecycle, "live_kernel", FakeKernel)
    monkeypatch.setenv("NETLAB_LAB", LAB)
    proc = run_cli(*words)
    assert proc.returncode == 3 and proc.stderr.count("\n") == 1, proc
    said = f"use that folder: `sudo NETLAB_STATE_DIR='{OTHER}' NETLAB_LAB={LAB} netlab {shlex.join(words)}`\n"
    assert proc.stderr.endswith(said), proc.stderr


def test_list_s_line_for_the_other_folder_names_no_lab():
    """QA qa58r 5: `list` lists every lab of the folder and reads no NETLAB_LAB: its line for a lab up under
    another folder gave `NETLAB_LAB=L ... netlab list`, as if it picked one."""
    from netlab.errors import typed_words

    with typed_words(["list"]):
        said = str(tags.StateElsewhere("qsl", ["qsl-n1"], "/tmp/other st"))
    assert said.endswith("use that folder: `sudo NETLAB_STATE_DIR='/tmp/other st' netlab list`"), said
    with typed_words(["status"]):
        said = str(tags.StateElsewhere("qsl", ["qsl-n1"], "/tmp/other st"))
    assert said.endswith("`sudo NETLAB_STATE_DIR='/tmp/other st' NETLAB_LAB=qsl netlab status`"), said
