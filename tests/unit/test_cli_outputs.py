"""Output files and machine output (issue 9, section 5): clear errors, no tracebacks.

``graph -w`` and ``probe --junit`` into a folder that does not exist exit 2
with one line, before doing any work; ``validate -o json`` prints its
problems as JSON when the topology is invalid, not only when it is valid.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from cli_inprocess import run_cli


def netlab(*args: str, how: str = "in-process") -> subprocess.CompletedProcess:
    """The CLI through its entry point in this process (cli_inprocess.py), or as a separate process."""
    if how == "in-process":
        return run_cli(*args)
    return subprocess.run([sys.executable, "-m", "netlab", *args], capture_output=True, text=True, timeout=60)


def one_line_exit_2(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.parametrize("command,how", [
    (["graph", "-w", "{missing}/lab.mmd"], "in-process"),
    (["graph", "-o", "svg", "-w", "{missing}/lab.svg"], "in-process"),
    (["probe", "--lab", "ibnone", "--junit", "{missing}/probe.xml"], "in-process"),
    (["trace", "--lab", "ibnone", "a", "b", "--pcap", "{missing}/t.pcap"], "in-process"),
    (["capture", "--lab", "ibnone", "a:eth0", "-w", "{missing}/c.pcap"], "in-process"),
    (["probe", "--lab", "ibnone", "--junit", "{missing}/probe.xml"], "process"),
])
def test_writing_into_a_missing_folder_is_a_clear_exit_2(tmp_path, command, how):
    missing = tmp_path / "no" / "such"
    args = [a.format(missing=missing) for a in command]
    one_line_exit_2(netlab(*args, how=how), str(missing), "No such file or directory")
    assert not (tmp_path / "no").exists()


def test_writing_over_a_directory_is_a_clear_exit_2(tmp_path):
    proc = netlab("graph", "-w", str(tmp_path))  # click's own check: its usage lines, then the error
    assert proc.returncode == 2 and "is a directory" in proc.stderr and "Traceback" not in proc.stderr


def test_graph_writes_where_it_can(tmp_path):
    out = tmp_path / "lab.mmd"
    proc = netlab("graph", "-t", "topologies/default-2node.yaml", "-w", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "flowchart" in out.read_text()


def test_validate_json_prints_the_problems_on_failure(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: Bad\nnodes: [{name: a, ip: 1.2.3}]\n")
    proc = netlab("validate", "-t", str(path), "-o", "json")
    assert proc.returncode == 2
    data = json.loads(proc.stdout)
    assert data["valid"] is False
    problems = data["problems"]
    assert {(p["line"], p["field"]) for p in problems} == {(1, "name"), (2, "nodes[0].ip")}
    assert all(p["file"] == str(path) and p["message"] for p in problems)
    missing = netlab("validate", "-t", str(tmp_path / "nope.yaml"), "-o", "json")
    assert missing.returncode == 2
    assert json.loads(missing.stdout)["problems"][0]["line"] is None


def test_validate_json_on_success_is_unchanged():
    proc = netlab("validate", "-o", "json")
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["valid"] is True


@pytest.mark.parametrize("command", [["graph", "-t", "topologies/default-2node.yaml", "-w", "{path}"],
                                     ["graph", "-t", "topologies/default-2node.yaml", "-o", "svg", "-w", "{path}"]])
def test_an_output_file_on_a_full_disk_is_exit_3_as_every_other(command):
    """/dev/full refuses every write (ENOSPC), as a full disk does: the machine is not ready (exit 3), as for a
    pcap (capture -w, trace --pcap) and standard output; graph -w, trace -w and --junit said 2, "invalid input"."""
    proc = netlab(*[a.format(path="/dev/full") for a in command])
    assert (proc.returncode, proc.stderr) == (3, "netlab: cannot write /dev/full: No space left on device "
                                                 "(it is cut short)\n")


def test_write_output_file_tells_a_full_disk_from_a_bad_path(tmp_path):
    """What --junit and trace -o svg -w write through: the disk's fault is 3, the path's 2."""
    from netlab.cli.output import write_output_file
    from netlab.errors import EnvironmentNotReady, UsageError

    with pytest.raises(EnvironmentNotReady) as full:
        write_output_file("/dev/full", b"<testsuites/>")
    assert full.value.exit_code == 3
    with pytest.raises(UsageError) as gone:
        write_output_file(str(tmp_path / "gone" / "probe.xml"), b"<testsuites/>")
    assert gone.value.exit_code == 2 and str(gone.value).endswith("gone/probe.xml: No such file or directory")
