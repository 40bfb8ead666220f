"""Commands raced against a lab from a test: a netlab command running, one held at a test hook, a lab up beside
the processes a test starts (test_down_racing_commands, test_down_folder_removal_race, test_impair_concurrent_live)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

from helpers import NETLAB, lab_down, netlab, two_node_topology, unique_lab, write_topology


def started(*args: str, env: dict | None = None) -> subprocess.Popen:
    """The netlab CLI with ``args``, running: its stdin, stdout and stderr pipes of text."""
    return subprocess.Popen(NETLAB + list(args), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})


def paused_at(point: str, *args: str) -> subprocess.Popen:
    """netlab ``args``, held at test hook ``point`` (NETLAB_FAULT_MODE=pause) until a line is written to it."""
    proc = started(*args, env={"NETLAB_FAULT_POINT": point, "NETLAB_FAULT_MODE": "pause"})
    assert proc.stderr is not None and proc.stderr.readline() == f"netlab: paused at {point} (test hook)\n"
    return proc


@contextlib.contextmanager
def lab_and_processes(tmp_path: Path, prefix: str, pods_per_node: int = 1):
    """A two-node lab up (``two_node_topology``), as (name, topology path, processes): the processes a test
    starts beside it are killed if still running, then the lab goes down."""
    name = unique_lab(prefix)
    path = write_topology(tmp_path, two_node_topology(name, pods_per_node=pods_per_node))
    procs: list[subprocess.Popen] = []
    try:
        netlab("up", "-t", path)
        yield name, path, procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        lab_down(name)
