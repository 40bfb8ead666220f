"""What a command run in a lab inherits of netlab's signal dispositions (root, a real lab): nothing ignored.

Python ignores SIGPIPE and SIGXFSZ from its start, and an ignored signal stays ignored across exec: `netlab exec
POD -- seq 1 100000000 | head -1` said "seq: write error: Broken pipe" and exited 1, where under `ip netns exec`
seq dies of SIGPIPE, quietly (141 in a shell); a container's SigIgn was 0x1000000 (SIGXFSZ), a real one's 0.
"""

from __future__ import annotations

import signal
import subprocess

import pytest

from helpers import NETLAB, lab_namespaces, netlab, unique_lab, write_topology

SLEEPER = {"name": "cjsig", "network": {"mode": "host-gw"}, "nodes": [{"name": "n1"}],
           "pods": [{"name": "a", "node": "n1"},
                    {"name": "b", "node": "n1", "containers": [{"name": "c", "command": ["sleep", "600"]}]}]}

pytestmark = [pytest.mark.root, pytest.mark.netlab(SLEEPER, scope="module")]


def _ignored(status: str) -> str:
    (line,) = [line for line in status.splitlines() if line.startswith("SigIgn:")]
    return line.split()[1]


def _ignoring_hup_and_quit() -> None:
    """netlab started as under `nohup` in a script's background job: SIGHUP and SIGQUIT ignored by its parent."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGQUIT, signal.SIG_IGN)


def test_the_command_exec_runs_ignores_no_signal(netlab_lab):
    proc = netlab("exec", "--lab", netlab_lab.name, "a", "--", "cat", "/proc/self/status")
    assert _ignored(proc.stdout) == "0000000000000000"
    nohup = subprocess.run([*NETLAB, "exec", "--lab", netlab_lab.name, "a", "--", "cat", "/proc/self/status"],
                           capture_output=True, text=True, preexec_fn=_ignoring_hup_and_quit, check=True)
    assert _ignored(nohup.stdout) == "0000000000000000"  # nor what netlab's own parent ignored, as a container
    shell = netlab("exec", "--lab", netlab_lab.name, "a", "--", "sh", "-c", "cat /proc/self/status")
    assert _ignored(shell.stdout) == "0000000000000000"  # nor the commands of the shell it runs


def test_a_command_whose_reader_went_away_dies_of_sigpipe_quietly(netlab_lab):
    """`netlab exec a -- seq 1 100000000 | head -1`: as under `ip netns exec`, seq ends on SIGPIPE, no word."""
    proc = subprocess.Popen([*NETLAB, "exec", "--lab", netlab_lab.name, "a", "--", "seq", "1", "100000000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"1\n"
        proc.stdout.close()  # the reader goes, as head does after its line
        err = proc.stderr.read()
        assert (proc.wait(timeout=60), err) == (-signal.SIGPIPE, b"")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    piped = subprocess.run(["bash", "-c", 'set -o pipefail; "$@" | head -1', "sh", *NETLAB, "exec", "--lab",
                            netlab_lab.name, "a", "--", "seq", "1", "100000000"],
                           capture_output=True, text=True, timeout=60)
    assert (piped.returncode, piped.stdout, piped.stderr) == (141, "1\n", "")


def test_a_container_ignores_no_signal(netlab_lab):
    pids = subprocess.run(["ip", "netns", "pids", f"{netlab_lab.name}-b"], capture_output=True, text=True,
                          check=True).stdout.split()
    statuses = [open(f"/proc/{pid}/status").read() for pid in pids]
    sleeps = [s for s in statuses if s.startswith("Name:\tsleep\n")]
    assert len(sleeps) == 1, statuses
    assert _ignored(sleeps[0]) == "0000000000000000"


def test_up_with_its_output_closed_makes_nothing(tmp_path):
    """`netlab up >&-`: one line, exit 3, and no lab; it made the lab and exited 0, its output lost."""
    name = unique_lab("cj")
    path = write_topology(tmp_path, f"name: {name}\nnetwork: {{mode: host-gw}}\nnodes: [{{name: n1}}]\n"
                                    "pods: [{name: a, node: n1}]\n")
    try:
        proc = subprocess.run(["sh", "-c", 'exec "$@" >&-', "sh", *NETLAB, "up", "-t", path],
                              stderr=subprocess.PIPE, text=True, timeout=120)
        assert (proc.returncode, proc.stderr) == (3, "netlab: cannot write the output: Bad file descriptor "
                                                     "(standard output is closed or read-only; nothing was done)\n")
        assert lab_namespaces(name) == []
    finally:
        netlab("down", "--lab", name, check=False)


def test_standard_error_closed_changes_no_exit_status(netlab_lab):
    """`netlab trace a nosuch 2>&-` exited 1 (the progress bar asked None whether it was a terminal), not the
    user error's 2 that every other command keeps; `netlab exec a -- true 2>&-` 1 (a flush of None), not 0."""
    def closed(*args: str) -> int:
        return subprocess.run(["sh", "-c", 'exec "$@" 2>&-', "sh", *NETLAB, *args], stdout=subprocess.DEVNULL,
                              timeout=120).returncode

    lab = ["--lab", netlab_lab.name]
    assert closed("trace", *lab, "a", "nosuch") == 2
    assert closed("trace", *lab, "a", "b", "--proto", "icmp") == 0
    assert closed("exec", *lab, "a", "--", "true") == 0
    assert closed("exec", *lab, "a", "--", "sh", "-c", "exit 7") == 7
