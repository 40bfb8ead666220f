"""Something that is not a file where a container's previous log goes, on a real lab (root).

A container that exited is started again by `up`, its current log moved to the previous log's name. With
someone's directory there the move failed and the new run appended to the run before's log (`logs` mixed two
runs, `logs --previous` had none); a FIFO or a symlink there was replaced, removed. Now what stands there stays,
untouched, the current log stays as the run before left it, and that container's start fails in one line
(exit 1); once it is moved away, `up` starts the container, its log moves on and the new run writes a new one.
"""

from __future__ import annotations

import json
import os
import signal

import pytest

from helpers import netlab, state_path, wait_for
from netlab import Lab
from netlab.errors import LabBusy
from netlab.workload.containers import log_path, previous_log_path

pytestmark = pytest.mark.root

TICKS = "echo run-$$; while :; do sleep 0.2; done"


def _pid(lab: str) -> int:
    with open(state_path(lab, "state.json")) as f:
        return int(json.load(f)["extra"]["workload"]["pods"]["b"]["containers"]["main"]["pid"])


def _drift(lab: str) -> str:
    """`netlab status --lab LAB`'s drift lines, read in this process (another command holding the lab: none)."""
    try:
        return "\n".join(Lab(lab).status().drift)
    except LabBusy:
        return ""


def _exited(lab: str) -> None:
    os.kill(_pid(lab), signal.SIGKILL)
    assert wait_for(lambda: "pod b container main exited" in _drift(lab), timeout=10)


def _restarted(path: str) -> bool:
    """`up -t FILE`, in this process (the failed start's exit and line are the CLI's, below), said it restarted b."""
    done = Lab.up(path).last_up
    return done is not None and any(line.startswith("restarted container b/main") for line in done.fixed)


@pytest.mark.parametrize("kind", ["a directory", "a FIFO", "a symlink"])
def test_what_is_not_a_file_where_the_previous_log_goes_is_left_and_the_run_not_appended(labs, tmp_path, kind):
    lab = labs.name("pl")
    path = labs.up_here(f"name: {lab}\nnodes: [{{name: n1}}]\npods:\n  - {{name: b, node: n1, containers: "
                      f"[{{name: main, command: [sh, -c, '{TICKS}']}}]}}\n")
    log, previous = log_path(lab, "b", "main"), previous_log_path(lab, "b", "main")
    assert wait_for(lambda: "run-" in open(log).read(), timeout=10)
    _exited(lab)
    assert _restarted(path)  # the first run's log: the previous
    assert wait_for(lambda: "run-" in open(log).read(), timeout=10)
    os.unlink(previous)
    if kind == "a directory":
        os.mkdir(previous)
    elif kind == "a FIFO":
        os.mkfifo(previous)
    else:
        os.symlink(tmp_path / "elsewhere", previous)
    _exited(lab)
    second = open(log).read()
    up = netlab("up", "-t", path, check=False)
    assert up.returncode == 1 and up.stderr == (
        f"netlab: pod b container main: could not start: its previous log {previous} is {kind}, not a file: netlab "
        "leaves it as it is; move it away, then run up again\n"), (up.returncode, up.stdout, up.stderr)
    assert open(log).read() == second and second.count("run-") == 1  # not appended to: no new run
    assert {"a directory": os.path.isdir, "a FIFO": lambda p: not os.path.isfile(p) and os.path.exists(p),
            "a symlink": os.path.islink}[kind](previous)
    assert not (tmp_path / "elsewhere").exists()
    os.rename(previous, tmp_path / "moved")
    assert _restarted(path)
    assert open(previous).read() == second  # the second run's log, moved on whole
    assert wait_for(lambda: "run-" in open(log).read(), timeout=10) and open(log).read() != second
    assert netlab("logs", "--lab", lab, "b", "--previous").stdout == second
