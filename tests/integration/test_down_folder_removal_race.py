"""Commands that meet a lab's folder while it is being removed: by a ``netlab down`` (lab_list.forget), or by a command
that took the lab's lock, found the lab not up, and drops the folder its lock made (lab_lock._drop_if_only_lock).

Each removal is held at its test hook (NETLAB_FAULT_MODE=pause) after one of the last names went: the state
(``forget-state-gone``), the lock (``forget-lock-gone``, ``drop-lock-gone``), the mark (``forget-mark-gone``,
``drop-mark-gone``). The folder was removed name by name at the lab's path, so commands met it half removed:
emptied, it was "not a lab folder of netlab's ... netlab leaves it alone" (exit 3, every command; a fresh-clone CI
run's ``break``, whose wait for a down's lock met the folder an ``up --lab`` waiting beside it was dropping); with
its mark alone, an ``up`` made its lock and the lab in it, and the removal then took the new lab's mark. Now the
folder leaves the lab's path in one step before its last names go: a command finds the lab down (exit 2, as for a
lab that is not up; ``down`` has nothing to do), and an ``up`` makes a folder of its own, which keeps its mark.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from helpers import lab_namespaces, netlab, state_path
from helpers_racing import lab_and_processes, started
from netlab.realize import lab_folder

pytestmark = pytest.mark.root

FORGET = ("forget-state-gone", "forget-lock-gone", "forget-mark-gone")  # a down's removal of the lab's folder
DROP = ("drop-lock-gone", "drop-mark-gone")  # an up --lab's, which waited for that down, found no lab, and drops it


@pytest.fixture
def lab_up(tmp_path):
    with lab_and_processes(tmp_path, "fr") as made:
        yield made
    assert lab_namespaces(made[0]) == []


def one_line(r: subprocess.CompletedProcess) -> str:
    """The command's one line of stderr, without the labs up beside it (other tests' labs in the same state folder)."""
    assert len(r.stderr.splitlines()) == 1, r
    return re.sub(r" \(labs up: [^)]*\)", "", r.stderr.rstrip("\n"))


def paused(procs: list[subprocess.Popen], point: str, *args: str) -> subprocess.Popen:
    """netlab ``args`` held at test hook ``point`` (NETLAB_FAULT_MODE=pause), in ``procs`` (killed at the end)."""
    proc = started(*args, env={"NETLAB_FAULT_POINT": point, "NETLAB_FAULT_MODE": "pause"})
    procs.append(proc)
    return proc


def hold(procs: list[subprocess.Popen], lab: str, point: str) -> subprocess.Popen:
    """The removal of lab ``lab``'s folder held at ``point``: the process held."""
    hook = f"netlab: paused at {point} (test hook)\n"
    if point in FORGET:
        down = paused(procs, point, "down", "--lab", lab)
        assert down.stderr.readline() == hook
        return down
    down = paused(procs, "down-deleted", "down", "--lab", lab)
    assert down.stderr.readline() == "netlab: paused at down-deleted (test hook)\n"
    up = paused(procs, point, "up", "--lab", lab)  # reads the lab up (its state, phase deleting), waits for the lock
    assert up.stderr.readline() == f"netlab: waiting for pid {down.pid} (netlab down) to release lab {lab}\n"
    out, err = down.communicate("\n", timeout=300)
    assert down.returncode == 0 and out.startswith(f"lab {lab} is down ("), (out, err)
    assert up.stderr.readline() == hook  # its lock taken, the lab not up: the folder its lock made goes
    return up


def finish(held: subprocess.Popen, point: str, lab: str) -> None:
    """The held removal goes on: its command ends as it would have."""
    out, err = held.communicate("\n", timeout=300)
    if point in FORGET:
        assert held.returncode == 0 and out.startswith(f"lab {lab} is down ("), (out, err)
    else:
        said = re.sub(r" \(labs up: [^)]*\)", "", err)
        assert held.returncode == 2 and f"netlab: lab '{lab}' is not up: taken down by pid " in said, (out, err)


def nothing_hidden_left(lab: str) -> None:
    root = os.path.dirname(state_path(lab))
    assert [name for name in os.listdir(root) if name.startswith(f".{lab}.")] == []


@pytest.mark.parametrize("point", FORGET + DROP)
def test_down_meeting_a_lab_folder_being_removed_has_nothing_to_do(lab_up, point):
    lab, _, procs = lab_up
    held = hold(procs, lab, point)
    r = netlab("down", "--lab", lab, check=False)
    assert r.returncode == 0 and r.stdout == f"lab {lab} is not up; nothing to do\n" and not r.stderr, r
    finish(held, point, lab)
    assert not os.path.lexists(state_path(lab))
    nothing_hidden_left(lab)


@pytest.mark.parametrize("point", FORGET + DROP)
def test_a_lab_folder_being_removed_is_a_lab_down_and_an_up_beside_it_keeps_its_own(lab_up, point):
    lab, path, procs = lab_up
    held = hold(procs, lab, point)
    not_up = f"netlab: lab '{lab}' is not up"
    for args in (("status", "--lab", lab), ("probe", "--lab", lab), ("trace", "--lab", lab, "fedora-1", "fedora-2"),
                 ("get", "pods", "--lab", lab), ("exec", "--lab", lab, "fedora-1", "--", "true"),
                 ("break", "--lab", lab, "ip-forward-off")):
        r = netlab(*args, check=False)
        assert r.returncode == 2 and one_line(r) == not_up, (args, r)
    r = netlab("up", "--lab", lab, check=False)
    assert r.returncode == 2 and one_line(r).startswith(f"{not_up}; "), r
    assert lab not in netlab("list", "-o", "json").stdout

    netlab("up", "-t", path)  # the lab made again beside the removal: in a folder of its own
    finish(held, point, lab)
    assert os.path.isfile(state_path(lab, lab_folder.MARK_FILE)), os.listdir(state_path(lab))
    assert lab_folder.not_ours(state_path(lab)) is None
    assert netlab("status", "--lab", lab, check=False).returncode == 0
    nothing_hidden_left(lab)


def test_a_down_ending_leaves_the_folder_of_an_up_that_began_beside_it(lab_up):
    """A down's lock, as it lets it go, drops the lab's folder when it holds nothing but a lock and the mark: the
    folder of an ``up`` that began beside the removal, holding its lock before its first state write, was taken
    from under it (the lab came up with no lock at its path, or not at all). The folder dropped is the one whose
    lock at the path is the lock held."""
    lab, path, procs = lab_up
    down = paused(procs, "forget-lock-gone", "down", "--lab", lab)
    assert down.stderr.readline() == "netlab: paused at forget-lock-gone (test hook)\n"
    up = paused(procs, "state-write", "up", "-t", path)
    assert up.stderr.readline() == "netlab: paused at state-write (test hook)\n"
    assert sorted(os.listdir(state_path(lab))) == ["lock", lab_folder.MARK_FILE]  # the up's, its lock held
    lock = os.stat(state_path(lab, "lock")).st_ino
    finish(down, "forget-lock-gone", lab)
    assert os.stat(state_path(lab, "lock")).st_ino == lock, os.listdir(state_path(lab))
    out, err = up.communicate("\n", timeout=300)  # stdin closed: each later write's hook goes on at once
    assert up.returncode == 0 and set(err.splitlines()) == {"netlab: paused at state-write (test hook)"}, err
    assert out.startswith(f"lab {lab} is up ("), out
    assert os.stat(state_path(lab, "lock")).st_ino == lock
    assert netlab("status", "--lab", lab, check=False).returncode == 0
    nothing_hidden_left(lab)
