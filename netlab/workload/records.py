"""The containers' records in the lab's state (``state.extra["workload"]``): per pod its network and UTS
namespaces, its creation time and its containers' runs (pid or echo thread, start time, argv), written by
lifecycle.start and read by status, the watcher, ``netlab exec`` and the stop of a pod's namespaces.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from netlab.realize.state import LabState

RECORD = "workload"
RECORD_VERSION = 1


def records(state: LabState) -> dict:
    """The lab's containers' records, made empty when missing or of another version."""
    rec = state.extra.get(RECORD)
    if not isinstance(rec, dict) or rec.get("version") != RECORD_VERSION:
        rec = {"version": RECORD_VERSION, "pods": {}}
        state.extra[RECORD] = rec
    rec.setdefault("pods", {})
    return rec
