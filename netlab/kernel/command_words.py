"""A stopped process's command line in a line's words: its program by name, cut with an ellipsis, and netlab's own
commands told as such.

``down`` and ``up`` name the processes not the lab's that they stopped with a pod's namespaces (kernel/kill.py's
others_words). The line used to cut the command line at 40 characters, which left
``/work/main/.venv/bin/python3 /usr/local/`` of a ``netlab probe`` (its threads enter the pods' namespaces) and
said it was "a process of yours" (QA reap57 3).
"""

from __future__ import annotations

import os
import re

MOST = 40  # the characters of a command said in a line
ELLIPSIS = "…"
_PYTHON = re.compile(r"python[0-9.]*$")


def netlab_words(command: str) -> str | None:
    """``command`` (a command line as kill.command_of says it, its words joined by spaces) as ``netlab SUB ...``
    when it is a netlab command: ``python3 -m netlab ...``, or a Python running a script named ``netlab`` that
    imports netlab (the launcher scripts/make_launcher.sh writes, a pip console script), checked in the file
    itself; None for any other."""
    words = command.split(" ")
    if not words or not _PYTHON.match(os.path.basename(words[0])):
        return None
    rest = words[1:]
    while rest and rest[0].startswith("-") and rest[0] != "-m":  # the interpreter's own options (-u, -I, -X ...)
        rest = rest[1:]
    if rest[:1] == ["-m"] and len(rest) > 1 and rest[1].split(".")[0] == "netlab":
        return " ".join(["netlab", *rest[2:]])
    if rest and os.path.basename(rest[0]) == "netlab" and _imports_netlab(rest[0]):
        return " ".join(["netlab", *rest[1:]])
    return None


def _imports_netlab(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(2048)
    except OSError:
        return False
    return re.search(rb"^\s*(from netlab[ .]|import netlab\b)", head, re.M) is not None


def said(command: str, most: int = MOST) -> str:
    """The command as a line says it: the program by its name, not its path (``python3 x.py -v``, ``sleep 1000``,
    ``netlab probe ...``), at most ``most`` characters, an ellipsis where cut."""
    words = netlab_words(command)
    if words is None:
        program, _, args = command.partition(" ")
        words = " ".join(w for w in (os.path.basename(program) or program, args) if w)
    return words if len(words) <= most else words[:most - 1] + ELLIPSIS
