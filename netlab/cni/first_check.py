"""A pod's first CHECK since its ADD, and a chain whose CHECK fails the pod's own ADD from the start.

``up`` runs no CHECK after a pod's first ADD (containerd runs none; one after every ADD cost ~1 s per 8 pods), so a
plugin whose CHECK fails its own fresh ADD (Debian's portmap for a hostPort, its bandwidth without rates) was first
seen by ``status``, as drift that ``up`` repairs; that ``up`` DELed and ADDed the pod, and only its CHECK after the
new ADD told the plugin's own failure. A first ADD's record says no CHECK ran since (``unchecked``,
realize/attachments.UNCHECKED); the first CHECK of the pod, by ``status`` or ``up``, ends it: one that passes, and
one that fails while netlab's comparison of the pod with that ADD's cached result (cni/verify.py, what a chain
without CHECK is held to) finds it as the ADD made it, which is the plugin's own failure, marked as a re-attach's
CHECK marks it (``check_fails``, cni/changed.Changed.fresh_mark): said naming the plugin, and neither drift that
``up`` repairs nor a pod ``up`` re-attaches for that failure. A CHECK that fails on a pod that differs from its ADD
result is drift, as before; so is every failure of a pod whose first CHECK passed.

``status`` is a reader: it records its verdicts under the lab's lock, taken only if free at once, never making the
lab's folder nor its lock file (realize/lab_lock.taken_if_free); held by another command, it records nothing and
the next ``status`` or ``up`` judges the pod again, the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from netlab.errors import NetlabError
from netlab.realize.attachments import UNCHECKED, pod_records

if TYPE_CHECKING:
    from netlab.cni.changed import Changed
    from netlab.realize.state import LabState

CHECK_FAILS = "check_fails"  # a record's mark: how its chain failed its own fresh ADD (cni/changed.fresh_mark)


def settle(prec: dict[str, Any], found: Changed | None) -> bool:
    """A pod's record once its first CHECK since its ADD judged it (``found``: what that CHECK found, None when
    it passed): no longer ``unchecked``, and a failure that is the plugin's own (Changed.first) marked. Whether the
    record changed (False for a pod that was CHECKed before, or a failure on a pod that differs from its ADD)."""
    if prec.get(UNCHECKED) is not True or (found is not None and not found.first):
        return False
    del prec[UNCHECKED]
    if found is not None:
        prec[CHECK_FAILS] = found.fresh_mark()
    return True


def record(state: LabState, found: dict[str, Changed | None]) -> None:
    """``status``: the verdicts of the pods' first CHECKs (``found``, by pod) written to the lab's state, under its
    lock if it is free now; each into the record of the attachment that was CHECKed (its containerId), still
    ``unchecked``, of the same run of the lab. Nothing is written when nothing is to be, when another command holds
    the lab, or when its state cannot be read or written (the next status judges those pods again)."""
    from netlab.realize.interrupted import own_write
    from netlab.realize.lab_lock import taken_if_free
    from netlab.realize.state import load_state, state_version

    records = pod_records(state)
    todo = {pod: f for pod, f in found.items() if isinstance(records.get(pod), dict)
            and records[pod].get(UNCHECKED) is True and (f is None or f.first)}
    if not todo:
        return
    with taken_if_free(state.lab) as free:
        if not free:
            return
        try:
            now = load_state(state.lab)
            if now is None or now.run_id != state.run_id or now.phase != "up":
                return
            recs = pod_records(now)
            settled = [pod for pod, f in todo.items() if isinstance(recs.get(pod), dict)
                       and recs[pod].get("containerId") == records[pod].get("containerId")
                       and recs[pod].get("phase") == "added" and settle(recs[pod], f)]
            if settled:
                before = state_version(state.lab)
                now.save()
                own_write(state.lab, before, state_version(state.lab))  # no other command's change (Seen)
        except NetlabError:  # a state another netlab wrote, or a full disk: judged again by the next status
            return
