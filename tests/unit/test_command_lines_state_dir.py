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


def test_the_repair_up_line_names_the_state_folder(monkeypatch):
    """status's, trace's, break's ... repair line (realize.state.repair_up / up_command, `sudo netlab up --lab L` or
    `sudo netlab up -t FILE`) said no folder: typed as printed, it made or repaired /run/netlab's lab of that name."""
    from netlab.realize import state

    monkeypatch.setenv("NETLAB_STATE_DIR", FOLDER)
    st = state.LabState(lab="q2")
    assert state.repair_up(st) == f"{QUOTED} up --lab q2"
    assert state.repair_command("q2") == f"{QUOTED} up --lab q2"  # no state saved: the lab's name
    assert state.up_command("/t/a.yaml") == f"{QUOTED} up -t /t/a.yaml"
    assert state.up_command("/t/my lab.yaml", reconfigure=True) == f"{QUOTED} up -t '/t/my lab.yaml' --reconfigure"
    assert errors.repair_way("q2", api=False) == f"{QUOTED} up --lab q2"
    assert errors.from_file_way(api=False) == f"{QUOTED} up -t FILE"
    assert f"`{QUOTED} up --lab q2`" in str(state_errors.StateGone("q2", "/x/state.json"))
    # a reconfigure line still reads back as the Python call that does it, the folder's quotes and all
    assert errors.repair_way("q2", state.up_command("/t/my lab.yaml", reconfigure=True), api=True) == \
        errors.python_reconfigure("/t/my lab.yaml")
    monkeypatch.delenv("NETLAB_STATE_DIR")
    assert state.repair_up(st) == "sudo netlab up --lab q2"
    assert state.up_command(None) == "sudo netlab up"
    assert state.up_command("/t/a.yaml", reconfigure=True) == "sudo netlab up -t /t/a.yaml --reconfigure"
    assert errors.from_file_way(api=False) == "sudo netlab up -t FILE"


def test_the_iptables_backend_move_line_names_the_state_folder(monkeypatch):
    """A lab to move to another iptables backend: `sudo netlab up [-t FILE] --reconfigure` (api.running.move_way),
    or the Python that runs Lab.up(FILE, name=L, reconfigure=True) where no command names a file's lab; sudo
    drops the environment from that one as well."""
    from netlab.api import running
    from netlab.realize import state

    monkeypatch.setenv("NETLAB_STATE_DIR", FOLDER)
    assert running.move_way(state.LabState(lab="q4"), False) == f"{QUOTED} up --reconfigure"
    # a file that is gone: its up fails, `up --lab L --reconfigure` moves the lab (as status names its repair)
    assert running.move_way(state.LabState(lab="q4", source="/t/q4 lab.yaml"), False) == \
        f"{QUOTED} up --lab q4 --reconfigure"
    python = errors.python_command("Lab.up('/t/a.yaml', name='q4', reconfigure=True)")
    assert python.startswith("sudo NETLAB_STATE_DIR='/tmp/my st' /"), python
    assert errors.repair_way("q4", python, api=True) == "Lab.up('/t/a.yaml', name='q4', reconfigure=True)"
    monkeypatch.delenv("NETLAB_STATE_DIR")
    assert running.move_way(state.LabState(lab="q4"), False) == "sudo netlab up --reconfigure"
    assert errors.python_command("Lab('q4').repair()").startswith("sudo /")


def test_a_netlab_command_is_told_apart_with_or_without_the_folder(monkeypatch):
    """trace's `(or: sudo netlab up ..., which repairs the lab)` goes with a fix that is no netlab command
    (faults.up_repairs): it tested the line's start, `sudo netlab `, which a line with the folder does not have, so
    an impairment's own fix (`sudo NETLAB_STATE_DIR=... netlab impair ... --clear`) was said to be repaired by `up`
    too (which puts the impairment back)."""
    from netlab.trace import faults

    monkeypatch.setenv("NETLAB_STATE_DIR", FOLDER)
    clear = errors.netlab_command("impair --lab q5 a:eth0 --clear")
    assert not faults.up_repairs(clear)
    assert faults.up_repairs("ip -n q5-n1 link set q5-a up")
    assert errors.netlab_words(clear) == ["impair", "--lab", "q5", "a:eth0", "--clear"]
    assert errors.netlab_words("sudo sysctl -w net.ipv4.ip_forward=1") is None
    assert errors.netlab_words("sudo 'unclosed") is None
    monkeypatch.delenv("NETLAB_STATE_DIR")
    assert errors.netlab_words("sudo netlab up --lab q5") == ["up", "--lab", "q5"]
    assert not faults.up_repairs("sudo netlab impair --lab q5 a:eth0 --clear")


def test_the_pytest_plugins_kept_lab_lines_quote_the_state_folder(monkeypatch):
    """--netlab-keep's line added the folder unquoted: `sudo NETLAB_STATE_DIR=/tmp/my st netlab status ...` runs
    a program named `st` under /tmp/my as root."""
    import shlex

    from netlab import pytest_artifacts

    monkeypatch.setenv("NETLAB_STATE_DIR", FOLDER)
    line = pytest_artifacts.keep_line("q6")
    assert line == (f"lab q6 stays up: {QUOTED} status --lab q6; {QUOTED} exec --lab q6 NAME; take it down with: "
                    f"{QUOTED} down --lab q6")
    said = line.removeprefix("lab q6 stays up: ").split("; ")[0]
    assert shlex.split(said)[:3] == ["sudo", f"NETLAB_STATE_DIR={FOLDER}", "netlab"]
    monkeypatch.delenv("NETLAB_STATE_DIR")
    assert pytest_artifacts.keep_line("q6") == ("lab q6 stays up: sudo netlab status --lab q6; sudo netlab exec "
                                                "--lab q6 NAME; take it down with: sudo netlab down --lab q6")


def test_the_other_lines_naming_a_command_name_the_state_folder(monkeypatch):
    """The lines of trace, capture, quiz, nft and the trace's lab map that name a command to type named it as
    `sudo netlab ...`, which sudo ran on /run/netlab's labs (a probe's, break's, inspect's, exec's lines alike go
    through errors.netlab_command: their own tests compute the line with it)."""
    from netlab.cli import breaks, trace as cli_trace
    from netlab.kernel import nft
    from netlab.trace.labmap import LabMap

    monkeypatch.setenv("NETLAB_STATE_DIR", FOLDER)
    assert cli_trace.no_frames_line("q7-a", "eth0", "", 1.0, "q7").endswith(
        f"send something, e.g. `{QUOTED} trace --lab q7 SRC DST`")
    assert str(nft.unreadable(nft.NftError("nft: no"))).endswith(f"`{QUOTED} doctor` tries it")
    assert LabMap(lab="q7", mode="flannel").repair == f"{QUOTED} up --lab q7"
    assert breaks._answer("q7", "--reveal") == f"{QUOTED} quiz answer --lab q7 --reveal"
    monkeypatch.delenv("NETLAB_STATE_DIR")
    assert breaks._answer("q7", "SCENARIO") == "sudo netlab quiz answer --lab q7 SCENARIO"
    assert LabMap(lab="q7", mode="flannel").repair == "sudo netlab up --lab q7"
