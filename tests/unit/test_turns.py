"""Probe runs take turns on a machine (probe/turns.py): one fills the shared neighbour table at a time.

Each test uses a lock file of its own in tmp_path, never the machine's, so a
probe elsewhere on the machine neither waits for these tests nor disturbs them.
A second ``open`` of the file in this process is a second open file
description: ``flock`` makes it wait as it would another process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from netlab.errors import EnvironmentNotReady
from netlab.probe import turns


def test_a_second_run_waits_for_the_first_and_gets_the_turn_when_it_ends(tmp_path, monkeypatch):
    monkeypatch.setattr(turns, "QUIET_FOR", 0.0)
    path = str(tmp_path / "lock")
    got: list[tuple[float, float]] = []  # (when b had the turn, how long it waited)

    def second():
        with turns.probing_turn("lab-b", path=path) as waited:
            got.append((time.monotonic(), waited))

    with turns.probing_turn("lab-a", path=path) as waited:
        assert waited < 0.5
        assert open(path).read() == f"pid {os.getpid()} (netlab probe of lab lab-a)\n"
        other = threading.Thread(target=second)
        other.start()
        time.sleep(0.3)
        assert got == []  # still waiting
        released = time.monotonic()
    other.join(timeout=10)
    assert len(got) == 1
    had, waited = got[0]
    assert had >= released and waited > 0
    assert open(path).read() == f"pid {os.getpid()} (netlab probe of lab lab-b)\n"


def test_the_wait_is_bounded_and_names_the_holder(tmp_path, capfd):
    path = str(tmp_path / "lock")
    with turns.probing_turn("lab-a", path=path):
        with pytest.raises(EnvironmentNotReady) as err:
            with turns.probing_turn("lab-b", wait=0.2, path=path):
                pass
    assert str(err.value).startswith(f"lab lab-b: pid {os.getpid()} (netlab probe of lab lab-a) has been probing "
                                     "for over 0 s; one probe runs at a time on a machine")
    assert capfd.readouterr().err == ""  # shorter than QUIET_FOR: not announced
    with turns.probing_turn("lab-b", wait=0.2, path=path) as waited:  # released: no wait at all
        assert waited < 0.1


def test_a_longer_wait_is_announced_once(tmp_path, capfd, caplog, monkeypatch):
    """By the netlab program on its standard error; in a library caller's program through logging (logger
    "netlab"), never on a standard error that is not netlab's."""
    from netlab import lockfile

    monkeypatch.setattr(turns, "QUIET_FOR", 0.05)
    path = str(tmp_path / "lock")
    said = (f"lab lab-b: waiting for pid {os.getpid()} (netlab probe of lab lab-a) to finish: one "
            "probe runs at a time on a machine (they share its neighbour table)")
    for program in (True, False):
        monkeypatch.setattr(lockfile, "PRINT_WAITS", program)
        caplog.clear()
        with turns.probing_turn("lab-a", path=path):
            with pytest.raises(EnvironmentNotReady):
                with turns.probing_turn("lab-b", wait=0.3, path=path):
                    pass
        err = capfd.readouterr().err
        logged = [(r.name, r.levelname, r.getMessage()) for r in caplog.records]
        if program:
            assert err == f"netlab: {said}\n" and logged == []
        else:
            assert err == "" and logged == [("netlab", "WARNING", said)]


