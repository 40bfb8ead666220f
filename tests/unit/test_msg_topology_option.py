"""-t FILE is one option for every command: a directory (or any path that is no topology file) gets
netlab's own one line and exit 2 from each, never click's usage error."""

from __future__ import annotations

import os

import click
import pytest
from cli_inprocess import run_cli

from netlab.cli import cli
from netlab.cli.options import TOPOLOGY_FILE


def commands(group: click.Group, ctx: click.Context, prefix: tuple[str, ...] = ()):
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            yield from commands(command, ctx, (*prefix, name))
        elif command is not None:
            yield (*prefix, name), command


def test_every_t_option_is_declared_alike():
    with click.Context(cli) as ctx:
        found = {path: p for path, command in commands(cli, ctx) for p in command.params if "-t" in p.opts}
    assert {"validate", "plan", "up", "doctor", "graph", "status", "down", "probe"} <= {p[0] for p in found}
    for path, param in found.items():
        assert param.type is TOPOLOGY_FILE and param.metavar == "FILE", path


@pytest.mark.parametrize("args", [
    ["validate"], ["plan"], ["up"], ["doctor"], ["graph"], ["status"], ["probe"], ["down"], ["policy", "table"],
    ["inspect", "node-1"], ["get", "pods"], ["trace", "a", "b"], ["cni", "log"],
])
def test_a_directory_is_one_netlab_line_and_exit_2(tmp_path, monkeypatch, args):
    monkeypatch.setattr(os, "geteuid", lambda: 0)  # the root check comes first; the topology fails before any work
    res = run_cli(*args, "-t", str(tmp_path))
    assert res.returncode == 2, res
    assert res.stderr == f"{tmp_path}: is a directory; give a topology file\n"


def test_a_missing_file_and_a_fifo_are_said_alike(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for command in (["status"], ["graph"], ["validate"]):
        res = run_cli(*command, "-t", str(tmp_path / "none.yaml"))
        assert (res.returncode, res.stderr) == (2, f"{tmp_path}/none.yaml: no such file; check the path\n")
        res = run_cli(*command, "-t", str(fifo))
        assert res.returncode == 2 and res.stderr.startswith(f"{fifo}: is not a regular file"), res
