"""Which state files need no second check: those byte for byte as this netlab wrote them.

Every load of a lab's state checked it whole against state_schema.py and its
topology against the topology's models. pydantic builds those validators anew
in each process: 70-120 ms of a `netlab down` of 500 pods (a third of it),
which needs neither the schema nor the topology, only the namespaces and the
features' records.

So a save writes, beside ``state.json``, the SHA-256 of the bytes it wrote and
a stamp of what checks them: the state's format version and the files of
state_schema.py, plan/sysctls.py and netlab/model/ (their sizes and times), so
that an upgraded or edited schema trusts nothing written before it (and an
installation without those source files trusts nothing). A load whose bytes hash to
that sum, under the same stamp, takes them as they are: a state this schema
checked when it was read, or made itself (its topology is validated when first
asked for, LabState.model()). Anything else (a file edited by hand, cut short,
written by another netlab, a sum that is not one) is checked whole as before,
and refused in one line when it is not a state.

Both files are written atomically, one after the other: a reader that finds a
new state beside an old sum (or a sum that could not be written on a full disk)
checks it whole, which is only slower.

Only the state is made durable (fsync of the file and of its directory); the
sum is not (two fsyncs fewer per save, 12 of an `up`'s 28: ~4 ms each on the
VM's disk). A crash may leave the sum old, empty, cut short or absent: none of
those hashes to the state's bytes unless the state is exactly what a netlab
with this stamp wrote (the state itself is durable), so the worst a lost sum
does is the whole check once, as a missing sum does today.
"""

from __future__ import annotations

import os

from netlab.errors import NetlabError
from netlab.model import digest
from netlab.model.files import Unreadable, read_regular
from netlab.realize.state_dir import STATE_VERSION, lab_dir, write_atomic

SUM_FILE = "state.sum"
SUM_MAX = 512  # bytes: a sum is one short line
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The schema's files (state_schema.py checks the restored sysctls against plan/sysctls.py), and the directory of
# the topology's models, every file of it.
_CHECKERS = ((os.path.join(_PACKAGE, "realize", "state_schema.py"), os.path.join(_PACKAGE, "plan", "sysctls.py")),
             os.path.join(_PACKAGE, "model"))


def stamp() -> str | None:
    """What checks a state here: its format version, and each checking source file's size and mtime; None when
    a file cannot be looked at."""
    try:
        files = list(_CHECKERS[0]) + sorted(os.path.join(_CHECKERS[1], name) for name in os.listdir(_CHECKERS[1])
                                            if name.endswith(".py"))
        parts = [f"v{STATE_VERSION}"]
        for path in files:
            st = os.stat(path)
            parts.append(f"{os.path.relpath(path, _PACKAGE)}:{st.st_size}:{st.st_mtime_ns}")
    except OSError:
        return None
    return digest.sha256(" ".join(parts).encode()).hexdigest()[:16]


def line_for(raw: bytes) -> bytes | None:
    mark = stamp()
    return None if mark is None else f"{mark} {digest.sha256(raw).hexdigest()}\n".encode()


def write_sum(lab: str, raw: bytes) -> None:
    """The sum of state bytes just written; a failure leaves an old sum, which matches no new state."""
    line = line_for(raw)
    if line is None:
        return
    try:
        write_atomic(os.path.join(lab_dir(lab, create=False), SUM_FILE), line, durable=False)
    except (OSError, NetlabError):  # a full disk, a read-only directory: the state itself is saved
        pass


def trusted(lab: str, raw: bytes) -> bool:
    """True when ``raw`` is, byte for byte, a state this netlab wrote for ``lab`` under the same stamp."""
    try:
        line = read_regular(os.path.join(lab_dir(lab, create=False), SUM_FILE), SUM_MAX, follow=False)
    except Unreadable:
        return False  # none, a symlink, not a file, too long: check the state whole
    want = line_for(raw)
    return want is not None and line == want
