"""The CNI call log (<lab>/cni/calls.jsonl) is best effort: a full disk must not stop a plugin call, and so neither
a rollback's nor a down's DEL (docs/reliability.md); the log that could not be written is said once, in one line.
And an unnamed ENOSPC is "cannot write the output" only when the output could have refused it (QA q50 1)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

from netlab.cni import invoke
from netlab.cni.invoke import Call, CallLog

def _call(pod: str = "a") -> Call:
    return Call(pod=pod, network="cbr0", plugin="bridge", command="DEL", env={}, stdin={}, runs_in="n1")


def test_a_call_log_the_disk_cannot_take_is_said_once_and_the_calls_go_on(tmp_path, monkeypatch, capsys):
    path = str(tmp_path / "calls.jsonl")
    log = CallLog(path)
    log.record(_call())  # room: written
    assert len(open(path).read().splitlines()) == 1

    def full(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(invoke.os, "write", full)
    log.record(_call("a"))  # no exception: the DEL it records goes on
    log.record(_call("b"))
    err = capsys.readouterr().err
    assert err == (f"netlab: warning: cannot write the CNI call log {path}: No space left on device; the plugin "
                   "calls go on without it (`netlab cni log` misses them)\n")
    assert len(open(path).read().splitlines()) == 1


_CHILD = """
import errno, os, click
from netlab.cli import boundary
def full():
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # a write of netlab's own, no file named
boundary.cli = click.Command("x", callback=full)
boundary.main([])
"""


def test_an_unnamed_enospc_is_the_outputs_only_when_the_output_can_be_full(tmp_path):
    env = {**os.environ, "NETLAB_STATE_DIR": str(tmp_path / "state")}
    piped = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, timeout=60, env=env)
    assert (piped.returncode, piped.stderr) == (
        3, "netlab: a write to a file failed: No space left on device (not the output's: it goes to a pipe or a "
           f"terminal); free space in {tmp_path}/state (or point NETLAB_STATE_DIR at another directory)\n")
    with open("/dev/full", "w") as full:  # a device that refuses every write: the output's, as before
        to_full = subprocess.run([sys.executable, "-c", _CHILD], stdout=full, stderr=subprocess.PIPE, text=True,
                                 timeout=60, env=env)
    assert (to_full.returncode, to_full.stderr) == (
        3, "netlab: cannot write the output: No space left on device (it is cut short)\n")
