"""`netlab validate -t ''` said ": no such file; check the path", no file name before the colon (QA rb61 9): an
empty path is said to be one, in one line, exit 2, by every command taking -t."""

from __future__ import annotations

import pytest
from cli_inprocess import run_cli


@pytest.mark.parametrize("command", ["validate", "plan", "graph", "up"])
def test_an_empty_topology_path_is_said_to_be_empty(command):
    res = run_cli(command, "-t", "")
    assert (res.returncode, res.stdout) == (2, ""), res.stdout + res.stderr
    assert res.stderr == "netlab: -t/--topology: the topology file's path is empty; give a topology file\n"
