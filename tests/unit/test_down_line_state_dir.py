"""Every line that tells a user how to take a lab down names the state folder the lab is in (no root).

With NETLAB_STATE_DIR set, `netlab list` said "`netlab down --lab L` takes it down" of a lab whose pytest run
ended (no sudo, no folder) and "`sudo netlab down --lab L`" of a half-made one: sudo drops the environment, so
the line looked in /run/netlab and found no such lab. The pytest plugin's line said it right; all three are one
function now (errors.down_command)."""

from __future__ import annotations

from click.testing import CliRunner

from netlab import api, errors, pytest_owners
from netlab.api.results import LabInfo
from netlab.cli import cli
from netlab.realize import state_errors


def test_the_down_line_names_a_chosen_state_folder_after_sudo(monkeypatch):
    monkeypatch.setenv("NETLAB_STATE_DIR", "/tmp/my st")
    assert errors.down_command("L") == "sudo NETLAB_STATE_DIR='/tmp/my st' netlab down --lab L"
    assert errors.down_way("L", api=False) == errors.down_command("L")
    assert errors.down_way("L", api=True) == "Lab('L').down()"  # a Python program reads the variable itself
    monkeypatch.delenv("NETLAB_STATE_DIR")
    assert errors.down_command("L") == "sudo netlab down --lab L"


def test_lists_lines_of_a_half_made_lab_and_of_an_ended_pytests_lab_say_the_same_command(monkeypatch):
    from netlab.cli import lab as cli_lab
    from netlab.realize import interrupted

    monkeypatch.setenv("NETLAB_STATE_DIR", "/tmp/hu-st")
    monkeypatch.setattr(cli_lab, "require_root", lambda: None)
    rows = (LabInfo("q3", "up", 3, 1, 1, "/t/p.yaml", owner="pytest (pid 7)", owner_gone=True),)
    monkeypatch.setattr(api, "labs", lambda: rows)
    said = CliRunner().invoke(cli, ["list"]).stderr
    want = "`sudo NETLAB_STATE_DIR=/tmp/hu-st netlab down --lab q3` takes it down"
    assert want in said, said
    assert interrupted.down_way is errors.down_way and pytest_owners.down_command is errors.down_command
    assert "`sudo NETLAB_STATE_DIR=/tmp/hu-st netlab down --lab q3` forgets it" in \
        str(state_errors.StateGone("q3", "/tmp/hu-st/q3/state.json"))
