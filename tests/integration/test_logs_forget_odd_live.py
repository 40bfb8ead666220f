"""Clean-up of a container's logs removes only the files netlab wrote, on a real lab (root).

A container whose command changes starts as a new pod's container, with no run before it: its two logs go, by
their names. A FIFO or a symlink someone put at its previous log's name was unlinked with them, a file netlab
never made. Now it stays, untouched (a symlink's target too), `up` says so in one warning line and exits 0, the
new command runs with a log of its own; taking the pod out of the lab leaves it as well, and says it again.
"""

from __future__ import annotations

import os
import stat

import pytest

from helpers import netlab, wait_for
from netlab.workload.containers import log_path, previous_log_path

pytestmark = pytest.mark.root


def _reads(path: str, text: str) -> bool:
    if not os.path.exists(path):
        return False
    with open(path) as f:
        return f.read() == text


def _topology(lab: str, word: str, with_b: bool = True) -> str:
    b = f"  - {{name: b, node: n1, containers: [{{name: main, command: [sh, -c, 'echo {word}; exec sleep 600']}}]}}\n"
    return f"name: {lab}\nnodes: [{{name: n1}}]\npods:\n  - {{name: a, node: n1}}\n" + (b if with_b else "")


@pytest.mark.parametrize("kind", ["a FIFO", "a symlink"])
def test_what_is_not_a_file_at_the_previous_logs_name_stays_when_the_command_changes(labs, tmp_path, kind):
    lab = labs.name("bt")
    path, _ = labs.up(_topology(lab, "first"))
    log, previous = log_path(lab, "b", "main"), previous_log_path(lab, "b", "main")
    assert wait_for(lambda: _reads(log, "first\n"), timeout=10)
    target = tmp_path / "theirs.txt"
    target.write_text("not netlab's\n")
    if kind == "a FIFO":
        os.mkfifo(previous)
    else:
        os.symlink(target, previous)
    is_kind = stat.S_ISFIFO if kind == "a FIFO" else stat.S_ISLNK
    line = (f"netlab: warning: pod b container main: its previous log {previous} is {kind}, not a file: "
            "netlab leaves it as it is")

    _, up = labs.up(_topology(lab, "second"))  # a changed command: a new pod's container, no run before it
    assert os.path.lexists(previous) and is_kind(os.lstat(previous).st_mode), "unlinked"
    assert target.read_text() == "not netlab's\n"
    assert up.returncode == 0 and line in up.stderr.splitlines(), (up.stdout, up.stderr)
    assert wait_for(lambda: _reads(log, "second\n"), timeout=10)
    assert netlab("logs", "--lab", lab, "b").stdout == "second\n"

    _, up = labs.up(_topology(lab, "second", with_b=False))  # the pod leaves the lab: its log goes, not this
    assert up.returncode == 0, (up.stdout, up.stderr)
    assert f"netlab: warning: log {previous} is {kind}, not a file: netlab leaves it as it is" in up.stderr, up.stderr
    assert not os.path.lexists(log) and is_kind(os.lstat(previous).st_mode)
    assert target.read_text() == "not netlab's\n"
