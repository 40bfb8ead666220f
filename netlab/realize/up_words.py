"""The `up` command a line names for a lab (state.repair_up, source_edit: status's repair and its warnings)."""

from __future__ import annotations

from netlab.errors import command_path, netlab_command


def up_command(source: str | None, reconfigure: bool = False) -> str:
    """The `up` that brings back the lab ``source`` made: with -t FILE when it came from a file (a plain `up`
    makes the built-in default lab, "demo", whatever lab the user meant)."""
    cmd = netlab_command(f"up -t {command_path(source)}") if source else netlab_command("up")
    return cmd + " --reconfigure" if reconfigure else cmd
