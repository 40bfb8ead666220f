"""``netlab up --watch``'s repair: it converges the lab to what it must be once the repair holds the lab's lock.

The watcher checks the lab (the kernel against the plan of the lab's saved topology), then repairs it with the
same ``up`` a user would run, which waits for the lab's lock. Another command may take that lock in between: an
``up -t FILE`` of the watched file, edited, or an ``up --lab`` after ``netlab impair``. Its change is the lab's
desired state from then on; a repair of the lab as read before the lock would undo it (recreating a pod the
file no longer has, removing an impairment). So the repair reads the lab's state again under the lock, and when
another command changed it, converges to that, and only if the kernel still differs from it.
"""

from __future__ import annotations

from typing import Callable, Sequence

from netlab.feature import Feature
from netlab.features import default_features
from netlab.kernel.live import LiveKernel
from netlab.lab import status as lab_status
from netlab.lab import up as lab_up
from netlab.model.lab import Lab
from netlab.realize.state import LabState, load_state
from netlab.realize.state_dir import LabLock


def drift(state: LabState) -> list[str]:
    """How the kernel differs from the lab as ``state`` says it. Containers are not judged here: the watcher's
    restartPolicy and back-off judge them (watch_restart.py)."""
    kernel = LiveKernel()
    try:
        return lab_status.status(state, kernel, [f for f in default_features() if f.name != "workload"]).drift
    finally:
        kernel.close()


def repair(read: LabState, lab: Lab, follows: Callable[[LabState], bool], restart: bool,
           features: Sequence[Feature]) -> tuple[LabState, Lab, lab_up.UpResult | None]:
    """Repair the lab as ``read`` says it (``lab``, resolved), or as another command left it since, when
    ``follows(state)``: the watcher follows it (one made from another file than the watched one is not followed:
    it is left to up, which refuses it, and the watcher stops). Returns (the state, the lab repaired to, what up
    did), None for the last when the kernel is as that command left it and no container is to ``restart``."""
    kernel = LiveKernel()
    try:
        with LabLock(read.lab, "netlab up"):
            now = load_state(read.lab)
            if now is None:
                raise lab_up.LabGone(f"lab {read.lab} is not up (taken down meanwhile); nothing repaired")
            if now != read and follows(now):
                read, lab = now, now.resolved()
                if not restart and not drift(now):
                    return now, lab, None
            return read, lab, lab_up.up_held(lab, kernel, features, read.source)
    finally:
        kernel.close()
