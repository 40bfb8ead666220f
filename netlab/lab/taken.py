"""What ``up`` says of a namespace the lab no longer has whose name another's namespace holds now (lab/up.py):
the containers its records name are stopped, that namespace is left alone; where nothing was stopped (a name the
lab's state listed and never made: a state edited by hand, a collision) it is a warning, not a change."""

from __future__ import annotations

from typing import TYPE_CHECKING

from netlab.kernel import kill

if TYPE_CHECKING:
    from netlab.realize.state import LabState


def containers_ran(state: LabState, netns: str) -> list[str]:
    """The containers the lab's records say ran in the pod of ``netns``, taken before its stop drops them."""
    workload = state.extra.get("workload")
    ran = (workload.get("pods") or {}).get(netns.removeprefix(state.lab + "-")) if isinstance(workload, dict) else None
    return list((ran.get("containers") or {}) if isinstance(ran, dict) else {})


def taken_line(netns: str, what: str | None, names: list[str], left: int) -> str:
    """What up did of a pod (or node: ``what``) the topology no longer has, whose namespace's name holds another's
    now: the containers its records name (``names``) stopped, that namespace left alone. ``left``: processes its
    stop found still in the pod's namespaces at its end (a warning each, kill.stop_namespaces): not stopped."""
    stopped = f"{kill.stopped_words(names, left)}; " if names else ""
    return (f"removed {what or 'network namespace ' + netns} ({stopped}{netns} now holds a network namespace that "
            "is not the lab's: left alone)")


def left_alone_line(netns: str) -> str:
    """up's warning for a namespace of that name in which nothing was stopped: it touched nothing."""
    return f"{netns} holds a network namespace that is not the lab's: left alone (the lab no longer lists it)"
