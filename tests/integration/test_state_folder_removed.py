"""The state folder deleted (``rm -rf``) while a lab runs, or made immutable (root; QA q2, defects 2 and 3).

``rm -rf`` deletes all but the lab's UTS pins (their tmpfs is busy): the lab's folder stays, holding ``uts``
alone, with no mark. Every command refused it as "not a lab folder of netlab's", ``down --force`` too, and the
lab's namespaces, pins and processes stayed for good. The pins' tmpfs (``netlab-uts``) proves the folder
netlab's: ``down --force`` takes the lab, its pins and the folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from netlab.errors import down_command, netlab_command
from helpers import anything_of, lab_namespaces, netlab, state_path

pytestmark = pytest.mark.root


def topology(lab: str) -> str:
    return f"name: {lab}\nnodes: [{{name: n1}}]\npods: [{{name: a, node: n1}}, {{name: b, node: n1}}]\n"


def lab_mounts(lab: str) -> list[str]:
    """The lines of /proc/self/mountinfo with a mount point in the lab's folder."""
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if f" {state_path(lab)}/" in line]


def ip_netns(lab: str) -> list[str]:
    out = subprocess.run(["ip", "-j", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return sorted(ns["name"] for ns in json.loads(out or "[]") if ns["name"].startswith(lab + "-"))


def test_rm_rf_of_the_lab_folder_then_down_force_takes_the_lab(labs):
    lab = labs.name("srm")
    labs.up_here(topology(lab))
    assert len(ip_netns(lab)) == 4 and lab_mounts(lab)
    shutil.rmtree(state_path(lab), ignore_errors=True)  # the pins are busy: the folder and uts stay
    assert os.listdir(state_path(lab)) == ["uts"]
    listed = netlab("list")
    assert [line.split()[:2] for line in listed.stdout.splitlines() if line.startswith(lab)] == [[lab, "lost"]]
    assert "not a lab folder" not in listed.stderr, listed
    out = netlab("down", "--lab", lab, "--force", check=False)
    assert (out.returncode, out.stdout) == (0, f"lab {lab} is down (4 namespaces removed)\n"), out
    assert ip_netns(lab) == [] and lab_mounts(lab) == [] and not os.path.exists(state_path(lab))
    assert lab_namespaces(lab) == []


def test_a_foreign_file_in_an_emptied_lab_folder_is_said_with_the_way_that_works_and_kept(labs, tmp_path):
    """rm -rf of the lab's folder, then a file of the user's in it: down --force refused it with "name the lab
    otherwise, or point NETLAB_STATE_DIR at a folder of netlab's", neither of which takes the lab down. It says to
    move the file out, then down --force; that works, and the file is never touched."""
    lab = labs.name("sff")
    labs.up_here(topology(lab))
    folder = state_path(lab)
    shutil.rmtree(folder, ignore_errors=True)
    with open(os.path.join(folder, "notes"), "w") as f:
        f.write("mine\n")
    out = netlab("down", "--lab", lab, "--force", check=False)
    assert out.returncode == 3 and out.stderr == (
        f"netlab: {folder} holds lab {lab}'s UTS pins (its uts is netlab's tmpfs netlab-uts: the lab's folder, "
        "emptied while the lab ran) beside what netlab did not write there (notes), which it never removes: move "
        f"notes out of the folder, then `{netlab_command(f'down --lab {lab} --force')}` takes the lab down\n"), out
    assert len(ip_netns(lab)) == 4 and sorted(os.listdir(folder)) == ["notes", "uts"]
    listed = netlab("list", check=False)
    assert "move notes out of the folder" in listed.stderr, listed
    os.rename(os.path.join(folder, "notes"), tmp_path / "notes")
    out = netlab("down", "--lab", lab, "--force", check=False)
    assert (out.returncode, out.stdout) == (0, f"lab {lab} is down (4 namespaces removed)\n"), out
    assert ip_netns(lab) == [] and lab_mounts(lab) == [] and not os.path.exists(folder)
    assert (tmp_path / "notes").read_text() == "mine\n"


def test_rm_rf_of_the_whole_state_folder_then_down_force_takes_the_lab(labs, tmp_path):
    """A state folder of the test's own (the suite's is shared by other tests' labs)."""
    lab, root = labs.name("srw"), str(tmp_path / "state")
    env = {"NETLAB_STATE_DIR": root}
    try:
        labs.up(topology(lab), env=env)
        shutil.rmtree(root, ignore_errors=True)
        assert os.listdir(root) == [lab] and os.listdir(os.path.join(root, lab)) == ["uts"]
        out = netlab("down", "--lab", lab, "--force", check=False, env=env)
        assert (out.returncode, out.stdout) == (0, f"lab {lab} is down (4 namespaces removed)\n"), out
        assert ip_netns(lab) == [] and not [line for line in open("/proc/self/mountinfo") if f" {root}/" in line]
        assert os.listdir(root) == []
    finally:
        if anything_of(lab, root):
            netlab("down", "--lab", lab, "--force", check=False, env=env)


@pytest.mark.parametrize("what", ["folder", "state.json"])
def test_down_of_a_lab_whose_state_is_immutable_says_it_is_down_and_list_says_gone(labs, what):
    """chattr +i on the lab's folder or its state file: down takes the lab away, then says that the state stays,
    why, and how to forget it (it said "cannot write state.json" alone); `list` shows it `gone`, not `up`."""
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("chattr is not installed (it is in e2fsprogs)")
    lab = labs.name("sim")
    labs.up_here(topology(lab))
    target = state_path(lab) if what == "folder" else state_path(lab, "state.json")
    made = subprocess.run([chattr, "+i", target], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"the state folder's file system takes no immutable flag: {made.stderr.strip()}")
    try:
        out = netlab("down", "--lab", lab, check=False)
        assert out.returncode == 3 and out.stderr.startswith(
            f"netlab: lab {lab}'s namespaces are removed (4), but its state file {state_path(lab, 'state.json')} "
            "could be neither updated nor removed (permission denied to root: "), out
        assert f"`{down_command(lab)}` forgets it\n" in out.stderr and out.stderr.count("\n") == 1, out
        assert ip_netns(lab) == [] and lab_mounts(lab) == []
        listed = netlab("list", check=False)
        assert [line.split()[:2] for line in listed.stdout.splitlines() if line.startswith(lab)] == [[lab, "gone"]]
        assert f"lab {lab}: none of its namespaces is there any more" in listed.stderr, listed
        said = netlab("status", "--lab", lab, check=False)  # it listed every namespace as missing drift, exit 1
        assert said.returncode == 3 and said.stdout == "" and said.stderr == (
            f"netlab: lab {lab} is not up: none of its namespaces is there any more, yet its state file remains "
            f"({state_path(lab, 'state.json')}); once its folder may be written, `{down_command(lab)}` "
            f"forgets it (or `{netlab_command(f'up --lab {lab}')}` makes it again)\n"), said
    finally:
        subprocess.run([chattr, "-i", target], check=True)
    out = netlab("down", "--lab", lab)
    assert not os.path.exists(state_path(lab))


def test_down_force_of_a_lab_whose_state_folder_was_renamed_unmounts_its_pins_there(labs, tmp_path):
    """`mv` of the state folder: down --force removed the namespaces and left the UTS pins' tmpfs and its nsfs
    pins mounted in the renamed folder (QA q2, defect 4); they are found by the run's tag, unmounted and said."""
    lab, root = labs.name("smv"), str(tmp_path / "state")
    moved, env = str(tmp_path / "moved"), {"NETLAB_STATE_DIR": root}
    try:
        labs.up(topology(lab), env=env)
        os.rename(root, moved)
        assert [line for line in open("/proc/self/mountinfo") if f" {moved}/{lab}/uts" in line]
        out = netlab("down", "--lab", lab, "--force", env=env)
        assert out.stdout == f"lab {lab} is down (4 namespaces removed)\n", out
        assert out.stderr == (f"netlab: warning: {moved}/{lab}/uts: the lab's UTS pins, in its state folder moved "
                              "away; unmounted\n"), out
        assert ip_netns(lab) == [] and not [line for line in open("/proc/self/mountinfo") if f" {moved}/" in line]
    finally:
        if anything_of(lab, root):
            netlab("down", "--lab", lab, "--force", check=False, env=env)
        for line in open("/proc/self/mountinfo"):  # the test's own pins, if the fix failed: by their exact path
            if f" {moved}/{lab}/uts " in line:
                subprocess.run(["umount", "-l", f"{moved}/{lab}/uts"], check=False)


def test_down_force_proves_moved_pins_without_their_state_or_says_it_cannot(labs, tmp_path):
    """mv of the state folder, then its state.json removed: the pins' tmpfs names no run, and down --force left it
    mounted with its nsfs pins. Proven the lab's by the rest (its folder named <lab>, marked, 0700, netlab's names
    alone, pins named as the lab's pods), it is unmounted; the lab's folder renamed in its state folder (not named
    <lab>), it cannot be proven: one line, left mounted."""
    for renamed in (False, True):
        lab, root = labs.name("spv"), str(tmp_path / f"state{int(renamed)}")
        moved = str(tmp_path / f"moved{int(renamed)}")
        env = {"NETLAB_STATE_DIR": root}
        folder = os.path.join(moved, f"{lab}.old" if renamed else lab)
        try:
            labs.up(topology(lab), env=env)
            if renamed:  # the lab's folder renamed in its state folder, which the namespaces' tags name
                folder = os.path.join(root, f"{lab}.old")
                os.unlink(os.path.join(root, lab, "state.json"))
                os.rename(os.path.join(root, lab), folder)
            else:
                os.rename(root, moved)
                os.unlink(os.path.join(moved, lab, "state.json"))
            out = netlab("down", "--lab", lab, "--force", env=env)
            assert out.stdout == f"lab {lab} is down (4 namespaces removed)\n", out
            assert ip_netns(lab) == []
            left = [line for line in open("/proc/self/mountinfo") if f" {folder}/uts " in line]
            if renamed:
                assert out.stderr == (
                    f"netlab: warning: {folder}/uts: a tmpfs netlab-uts of UTS pins named as lab {lab}'s pods, with "
                    f"no state file beside it; not proven the lab's (its folder {folder} is not named {lab}): left "
                    "mounted\n"), out
                assert len(left) == 1 and " - tmpfs netlab-uts " in left[0]
            else:
                assert out.stderr == (f"netlab: warning: {folder}/uts: the lab's UTS pins, in its state folder moved "
                                      "away; unmounted\n"), out
                assert left == [] and not [line for line in open("/proc/self/mountinfo") if f" {moved}/" in line]
        finally:
            if anything_of(lab, root):
                netlab("down", "--lab", lab, "--force", check=False, env=env)
            for line in open("/proc/self/mountinfo"):  # the test's own pins: by their exact path
                if f" {folder}/uts " in line:
                    subprocess.run(["umount", "-l", f"{folder}/uts"], check=False)


def test_a_gone_lab_is_not_counted_when_a_command_picks_the_only_lab_up(labs, tmp_path):
    """QA qr3 3: with lab A up and lab B `gone` (chattr +i on its state file, then down: its namespaces removed,
    its state left), `status` and `get pods` without --lab said "several labs are up (A, B)" (exit 2) while `list`
    said B is not up. They act on A, the only lab that is up. A state folder of the test's own: the suite's holds
    other tests' labs, running beside it."""
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("chattr is not installed (it is in e2fsprogs)")
    up, gone, root = labs.name("sup"), labs.name("sgo"), str(tmp_path / "state")
    env = {"NETLAB_STATE_DIR": root}
    target = os.path.join(root, gone, "state.json")
    try:
        labs.up(topology(up), "a.yaml", env=env)
        labs.up(topology(gone), "b.yaml", env=env)
        made = subprocess.run([chattr, "+i", target], capture_output=True, text=True)
        if made.returncode != 0:
            pytest.skip(f"the state folder's file system takes no immutable flag: {made.stderr.strip()}")
        picked = {**env, "NETLAB_LAB": ""}  # neither --lab nor $NETLAB_LAB: the only lab up
        try:
            assert netlab("down", "--lab", gone, check=False, env=env).returncode == 3 and ip_netns(gone) == []
            listed = netlab("list", check=False, env=env).stdout.splitlines()
            assert sorted(line.split()[:2] for line in listed if line.startswith((up, gone))) == sorted(
                [[up, "up"], [gone, "gone"]]), listed
            status = netlab("status", env=picked)
            assert status.stdout.startswith(f"lab {up}: ") and "all as planned" in status.stdout, status
            pods = json.loads(netlab("get", "pods", "-o", "json", env=picked).stdout)
            assert pods["lab"] == up and [p["netns"] for p in pods["items"]] == [f"{up}-a", f"{up}-b"], pods
        finally:
            subprocess.run([chattr, "-i", target], check=False)
        netlab("down", "--lab", gone, env=env)
        assert not os.path.exists(os.path.join(root, gone)) and ip_netns(up)
        netlab("status", "--lab", up, env=env)  # A untouched: as planned
    finally:
        for lab in (up, gone):
            if anything_of(lab, root):
                netlab("down", "--lab", lab, "--force", check=False, env=env)
