"""What the command line shows around a command's work: the exit status when a pipe's reader goes away, the
table headers, $NETLAB_LAB named in its errors, the help's exit codes, the shape of -o json."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

import pytest

from netlab.cli.style import table

BAD = "name: rgbad\nnodes:\n  - name: 12\n  - name: yes\npods:\n  - {name: a, node: n9}\n"
NOTED = ("name: rgnote\nnodes: [{name: n1}]\npods: [{name: a, node: n1}]\n"
         "services: [{name: s, selector: {app: nope}, ports: [{port: 80}]}]\n")


def _gone_reader(argv: list[str], both: bool) -> subprocess.CompletedProcess:
    """Run netlab with standard error (and output too: `2>&1 | head`) into a pipe whose reader is gone."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone: the first write fails with EPIPE
    streams = {"stdout": write_end if both else subprocess.PIPE, "stderr": write_end}
    try:
        return subprocess.run([sys.executable, "-m", "netlab", *argv], text=True, timeout=60, **streams)
    finally:
        os.close(write_end)


@pytest.mark.parametrize("text, both", [(BAD, False), (BAD, True), (NOTED, False)],
                         ids=["error", "error-2>&1", "note"])
def test_a_reader_of_the_errors_that_goes_away_ends_the_program_as_sigpipe_would(tmp_path, text, both):
    """`netlab validate -t bad.yaml 2>&1 | head -1`: the errors' reader went away before netlab said them all.
    141, as when the output's reader goes away (README, exit codes), not 1 (Python's for the traceback it could not
    print, or click's own for EPIPE); a note on stderr after good output is the same."""
    topo = tmp_path / "t.yaml"
    topo.write_text(text)
    proc = _gone_reader(["validate", "-t", str(topo)], both)
    assert proc.returncode == 141, proc
    if text is NOTED:
        assert proc.stdout.startswith(f"{topo}: ok")
    # with a reader that stays, the error's own code
    whole = subprocess.run([sys.executable, "-m", "netlab", "validate", "-t", str(topo)],
                           capture_output=True, text=True, timeout=60)
    assert whole.returncode == (0 if text is NOTED else 2), whole


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def terminal(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setenv("COLUMNS", "80")


def test_a_terminal_table_has_the_headers_a_pipe_has(terminal):
    """`netlab list` / `get pods` on a terminal: NAME READY STATUS as kubectl and the pipe (README) write them."""
    boxed = re.sub(r"\x1b\[[0-9;]*m", "", table(["lab", "phase", "nodes"], [["demo", "running", 2]], stream=Tty()))
    piped = table(["lab", "phase", "nodes"], [["demo", "running", 2]], stream=io.StringIO())
    assert "┃" in boxed or "│" in boxed  # the box: it fits
    assert re.search(r"\bLAB\b.*\bPHASE\b.*\bNODES\b", boxed)
    assert not re.search(r"\b(lab|phase|nodes)\b", boxed)
    assert piped.splitlines()[0].split() == ["LAB", "PHASE", "NODES"]


def test_a_table_wider_than_the_terminal_cuts_no_cell(terminal):
    """An 80-column terminal and a long topology path: the path whole on one line (plain columns, which the
    terminal wraps), not cut with "…" nor folded across lines of a box."""
    path = "/home/someone/projects/kubernetes-network-labs/topologies/services-with-a-long-name.yaml"
    out = table(["lab", "phase", "nodes", "pods", "namespaces", "topology"],
                [["rg1a2b3c", "running", 2, 6, 9, path]], stream=Tty())
    assert "…" not in out and path in out.splitlines()[1], out
    assert out.splitlines()[0].split() == ["LAB", "PHASE", "NODES", "PODS", "NAMESPACES", "TOPOLOGY"]


# Each command that takes --lab, with the arguments it needs to reach the choice of its lab.
LAB_COMMANDS = {
    ("policy", "table"): [], ("impair",): ["n1:eth0", "--clear"], ("trace",): ["a", "b"],
    ("capture",): ["n1:eth0"], ("inspect",): ["n1"], ("probe",): [], ("exec",): ["a", "--", "true"],
    ("logs",): ["a"], ("get",): ["pods"], ("break",): ["pod-mtu-too-big"], ("quiz",): [],
    ("quiz", "answer"): ["pod-mtu-too-big"], ("up",): [], ("down",): [], ("status",): [], ("cni", "log"): [],
    ("graph",): [],
}


def _lab_commands():
    import importlib

    import click

    from netlab.cli.base import COMMANDS, cli

    for module in set(COMMANDS.values()):
        importlib.import_module(module)

    def walk(group, path=()):
        for name, command in group.commands.items():
            yield (*path, name), command
            if isinstance(command, click.Group):
                yield from walk(command, (*path, name))

    return {path for path, command in walk(cli) if any(p.name == "lab_name" for p in command.params)}


def test_every_command_with_lab_is_checked_here():
    assert _lab_commands() == set(LAB_COMMANDS)


@pytest.mark.parametrize("words", sorted(LAB_COMMANDS), ids=" ".join)
def test_a_bad_lab_name_from_the_environment_is_said_to_come_from_it(words, monkeypatch, state_root):
    """`NETLAB_LAB=../x netlab status`: the error names $NETLAB_LAB, which the user set, not a --lab they did
    not type; a name from it that is no lab up says where it came from too."""
    from cli_inprocess import run_cli

    monkeypatch.setattr(os, "geteuid", lambda: 0)  # past each command's root check: the name is refused first
    monkeypatch.setenv("NETLAB_LAB", "../x")
    got = run_cli(*words, *LAB_COMMANDS[words])
    assert got.returncode == 2 and got.stderr.startswith("netlab: $NETLAB_LAB '../x' is not a DNS label"), got
    monkeypatch.setenv("NETLAB_LAB", "rgnone1")
    got = run_cli(*words, *LAB_COMMANDS[words])
    if words not in (("down",), ("quiz", "answer")):  # nothing to do; no open quiz: each its own line
        assert got.returncode == 2 and "lab 'rgnone1' (named by $NETLAB_LAB) is not up" in got.stderr, got
    monkeypatch.setenv("NETLAB_LAB", "../x")  # typed: --lab is to blame
    got = run_cli(*words, *LAB_COMMANDS[words][:1], "--lab", "../y", *LAB_COMMANDS[words][1:])
    assert got.returncode == 2 and "--lab '../y' is not a DNS label" in got.stderr, got


@pytest.mark.parametrize("warned, said", [(1, "1 warning,"), (2, "2 warnings,"), (0, "0 warnings,")])
def test_doctor_counts_its_warnings_in_words(monkeypatch, warned, said):
    from cli_inprocess import run_cli

    from netlab import doctor
    from netlab.doctor_lines import OK, WARN, Check, TITLES

    name = next(iter(TITLES))
    checks = [Check(name, OK, "fine")] + [Check(name, WARN, "not here", fix="install it")] * warned
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(doctor, "report", lambda lab, for_this_lab: checks)
    got = run_cli("doctor")
    assert got.returncode == 0 and got.stdout.splitlines()[-1].startswith(f"1 ok, {said} 0 failed"), got


def test_the_help_lists_every_exit_code_the_readme_lists():
    from click.testing import CliRunner

    from netlab.cli.base import cli

    out = " ".join(CliRunner().invoke(cli, ["--help"]).output.split())
    for code in ("0 ok", "1 checks failed", "2 invalid input", "3 environment not ready", "4 apply failed",
                 "130 interrupted by Ctrl-C", "143 by SIGTERM", "129 by SIGHUP", "141 the reader"):
        assert code in out, code


@pytest.mark.parametrize("typed, said", [
    (["stauts"], "No such command 'stauts'. Did you mean 'status'?"),
    (["ls"], "No such command 'ls'. (Did you mean one of: 'list', 'logs'?)"),
    (["policy", "tabel"], "No such command 'tabel'. Did you mean 'table'?"),
    (["xyzzy"], "No such command 'xyzzy'."),
])
def test_a_mistyped_command_gets_a_did_you_mean(typed, said):
    """As click says of a mistyped option: the commands are loaded lazily, and click's own suggestion looked
    only among those loaded (none in a new process: here, not this one's), so `netlab stauts` had none."""
    got = subprocess.run([sys.executable, "-m", "netlab", *typed], capture_output=True, text=True, timeout=60)
    assert got.returncode == 2 and got.stderr.splitlines()[-1] == f"Error: {said}", got


def test_a_group_without_its_command_is_a_usage_error_and_cni_alone_is_a_command():
    """click's convention for a group given no command: its help on stderr, exit 2 (`netlab`, `netlab policy`).
    `netlab cni` alone is no such group: it prints how a runtime calls a plugin (README), exit 0."""
    from cli_inprocess import run_cli

    for words in ([], ["policy"]):
        got = run_cli(*words)
        assert (got.returncode, got.stdout) == (2, "") and "Usage: netlab" in got.stderr, got
    got = run_cli("cni")
    assert got.returncode == 0 and got.stdout.startswith("How a container runtime calls a CNI plugin"), got


@pytest.mark.parametrize("text, lab, note", [
    ("name: rgv1\nnodes: [{name: n1}]\npods: [{name: a, node: n1}]\n", "rgv1", False),
    ("name: rgv2\nnodes: [{name: n1}, {name: n1}]\n", "rgv2", False),  # a cross-check's problem
    ("name: rgv3\nnodes: [{name: n1}]\npods: [{name: a, node: n1, ip: 10.300.0.1}]\n", "rgv3", True),  # waits
    ("name: ../x\nnodes: [{name: n1}]\n", None, True),
    ("name: rgv4\nname: rgv5\nnodes: [{name: n1}]\n", None, False),  # which one?
])
def test_validate_json_has_one_shape_valid_or_not(tmp_path, text, lab, note):
    """valid, lab, problems, notes and note always; `note` (README) the line when the cross-checks waited, also in
    notes, else null (QA q43 4: it was left out)."""
    import json

    from cli_inprocess import run_cli

    from netlab.model.load import UNCHECKED

    topo = tmp_path / "t.yaml"
    topo.write_text(text)
    got = json.loads(run_cli("validate", "-t", str(topo), "-o", "json").stdout)
    assert {"valid", "lab", "problems", "notes", "note"} <= set(got) and got["lab"] == lab, got
    assert isinstance(got["problems"], list) and isinstance(got["notes"], list)
    assert got["valid"] is (not got["problems"])
    assert (got["note"], got["notes"]) == ((UNCHECKED, [UNCHECKED]) if note else (None, [])), got
