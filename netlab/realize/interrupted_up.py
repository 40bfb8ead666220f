"""A lab an ``up`` killed (SIGKILL) before its first state write left: its folder alone, its lock naming that up
(``netlab list``: ``interrupted``). Apart from realize/interrupted.py, which reads the lab's state, so that the
state's own module asks it (state.not_up: the line of a command asked for such a lab) without a cycle.
"""

from __future__ import annotations

import os

from netlab.errors import NetlabError, UsageError, down_way
from netlab.realize.lab_folder import MARK_FILE
from netlab.realize.lab_list import state_temps
from netlab.realize.lab_lock import lab_lock_holder, lab_lock_last
from netlab.realize.state_dir import STATE_FILE, lab_dir

UP = "netlab up"  # the command an up's lock names (lab/up.py)


def folder_names(lab: str) -> list[str]:
    """What lab ``lab``'s folder holds (nothing when it has none)."""
    try:
        return [name for name in os.listdir(lab_dir(lab, create=False)) if name != MARK_FILE]
    except (OSError, NetlabError):
        return []


def interrupted_up(lab: str) -> str | None:
    """Why a lab folder without a state file is there, and what to do, when an ``up`` left it: killed before its
    first state write was renamed into place (the lock's text names it, and nobody holds the lock now). That write
    names every namespace before it exists, so nothing of the lab was made: ``down`` (no --force) removes the
    folder. None otherwise (its caller found no lost state: no namespace tagged as the lab's, no run's files)."""
    names = folder_names(lab)
    if not names or STATE_FILE in names:
        return None
    cut = up_interrupted(lab, names)
    return str(cut) if cut is not None else None


def up_interrupted(lab: str, names: list[str] | None = None) -> UpInterrupted | None:
    """:func:`interrupted_up`'s line as the error of a command asked for lab ``lab`` (``names``: what its folder
    holds, read already), None when it is no such lab."""
    names = folder_names(lab) if names is None else names
    if not names or STATE_FILE in names:
        return None
    last, program = lab_lock_last(lab)
    if last is None or not last.endswith(f"({UP})") or lab_lock_holder(lab) is not None:
        return None
    temps = state_temps(names)
    return UpInterrupted(lab, last, program, f"its lock and {', '.join(temps)}" if temps else "its lock")


class UpInterrupted(UsageError):
    """A lab an ``up`` killed before its first state write left (:func:`interrupted_up`): `netlab list`'s line for
    it, also the error of a command asked for it (status, exec, impair ...: exit 2), its way out in the caller's
    words (``api``: the Python call, else the command; None: as the caller chose, errors.in_python_words)."""

    def __init__(self, lab: str, last: str, program: str | None, left: str, api: bool | None = None):
        self.lab, self._args = lab, (lab, last, program, left)
        super().__init__(f"lab {lab}: {ran(UP, 'that made its folder', last, program)} ended before it saved "
                         f"the lab's state, so nothing of the lab was made (the folder holds only {left}); "
                         f"`{down_way(lab, api)}` removes it")

    def said_for(self, api: bool) -> UpInterrupted:
        return UpInterrupted(*self._args, api=api)


def ran(command: str, doing: str, last: str | None, program: str | None) -> str:
    """The command that was ``doing`` a lab's work, as its lock's text names it (``last``: "pid N (netlab up)"):
    "the `netlab up` that was making it (pid N)"; run by a Python program through netlab's API (``program``, its
    command line: a pytest worker's fixture), no `netlab up` ran: "the up that was making it through netlab's API,
    in pid N (python -m pytest ...),"."""
    pid = last.partition(" (")[0] if last else None
    if program is None or pid is None:
        return f"the `{command}` {doing}" + (f" ({pid})" if pid else "")
    return f"the {command.removeprefix('netlab ')} {doing} through netlab's API, in {pid} ({program}),"
