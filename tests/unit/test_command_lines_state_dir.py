"""Every line that tells a user a netlab command to run names the state folder the lab is in (no root).

sudo drops the environment: with NETLAB_STATE_DIR set, `sudo netlab down --lab L --force` (a lost state's way
out), `sudo netlab status --lab L` and `sudo netlab logs ...` acted on /run/netlab's labs, not the user's. One
function says them all now (errors.netlab_command), as down_command said the take-down line; with no folder
chosen, every line is as it was."""

from __future__ import annotations

from netlab import errors
from netlab.realize import lab_name, state_errors

FOLDER = "/tmp/my st"
QUOTED = "sudo NETLAB_STATE_DIR='/tmp/my st' netlab"


def test_the_command_names_a_chosen_state_folder_after_sudo_and_nothing_without_one(monkeypatch):
    monkeypatch.setenv("NETLAB_STATE_DIR", FOLDER)
    assert errors.netlab_command("up --lab L") == f"{QUOTED} up --lab L"
    assert errors.netlab_command("status", "--lab", "L") == f"{QUOTED} status --lab L"
    assert errors.down_command("L") == errors.netlab_command("down --lab L")  # down's line is one of them
    monkeypatch.delenv("NETLAB_STATE_DIR")
    assert errors.netlab_command("up --lab L") == "sudo netlab up --lab L"
    assert errors.down_command("L") == "sudo netlab down --lab L"


def test_the_force_down_hint_names_the_state_folder(monkeypatch):
    monkeypatch.setenv("NETLAB_STATE_DIR", FOLDER)
    assert f"`{QUOTED} down --lab q1 --force`" in state_errors.force_down_hint("q1")
    assert f"`{QUOTED} down --lab q1 --force`" in str(state_errors.PodFilesLeft("q1", "/x/state.json", ["q1-a"]))
    assert "Lab('q1').down(force=True)" in state_errors.force_down_hint("q1", api=True)
    monkeypatch.delenv("NETLAB_STATE_DIR")
    assert state_errors.force_down_hint("q1").startswith("`sudo netlab down --lab q1 --force` (it deletes")


def test_the_status_way_and_the_placeholder_lines_name_the_state_folder(monkeypatch):
    monkeypatch.setenv("NETLAB_STATE_DIR", FOLDER)
    assert errors.status_way("q3", api=False) == f"{QUOTED} status --lab q3"
    assert errors.status_way(None, api=False) == f"{QUOTED} status"
    assert errors.logs_way("q3", "p", "c", api=False) == f"{QUOTED} logs --lab q3 p -c c"
    assert f"`{QUOTED} down --lab NAME`" in str(lab_name.all_gone(["a", "b"]))
    monkeypatch.delenv("NETLAB_STATE_DIR")
    assert errors.status_way("q3", api=False) == "sudo netlab status --lab q3"
    assert "`sudo netlab down --lab NAME`" in str(lab_name.all_gone(["a", "b"]))
