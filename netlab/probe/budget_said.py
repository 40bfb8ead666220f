"""Whether ``up``'s neighbour-table warning (probe/neighbours.neighbour_budget_warning) was said at the lab's up
before: only then does the CLI leave it off stderr (said once; -o json keeps it among the warnings).

The lab's size alone (its pods on each node, its nodes) did not tell: that up may have said nothing (the host's
gc_thresh3 was higher, or it ran through the API or the pytest plugin, which print nothing). The CLI (plain ``up``,
and ``up --watch``'s first line) records the warning's words it printed in the lab's state folder (:data:`FILE`);
an up whose warning has the same words, of a lab the same size, is the one not said again. A missing or unreadable
record (a lab up before this) says it.
"""

from __future__ import annotations

import json
import os
import stat
from typing import TYPE_CHECKING

from netlab.errors import NetlabError

if TYPE_CHECKING:
    from netlab.model.lab import Lab

FILE = "warned.json"
MAX_BYTES = 16384


def _path(lab: str) -> str | None:
    from netlab.realize.lab_writes import in_lab_dir

    return in_lab_dir(lab, FILE)


def said(lab: str) -> str | None:
    """The neighbour-table warning the CLI printed at the lab's last up; None: none, or the record unreadable."""
    where = _path(lab)
    if where is None:
        return None
    try:
        fd = os.open(where, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        raw = os.read(fd, MAX_BYTES + 1) if stat.S_ISREG(os.fstat(fd).st_mode) else b""
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    budget = data.get("budget") if isinstance(data, dict) else None
    return budget if isinstance(budget, str) else None


def record(lab: str, budget: str | None) -> None:
    """The CLI printed ``budget`` at this up (None: no such warning this time: the record goes). Best effort: a
    record not written only makes the next up say the warning again.

    Written with the lab's lock taken shared (lab_lock.unheld), which never makes the lab's folder nor its lock
    file: the up that printed it let the lab go as it returned, and a ``down`` that took it since (holding it, or
    done: no lock file) would meet a file it did not expect in the folder it removes, or find the folder made again
    by a late write. Nothing is written then, nor while another command holds the lab."""
    from netlab.realize.lab_lock import unheld
    from netlab.realize.state_dir import write_atomic

    with unheld(lab) as free:
        where = _path(lab) if free else None
        if where is None:
            return
        try:
            if budget is None:
                os.unlink(where)
            else:
                write_atomic(where, json.dumps({"budget": budget}).encode())
        except (NetlabError, OSError):
            pass


def repeated(saved_topology: object, lab: "Lab", budget: str | None) -> bool:
    """Whether ``budget``, this up's neighbour-table warning, is left off stderr: the CLI said these very words at
    the lab's up before, of a lab the same size (probe/neighbours.budget_warning_repeated)."""
    from netlab.probe.neighbours import budget_warning_repeated

    return bool(budget) and budget_warning_repeated(saved_topology, lab) and said(lab.name) == budget
