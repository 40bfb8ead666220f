"""A converge of a running lab (``up`` of an edited file, ``up --lab``'s repair) that a SIGKILL cut short.

A running lab's phase stays ``up`` through an ``up`` of it, so a converge killed after its write-ahead (the state
names the edited topology from then on) left no trace: ``status`` said the lab was as planned, ``list`` named no
killed up, and what the run had yet to do (a container the edit took out, still running) was said nowhere (QA
lf61 2). The write-ahead of a converge now records :data:`KEY` in the state's ``extra``, with what the edit changes
in the topology (:func:`changes`), and the run's last state write takes it away: a state that still holds it, its
lab's lock held by nobody, is a converge that ended before it finished (realize/interrupted.stalled), and
``up --lab L`` (the saved topology, the edited one) finishes it. Pure: topology dicts in, words out.
"""

from __future__ import annotations

from typing import Any

KEY = "converging"  # state.extra: {"changes": [words]} while an up of a running lab is at work
SHOWN = 5  # changes named in the line; the rest counted


def changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What topology ``new`` changes of ``old`` (saved topologies, as the state holds them), in words: pods and
    their containers, Services, and the other top-level fields by name; [] when they are the same (a repair)."""
    said: list[str] = []
    old_pods, new_pods = _by_name(old.get("pods")), _by_name(new.get("pods"))
    for name, pod in new_pods.items():
        was = old_pods.get(name)
        if was is None:
            said.append(f"pod {name} added")
            continue
        if was.get("node") != pod.get("node"):
            said.append(f"pod {name} moved to node {pod.get('node')}")
        said += _containers(name, was, pod)
        rest = sorted(k for k in set(was) | set(pod) if k not in ("node", "containers") and was.get(k) != pod.get(k))
        if rest:
            said.append(f"pod {name}'s {', '.join(rest)} changed")
    said += [f"pod {name} removed" for name in old_pods if name not in new_pods]
    old_svcs, new_svcs = _by_name(old.get("services")), _by_name(new.get("services"))
    said += [f"Service {name} {'added' if name not in old_svcs else 'changed'}" for name, svc in new_svcs.items()
             if old_svcs.get(name) != svc]
    said += [f"Service {name} removed" for name in old_svcs if name not in new_svcs]
    fields = sorted(k for k in set(old) | set(new) if k not in ("pods", "services") and old.get(k) != new.get(k))
    if fields:
        said.append(f"{', '.join(fields)} changed")
    return said


def mark(state: Any, said: list[str]) -> None:
    """The write-ahead of a run on a lab in phase up (a converge) holds :data:`KEY`: what it changes."""
    if state.phase == "up":
        state.extra[KEY] = {"changes": said}


def words(said: list[str]) -> str:
    """The changes of :func:`changes` in one clause, at most :data:`SHOWN` named."""
    if not said:
        return "a repair, no change of the topology"
    more = len(said) - SHOWN
    return "; ".join(said[:SHOWN]) + (f"; and {more} more change{'s' if more > 1 else ''}" if more > 0 else "")


def _by_name(items: Any) -> dict[str, dict[str, Any]]:
    """Pods or Services by namespace/name (``default/`` left out)."""
    out: dict[str, dict[str, Any]] = {}
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            namespace = item.get("namespace") or "default"
            out[f"{namespace}/{item.get('name')}" if namespace != "default" else str(item.get("name"))] = item
    return out


def _containers(pod: str, was: dict[str, Any], now: dict[str, Any]) -> list[str]:
    before, after = _by_name(was.get("containers")), _by_name(now.get("containers"))
    said = [f"container {pod}/{name} added" if name not in before else f"container {pod}/{name} changed"
            for name, c in after.items() if before.get(name) != c]
    return said + [f"container {pod}/{name} taken out (its process may still run)" for name in before
                   if name not in after]


def not_applied(lab: str, said: list[str]) -> str:
    """What a stop signal before a converge changed anything leaves, after "interrupted by SIGTERM": the lab as it
    was, the edit (``said``: :func:`changes`) not applied; it read as one after the run ("rolled back", or "lab L
    is up"), as if the edit might be in place."""
    what = f"the edit not applied: {words(said)}" if said else "nothing repaired"
    return f"before it changed anything; lab {lab} is as it was ({what})"