def test_a_killed_holder_gives_the_turn_back(tmp_path):
    path = str(tmp_path / "lock")
    code = ("import sys, time; from netlab.probe import turns\n"
            "with turns.probing_turn('lab-a', path=sys.argv[1]):\n"
            "    print('held', flush=True); time.sleep(60)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, path], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(EnvironmentNotReady):
            with turns.probing_turn("lab-b", wait=0.1, path=path):
                pass
    finally:
        holder.kill()
        holder.wait(timeout=10)
    with turns.probing_turn("lab-b", wait=5, path=path) as waited:
        assert waited < 1


def test_no_lock_file_where_none_can_be_made_and_the_run_goes_on(tmp_path):
    with turns.probing_turn("lab-a", path=str(tmp_path / "missing-dir" / "lock")) as waited:
        assert waited == 0.0
    assert not (tmp_path / "missing-dir").exists()


def test_a_symlink_or_a_stranger_file_is_refused(tmp_path):
    target = tmp_path / "target"
    target.write_text("keep\n")
    link = tmp_path / "lock"
    link.symlink_to(target)
    with pytest.raises(EnvironmentNotReady, match="is a symlink; refusing to use it"):
        with turns.probing_turn("lab-a", path=str(link)):
            pass
    assert target.read_text() == "keep\n"
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(EnvironmentNotReady, match="cannot use .*/folder: Is a directory"):
        with turns.probing_turn("lab-a", path=str(folder)):
            pass
    if os.geteuid() == 0:  # only root can give a file away
        stranger = tmp_path / "stranger"
        stranger.write_text("")
        os.chown(stranger, 65534, 65534)
        with pytest.raises(EnvironmentNotReady, match=r"is not a regular file of ours \(uid 65534\)"):
            with turns.probing_turn("lab-a", path=str(stranger)):
                pass


def test_who_holds_the_turn_is_read_without_taking_it(tmp_path):
    """``holder`` (netlab doctor's line) names the run holding the turn, and nobody when it is free or
    there is no lock file; it never makes the file, and a run can take the turn right after it looked."""
    path = str(tmp_path / "lock")
    assert turns.holder(path) is None
    assert not os.path.exists(path)
    with turns.probing_turn("lab-a", path=path):
        assert turns.holder(path) == f"pid {os.getpid()} (netlab probe of lab lab-a)"
    assert turns.holder(path) is None  # the name stays in the file, the lock does not
    with turns.probing_turn("lab-b", wait=0.1, path=path):
        pass
    folder = tmp_path / "folder"
    folder.mkdir()
    assert turns.holder(str(folder)) is None
    link = tmp_path / "link"
    link.symlink_to(path)
    assert turns.holder(str(link)) is None


def test_the_tests_helper_drops_exactly_the_turn_wait_lines(tmp_path, capfd, monkeypatch):
    """tests/helpers.without_turn_waits, which the integration tests comparing a probe's stderr use: it drops the
    line the netlab program really prints for a wait (whoever holds the turn), and nothing else."""
    from helpers import is_turn_wait, without_turn_waits
    from netlab import lockfile

    monkeypatch.setattr(turns, "QUIET_FOR", 0.05)
    monkeypatch.setattr(lockfile, "PRINT_WAITS", True)
    path = str(tmp_path / "lock")
    waits = []
    for holder in (f"pid {os.getpid()} (netlab probe of lab lab-a)", f"pid {os.getpid()} (python3 -c x: y)", ""):
        with open(path, "w") as fh:  # "": no text, the kernel's holder (pid N (its command line))
            with turns.probing_turn("lab-a", path=path):
                fh.write(f"{holder}\n" if holder else "")
                fh.flush()
                os.ftruncate(fh.fileno(), fh.tell())
                with pytest.raises(EnvironmentNotReady):
                    with turns.probing_turn("lab-b2", wait=0.3, path=path):
                        pass
        waits.append(capfd.readouterr().err)
    assert [w.count("\n") for w in waits] == [1, 1, 1] and all(is_turn_wait(w) for w in waits), waits
    assert waits[2].startswith(f"netlab: lab lab-b2: waiting for pid {os.getpid()} ("), waits
    assert is_turn_wait(waits[0].replace(f"pid {os.getpid()} (netlab probe of lab lab-a)", lockfile.UNKNOWN))
    said = "netlab: namespace l-a was deleted while lab l is up\n"
    assert without_turn_waits(waits[0] + said + waits[1] + "netlab: interrupted\n") == said + "netlab: interrupted\n"
    assert without_turn_waits(said) == said and without_turn_waits("") == ""
    line = waits[0].rstrip("\n")
    for near in (f"netlab: note: {line}", line + " (or not)", line.removeprefix("netlab: "),
                 f"netlab: waiting for pid {os.getpid()} (netlab up) to release lab lab-b2",
                 f"netlab: lab lab-b2: pid {os.getpid()} (netlab probe of lab lab-a) has been probing for over 300 s; "
                 "one probe runs at a time on a machine (they share its neighbour table); try again when it finishes"):
        assert not is_turn_wait(near) and without_turn_waits(near + "\n") == near + "\n", near
