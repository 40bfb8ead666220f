"""What an `up` killed (SIGKILL) before, in or just after its first state write leaves, as `list` and `down` see it
(realize/state.interrupted_up and stalled, lab/teardown.down), on the fake kernel, in a private state directory.

The write-ahead (lab/up.py) names every namespace before one exists: an up killed before its state file is in place
made only the lab's folder (its lock, maybe the write's temporary file). `list` called that folder's lab lost (its
temporary file taken for a run's files) and only `down --force` took it; a folder with the lock alone was not listed.
"""

from __future__ import annotations

import os

from netlab.errors import down_command, netlab_command
from netlab.errors import python_words
from netlab.api.running import labs
from netlab.kernel.fake import FakeKernel
from netlab.lab.teardown import down
from netlab.realize import state_dir
from netlab.realize import lab_lock
from netlab.realize.interrupted import interrupted_up, stalled
from netlab.realize.state import LabState, lost_state

LAB = "kx"
DEAD = "pid 4194304 (netlab up)"  # above pid_max's default: nobody


def folder(*names: str, holder: str = DEAD) -> str:
    """The lab's folder as an up killed there left it: its lock naming that up, and these files."""
    path = state_dir.lab_dir(LAB)
    with open(os.path.join(path, state_dir.LOCK_FILE), "w") as fh:
        fh.write(holder + "\n")
    for name in names:
        with open(os.path.join(path, name), "w") as fh:
            fh.write('{"version": 1, "lab": "kx", "netns": {"kx-n1": "int')  # cut short
    return path


def test_an_up_killed_in_its_first_state_write_is_listed_interrupted_and_plain_down_removes_its_folder():
    path = folder("state.json.tmp.4194304")
    assert lost_state(LAB) is None  # the temporary file is no run's work: the lab's state was not lost
    rows = [row for row in labs() if row.lab == LAB]
    assert [(row.phase, row.namespaces) for row in rows] == [("interrupted", 0)], rows
    assert rows[0].error == (
        f"lab {LAB}: the `netlab up` that made its folder (pid 4194304) ended before it saved the lab's state, so "
        f"nothing of the lab was made (the folder holds only its lock and state.json.tmp.4194304); "
        f"`Lab({LAB!r}).down()` removes it")  # netlab.labs(): the Python call; `netlab list`: the command
    result = down(LAB, FakeKernel())
    assert result.was_up and result.removed_netns == [] and not os.path.lexists(path)
    assert [row for row in labs() if row.lab == LAB] == []


def test_an_up_killed_before_it_wrote_is_listed_by_its_lock_alone():
    path = folder()
    rows = [row for row in labs() if row.lab == LAB]
    assert [row.phase for row in rows] == ["interrupted"] and "holds only its lock);" in str(rows[0].error)
    assert down(LAB, FakeKernel()).was_up and not os.path.lexists(path)


def test_a_folder_another_command_left_or_an_up_at_work_is_no_interrupted_lab():
    folder(holder="pid 4194304 (netlab impair)")  # a command killed on a lab that is not up: nothing to say
    assert interrupted_up(LAB) is None and [row for row in labs() if row.lab == LAB] == []
    assert down(LAB, FakeKernel()).was_up is False
    folder("state.json.tmp.1")
    with lab_lock.LabLock(LAB, "netlab up"):  # an up writing its first state now: not listed, as before
        assert interrupted_up(LAB) is None and [row for row in labs() if row.lab == LAB] == []


def test_a_lab_whose_up_or_down_ended_halfway_says_so_while_nobody_holds_it():
    state = LabState(lab=LAB, netns={f"{LAB}-n1": "intent"}, phase="creating")
    state.save()
    folder(holder=DEAD)
    assert stalled(state) == (f"lab {LAB}: the `netlab up` that was making it (pid 4194304) ended before it "
                              f"finished (killed); `{netlab_command(f'up --lab {LAB}')}` finishes it, or "
                              f"`{down_command(LAB)}` takes away what it made")
    with python_words():  # netlab.labs(): the Python call
        assert [row.error for row in labs() if row.lab == LAB] == [stalled(state)]
    with lab_lock.LabLock(LAB, "netlab up"):  # at work: no line
        assert stalled(state) is None
    state.phase = "deleting"
    state.save()
    assert "the `netlab down` that was taking it down" in str(stalled(state)) and \
        str(stalled(state)).endswith("finishes it")
    state.phase = "up"
    assert stalled(state) is None
    state.save()
    state.phase = "creating"  # read while an up was at work, which has finished since: the state says so now
    assert stalled(state) is None
    assert down(LAB, FakeKernel()).was_up


