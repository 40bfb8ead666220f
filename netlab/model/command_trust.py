"""The programs of a topology's container commands, held to the rule root's CNI plugins are (model/trust.py).

``sudo netlab up`` runs each container's command as root on the host's file system: a program someone other
than root and the invoking user can change (the file, a folder above it, a symlink on the way) is their program
run as root. The program is the one the container would run: an absolute path; a relative one with a ``/`` taken
from ``/`` (the container's working directory); a bare name as the container's fixed PATH finds it (its
folders are root's on any sane machine, so a bare name is safe there; one found in a folder that is not is
refused alike). A program not found is none of this check's business: up says it is not found. Without root
nothing is checked (trust.program): the user runs their own commands. This is the file's line for it (validate,
`up -t FILE`); each start checks the program again (kernel/spawning.trusted_exe), for the starts that read no
file (a repair `up --lab L`, up --watch's restarts). Only the program is checked: a script it is handed
(``[sh, /tmp/x.sh]``) is its to read, unchecked, as sudo leaves it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from netlab.model.trust import program, refusal

if TYPE_CHECKING:  # workload/containers.py reads CONTAINER_PATH here, and `down` loads no model
    from netlab.model.topology import Topology

# The PATH a container starts with (workload/containers.py), whatever netlab's own.
CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

Loc = tuple[str | int, ...]


def found(name: str) -> str | None:
    """The file a container's ``argv[0]`` runs: ``/``-relative with a slash, else the first in CONTAINER_PATH."""
    if "/" in name:
        return os.path.join("/", name)
    for folder in CONTAINER_PATH.split(":"):
        path = os.path.join(folder, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def program_refused(name: str) -> str | None:
    """The line that refuses to run ``name`` (a container's ``argv[0]``) as root, or None."""
    path = found(name) if name.strip() else None
    if path is None:
        return None
    try:
        _, why = program(path)
    except OSError:
        return None  # a name on the way missing, links that loop: up says the command is not found
    if why is None:
        return None
    shown = name if "/" in name else f"{name} (found at {path})"
    return f"{shown}: {refusal(why, 'it')}"


def command_problems(topo: Topology) -> list[tuple[Loc, str]]:
    """Each container command whose program root must not run, at its ``command[0]``."""
    if os.geteuid() != 0:
        return []
    out: list[tuple[Loc, str]] = []
    for i, pod in enumerate(topo.pods):
        for j, c in enumerate(pod.containers):
            if c.command and (line := program_refused(c.command[0])) is not None:
                out.append((("pods", i, "containers", j, "command", 0), line))
    return out
