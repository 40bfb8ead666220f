"""Whose is a namespace? Answers from the tag on its ``lo`` when the state cannot answer.

Every namespace a lab makes carries ``netlab:<lab>:<run id>`` on ``lo`` from
before its name is visible (netns.py); :func:`netns.read_tag` is the one
function that reads it. Two cases need the tag without a usable state:

- ``down --force`` of a lab whose state file is corrupt or gone: a namespace
  named ``<lab>-*`` whose tag says this lab, with any run id, is the lab's; a
  namespace without that tag is never touched (:func:`force_states`);
- ``up`` meeting a namespace it would create: the advice to ``ip netns del``
  it is given only when it is proven stale (:func:`collision_message`).
"""

from __future__ import annotations

import os
import re
from typing import Any

from netlab.kernel import netns as nsmod
from netlab.realize import state as statemod
from netlab.realize.state_schema import ETC_NETNS, RUN_ID

_TAG = re.compile(r"^netlab:([a-z0-9]([-a-z0-9]*[a-z0-9])?):([0-9a-f]+)$")


def tag_owner(tag: str | None) -> tuple[str, str] | None:
    """``netlab:<lab>:<run id>`` -> (lab, run id); None for anything else."""
    if not tag or not tag.startswith(nsmod.TAG_PREFIX):
        return None
    m = _TAG.fullmatch(tag)
    return (m.group(1), m.group(3)) if m else None


def owner_of(name: str) -> tuple[str, str] | None:
    """(lab, run id) from the tag of namespace ``name``; None if it has no netlab tag (or is no namespace)."""
    try:
        return tag_owner(nsmod.read_tag(name))
    except (OSError, ValueError):
        return None


def tagged_namespaces(lab: str) -> dict[str, list[str]]:
    """Namespaces ``<lab>-*`` tagged as this lab's, grouped by run id."""
    out: dict[str, list[str]] = {}
    for name in nsmod.list_netns():
        if not name.startswith(lab + "-"):
            continue
        try:
            nsmod.check_netns(name)
        except ValueError:
            continue
        owner = owner_of(name)
        if owner is not None and owner[0] == lab:
            out.setdefault(owner[1], []).append(name)
    return out


def _resolv_record(lab: str, names: list[str]) -> dict[str, Any]:
    """The services record for the pods' resolv.conf files that prove to be this lab's
    (first line ``# netlab <lab>:``), paths derived from the namespace names."""
    resolv: dict[str, str] = {}
    dirs: list[str] = []
    for name in names:
        path = os.path.join(ETC_NETNS, name, "resolv.conf")
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        with os.fdopen(fd, "r", errors="replace") as fh:
            if not fh.readline().startswith(f"# netlab {lab}:"):
                continue
        resolv[name] = path
        dirs.append(os.path.dirname(path))  # removed only when empty
    return {"version": 1, "resolv": resolv, "dirs": dirs, "udp": [], "udp_empty": [], "chains": {}}


def force_states(lab: str, state: statemod.LabState | None) -> list[statemod.LabState]:
    """What ``down --force`` takes down: the state when it is readable, plus a stand-in
    state per run id for the namespaces tagged as this lab's that it does not list.

    A stand-in lists exactly the tagged namespaces (``down`` checks the tag
    again before deleting), and the resolv.conf files that say they are this
    lab's; containers are found by namespace identity, as always.
    """
    out = [state] if state is not None else []
    for run_id, names in sorted(tagged_namespaces(lab).items()):
        if state is not None and run_id == state.run_id:
            names = [n for n in names if n not in state.netns]  # the others go with the state
        if not names or not RUN_ID.fullmatch(run_id):
            continue
        stand_in = statemod.LabState(lab=lab, run_id=run_id, netns={n: "created" for n in names},
                                     phase="deleting")
        stand_in.extra["services"] = _resolv_record(lab, names)
        out.append(stand_in)
    return out


def force_down(lab: str, teardown, tag_for) -> Any:
    """``down --force``: tear down the readable state and every stand-in (see force_states).

    ``teardown(state, tag)`` and ``tag_for(state)`` are apply's; returns the
    merged result, or None when nothing of the lab exists.
    """
    try:
        state = statemod.load_state(lab)
    except statemod.StateCorrupt:
        state = None
    result = None
    for st in force_states(lab, state):
        done = teardown(st, tag_for(st))
        if result is None:
            result = done
        else:
            result.removed_netns += done.removed_netns
            result.skipped += done.skipped
    if result is None:
        statemod.forget(lab)  # a corrupt state and no namespace: forget the file
    return result


def collision_message(name: str, lab: str) -> str:
    """Why namespace ``name`` that lab ``lab`` would create is not the lab's, and what to do.

    ``ip netns del`` is advised only for a namespace proven stale: an empty
    placeholder, or one tagged by netlab for a lab that has no state here any
    more. A namespace of another lab that is up names that lab; an untagged
    one was made by someone else, and is theirs to remove.
    """
    if nsmod.exists(name) and not nsmod.is_netns_mount(name):
        try:
            empty = os.path.isfile(nsmod.netns_path(name)) and os.path.getsize(nsmod.netns_path(name)) == 0
        except OSError:
            empty = False
        if empty:
            return (f"namespace {name} already exists as an empty placeholder (left by a crashed "
                    f"`ip netns add` or netlab run); it is stale: remove it (ip netns del {name}) and run up again")
    owner = owner_of(name)
    if owner is None:
        return (f"namespace {name} already exists and was not made by netlab (no netlab tag on its lo); "
                f"it belongs to someone else: rename lab {lab}, or have its owner remove it")
    other, run_id = owner
    has_state = os.path.isfile(os.path.join(statemod.STATE_ROOT, other, "state.json"))
    if other != lab and has_state:
        return (f"namespace {name} already exists and belongs to lab {other}, which is up "
                f"(see `netlab list`); rename lab {lab}, or take {other} down first (netlab down --lab {other})")
    if other == lab and has_state:
        why = f"it is a leftover of an earlier run of lab {lab} (run {run_id[:8]}), not listed by its state"
    else:
        why = f"it was made by netlab for lab {other}, which has no state in {statemod.STATE_ROOT} any more"
    return (f"namespace {name} already exists: {why}; it is stale: remove it (ip netns del {name}, "
            f"or `netlab down --lab {other} --force`) and run up again")