def test_a_creating_lab_whose_last_holder_was_a_down_that_failed_does_not_blame_an_up_with_the_downs_pid():
    """An up rolled back halfway (its rollback failed), then a down that failed on a full disk before it could write
    phase deleting: the lock names the down. `list` said "the `netlab up` that was making it (pid <the down's>)"
    (QA q50 1)."""
    state = LabState(lab=LAB, netns={f"{LAB}-n1": "intent"}, phase="creating")
    state.save()
    folder(holder="pid 4194304 (netlab down)")
    assert stalled(state) == (f"lab {LAB}: the `netlab up` that was making it ended before it finished, and pid "
                              f"4194304 (netlab down), the last command that held the lab, did not take it away; "
                              f"`{down_command(LAB)}` takes away what it made")
    assert down(LAB, FakeKernel()).was_up


def test_a_lab_a_library_caller_s_up_or_down_left_halfway_names_its_program_not_a_netlab_command(monkeypatch):
    """An up run through netlab's API (a pytest worker's fixture: Lab.up in its process) killed halfway: `list`
    said "the `netlab up` that was making it (pid N)", N being that program, and never that the lab is half made.
    The lock of a library caller names its command line too (lockfile.name_holder), and the lines say it."""
    from netlab import lockfile

    monkeypatch.setattr(lockfile, "IN_PROGRAM", False)  # a Python program using netlab's API, not the netlab program
    with lab_lock.LabLock(LAB, "netlab up"):
        last, program = lab_lock.lab_lock_last(LAB)
        assert last == f"pid {os.getpid()} (netlab up)" and program and program.startswith("python"), (last, program)
        assert lab_lock.lab_lock_holder(LAB) == last  # its first line alone: "waiting for pid N (netlab up)"
    library = DEAD + "\nprogram: python -m pytest -n 2 tests"
    folder(holder=library)  # killed before its first state write
    assert interrupted_up(LAB) == (
        f"lab {LAB}: the up that made its folder through netlab's API, in pid 4194304 (python -m pytest -n 2 tests), "
        f"ended before it saved the lab's state, so nothing of the lab was made (the folder holds only its lock); "
        f"`{down_command(LAB)}` removes it")
    state = LabState(lab=LAB, netns={f"{LAB}-n1": "intent"}, phase="creating")
    state.save()
    with python_words(False):  # `netlab list`'s words
        assert stalled(state) == (
            f"lab {LAB}: the up that was making it through netlab's API, in pid 4194304 (python -m pytest -n 2 "
            f"tests), ended before it finished (killed): the lab is half made; `{netlab_command(f'up --lab {LAB}')}` "
            f"finishes it, or `{down_command(LAB)}` takes away what it made")
        state.phase = "deleting"
        state.save()
        folder(holder=library.replace("netlab up", "netlab down"))
        assert stalled(state) == (
            f"lab {LAB}: the down that was taking it down through netlab's API, in pid 4194304 (python -m pytest "
            f"-n 2 tests), ended before it finished (killed); `{down_command(LAB)}` finishes it")
    assert down(LAB, FakeKernel()).was_up


def test_list_names_both_ways_out_of_a_lab_an_up_killed_halfway_left():
    """`list` named only `down`, where `status` says `up --lab L` finishes the up too (its state names all the up was
    making: status_text._cut_short); in Python, the calls (netlab.labs())."""
    state = LabState(lab=LAB, netns={f"{LAB}-n1": "intent"}, phase="creating")
    state.save()
    folder(holder=DEAD)
    rows = [row for row in labs() if row.lab == LAB]
    assert rows[0].error is not None and rows[0].error.endswith(
        f"; `Lab({LAB!r}).repair()` finishes it, or `Lab({LAB!r}).down()` takes away what it made"), rows
    with python_words(False):
        assert [row.error for row in labs() if row.lab == LAB] == [stalled(state)]
        assert str(stalled(state)).endswith(f"; `{netlab_command(f'up --lab {LAB}')}` finishes it, or "
                                            f"`{down_command(LAB)}` takes away what it made")
