"""`down --lab X` of a lab that is not up, on a state folder where its lab folder cannot be made (full, read-only):
QA q42 5. It exited 3, "cannot use DIR/X: No space left on device": down made the lab's folder for its lock just to
find no lab. Now, with no folder (so no state) and nothing else of the lab (no namespace tagged as its, no pods'
files), it is not up, nothing to do; a lost state is still said; --force with something to take keeps the error.
The real CLI on a full and a read-only tmpfs: tests/integration/test_state_safety.py."""

from __future__ import annotations

import errno
import os

import pytest
from cli_inprocess import run_cli

from netlab.cli import lab as cli_lab
from netlab.errors import EnvironmentNotReady
from netlab.kernel.fake import FakeKernel
from netlab.lab import teardown
from netlab.realize import lab_folder, state_dir
from netlab.realize.state_errors import StateLost


@pytest.fixture
def full(tmp_path, monkeypatch):
    """A state folder where no lab folder can be made (ENOSPC)."""
    monkeypatch.setattr(state_dir, "STATE_ROOT", str(tmp_path / "state"))
    os.makedirs(tmp_path / "state")

    def no_space(path, lab):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)

    monkeypatch.setattr(lab_folder, "make", no_space)
    return tmp_path / "state"


@pytest.mark.parametrize("force", [False, True])
def test_down_of_a_lab_that_is_not_up_on_a_full_state_folder_has_nothing_to_do(full, monkeypatch, force):
    result = teardown.down("fzq5", FakeKernel(), force=force)
    assert (result.was_up, result.removed_netns, result.skipped) == (False, [], [])
    assert os.listdir(full) == []
    monkeypatch.setattr(cli_lab, "require_root", lambda: None)
    got = run_cli("down", "--lab", "fzq5", *(("--force",) if force else ()))
    assert (got.returncode, got.stdout, got.stderr) == (0, "lab fzq5 is not up; nothing to do\n", ""), got


def test_a_lab_whose_state_is_lost_is_still_said_and_force_keeps_the_folders_error(full, monkeypatch):
    lost = StateLost("fzq5", state_dir.state_file("fzq5"), ["fzq5-a"], [])
    monkeypatch.setattr(teardown, "lost_state", lambda lab, pod_files=False: lost)
    with pytest.raises(StateLost) as info:  # its namespaces run on: `down --force` takes them
        teardown.down("fzq5", FakeKernel())
    assert info.value is lost
    with pytest.raises(EnvironmentNotReady) as info:  # it would take them away: it needs the lab's lock
        teardown.down("fzq5", FakeKernel(), force=True)
    assert str(info.value).startswith(f"cannot use {full}/fzq5: No space left on device")
