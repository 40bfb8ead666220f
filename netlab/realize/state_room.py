"""How long the paths netlab makes below its state folder can be, and a state folder too long to hold them.

A state folder near PATH_MAX passed the doctor, then ``up`` failed halfway ("File name too long", rolled back,
exit 4: QA hostenv57 3). The doctor says it, and every command that would make the folder refuses it in one line
before anything is made (state_dir.ensure_dir).
"""

from __future__ import annotations

import os

from netlab.model.naming import LAB_NAME_MAX, NAME_MAX

PATH_MAX = 4096  # Linux's longest path a call takes, its NUL included (<linux/limits.h>)
IP_MAX = 39  # an IPv6 address written out: the name of a lease file host-local makes
_LAB, _NAME = "x" * LAB_NAME_MAX, "x" * NAME_MAX
# The longest paths netlab makes below the state folder, with every name at its longest (a lab's 24 characters, a
# node's, pod's and container's 63; a CNI network's name counted as long as a node's): a host-local lease of the
# lab's CNI (cni/edited.py points its dataDir there), and a container's previous log.
LONGEST = (f"/{_LAB}/cni/networks/{_NAME}/{_NAME}/{'x' * IP_MAX}",
           f"/{_LAB}/logs/{_NAME}.{_NAME}.previous.log")
BELOW_MAX = max(len(p) for p in LONGEST)


def too_long(path: str) -> str | None:
    """Why the state folder ``path`` is too long for the paths netlab makes below it, or None."""
    size = len(os.fsencode(path))
    if size + BELOW_MAX < PATH_MAX:
        return None
    return (f"its name is {size} bytes long, and netlab makes paths up to {BELOW_MAX} bytes longer below it (a lab's "
            f"CNI leases, its containers' logs): past Linux's PATH_MAX of {PATH_MAX} (a state folder of at most "
            f"{PATH_MAX - 1 - BELOW_MAX} bytes holds them)")
