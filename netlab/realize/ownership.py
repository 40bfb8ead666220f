"""Whose is a namespace? Answers from its netlab tag when the state cannot answer.

Every namespace a lab makes carries ``netlab:<lab hash>:<run hash>`` from
before its name is visible (kernel/netns.py: two sysctls of the namespace);
:func:`netns.read_tag` is the one function that reads it. Two cases need the
tag without a usable state:

- ``down --force`` of a lab whose state file is corrupt or gone: a namespace
  named ``<lab>-*`` whose tag says this lab, with any run, is the lab's; a
  namespace without that tag is never touched (:func:`force_states`), nor its pods' files, nor one
  whose tag names another state folder (a lab up with that one: refused);
- ``up`` meeting a namespace it would create: the advice to ``ip netns del``
  it is given only when it is proven stale (:func:`collision_message`).

(A command that finds no state file at all asks realize/tags.py too: a lab whose state was lost,
state_errors.lost_state.)
"""

from __future__ import annotations

import os
import shlex
from typing import Any

from netlab.errors import down_command, netlab_command
from netlab.kernel import netns as nsmod
from netlab.model.naming import lab_name_problem
from netlab.realize import lab_list, state as statemod, state_dir, state_errors, tags
from netlab.realize.lab_folder import ancestor_problem
from netlab.realize.tags import POD_FILES, pod_files, remnants, tag_owner, tagged_namespaces


def tag_on(name: str) -> str | None:
    """The netlab tag of namespace ``name``; None without one (or no namespace)."""
    try:
        return nsmod.read_tag(name)
    except (OSError, ValueError):
        return None


def owner_of(name: str) -> tuple[str, str] | None:
    """(lab hash, run hash) from the tag of namespace ``name``; None without a netlab tag (or no namespace)."""
    return tag_owner(tag_on(name))


def lab_of(lab_hash: str) -> str | None:
    """The lab with saved state whose name gives this hash (None: no such lab here)."""
    return next((lab for lab in lab_list.known_labs() if nsmod.lab_hash(lab) == lab_hash), None)


def _files_record(found: dict[str, list[str]]) -> dict[str, Any]:
    """The services record of the pods' resolv.conf and hosts files that proved to be this lab's (tags.pod_files:
    by kind, the namespaces): it holds names, paths are derived from them."""
    files = {kind: {name: "created" for name in names} for kind, names in found.items()}
    dirs = {name: "created" for kind in files for name in files[kind]}  # removed only when empty
    return {"version": 2, **files, "dirs": dirs, "etc_netns": None, "udp": [], "udp_empty": [], "chains": {}}


def force_states(lab: str, state: statemod.LabState | None) -> list[tuple[statemod.LabState, str | None]]:
    """What ``down --force`` takes down, with the tag each part must carry: the state when it is
    readable (None: its own tag), plus a stand-in state per run for the namespaces tagged as
    this lab's that it does not list.

    A stand-in lists exactly the tagged namespaces (``down`` checks the tag
    again before deleting), and the resolv.conf and hosts files that say they
    are this lab's; containers are found by namespace identity, as always.
    """
    out: list[tuple[statemod.LabState, str | None]] = [(state, None)] if state is not None else []
    mine = tags.state_tag(lab, state.run_id, state.extra) if state is not None else None
    groups = tagged_namespaces(lab)
    away = {tag for tag in groups if tag != mine and tags.elsewhere(tag)}  # a lab up with another state folder's
    for tag, names in sorted(groups.items()):
        if tag in away:
            continue
        if tag == mine:
            names = [n for n in names if n not in state.netns]  # type: ignore[union-attr]  # the others go with it
        if not names:
            continue
        out.append((_stand_in(lab, names, pod_files(lab, names)), tag))
    # The pods' files under /etc/netns outlive their namespaces, and the lab's folder (/run is a tmpfs, /etc is
    # not): those in the folders /etc/netns/<lab>-* that none of the above names and that say they are this
    # lab's go too.
    # Not while a lab of this name is up with another state folder: its pods' files say this lab too, and are its.
    # A namespace that exists and is none of these is not the lab's (no tag of it: someone's `ip netns add
    # LAB-x`, whose hosts file may begin as the lab's do): its files are left.
    named = {n for st, _ in out for n in st.netns}
    left = ({kind: [n for n in names if n not in named and not nsmod.exists(n)] for kind, names in
             pod_files(lab).items()} if not away else {})
    if any(left.values()) or (not out and remnants(lab)):
        # No namespace left, yet a run's files are (its echo server may run on, its UTS pins stay mounted), or
        # its pods' files: a stand-in that lists no namespace stops what the lab's folder names (the server by
        # its socket, the pins' tmpfs) and takes the pods' files away, then the folder goes.
        out.append((_stand_in(lab, [], left), nsmod.make_tag(lab, "lost")))
    return out


def _stand_in(lab: str, names: list[str], files: dict[str, list[str]]) -> statemod.LabState:
    """A state listing namespaces ``names`` and the pods' files ``files`` (tags.pod_files) that proved to be
    this lab's; never saved (LabState.stand_in)."""
    stand_in = statemod.LabState(lab=lab, netns={n: "created" for n in names}, phase="deleting", stand_in=True)
    stand_in.extra["services"] = _files_record(files)
    return stand_in


def _pod_files_named(lab: str, state: statemod.LabState) -> dict[str, list[str]]:
    """The pods' files a stand-in's services record names (_files_record) that are still the lab's, by kind (the
    readable state's teardown, just before, took those it names too)."""
    rec = state.extra.get("services", {})
    named = {kind: set(rec.get(kind, {})) for kind in POD_FILES}
    folders = sorted(set().union(*named.values()))
    found = pod_files(lab, folders) if folders else {kind: [] for kind in POD_FILES}
    return {kind: [name for name in found[kind] if name in named[kind]] for kind in POD_FILES}


def _removed(lab: str, named: dict[str, list[str]]) -> list[str]:
    """The paths of the pods' files ``named`` (by kind, the namespaces) that are no longer the lab's: taken away
    (a file still there saying it is the lab's was not)."""
    folders = sorted({name for names in named.values() for name in names})
    if not folders:
        return []
    still = pod_files(lab, folders)
    return sorted(os.path.join(tags.ETC_NETNS, name, POD_FILES[kind])
                  for kind, names in named.items() for name in names if name not in still[kind])


def force_down(lab: str, teardown, tag_for, changing=lambda: None, left: list[str] | None = None) -> Any:
    """``down --force``: tear down the readable state and every stand-in (see force_states).

    ``teardown(state, tag)`` and ``tag_for(state)`` are the lab's; returns the
    merged result, or None when nothing of the lab exists. ``changing()`` is called before a change that is not
    a teardown (the corrupt state's file forgotten); ``left`` gets what that left in the lab's folder (not netlab's).
    """
    try:
        state = statemod.load_state(lab)
    except state_errors.StateCorrupt:
        state, corrupt = None, True
    else:
        corrupt = False
    parts = force_states(lab, state)
    # Its state folder moved away (renamed) with its pins mounted: they are found by the run's tag, read before
    # its namespaces go, and unmounted after (QA q2, defect 4).
    mine = {tag: names for tag, names in tagged_namespaces(lab).items() if not tags.elsewhere(tag)}
    doubts: list[str] = []  # pins that look like the lab's in a moved folder without its state: not proven, said
    moved = tags.moved_pins(lab, list(mine), [n for names in mine.values() for n in names], doubts)
    if not parts and state is None and not corrupt:  # nothing here is the lab's: up with another state folder?
        away = tags.state_elsewhere(lab)
        if away is not None:
            raise away
    result = None
    for st, tag in parts:
        # The stand-in that lists no namespace: its pods' files are proven the lab's by their first line alone.
        alone = _pod_files_named(lab, st) if tag is not None and not st.netns else {}
        done = teardown(st, tag or tag_for(st))
        done.removed_pod_files += _removed(lab, alone)
        if result is None:
            result = done
        else:
            result.removed_netns += done.removed_netns
            result.skipped += done.skipped
            result.problems += done.problems
            result.removed_pod_files += done.removed_pod_files
            result.stopped += done.stopped
    for point in moved:
        changing()
        problem = ancestor_problem(point)  # a folder above that another user may swap: no root unmount through it
        try:
            if problem:
                raise OSError(0, f"left mounted: {problem}")
            nsmod.detach(point)
            said = f"{point}: the lab's UTS pins, in its state folder moved away; unmounted"
        except OSError as exc:
            said = f"{point}: the lab's UTS pins, in its state folder moved away; cannot unmount them ({exc.strerror})"
        if result is not None:
            result.skipped.append(said)
        elif left is not None:
            left.append(said)
    if result is not None:
        result.skipped += doubts
    elif left is not None:
        left += doubts
    if result is None:
        changing()
        gone = lab_list.forget(lab)  # a corrupt state and no namespace: forget the file
        if left is not None:
            left += gone
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
    said = owned_message(name, lab, owner)
    if said is not None or owner is None:
        return said or ""
    return _stale_message(name, lab, owner)


def taken_meanwhile(name: str, lab: str) -> str:
    """Why namespace ``name`` is not lab ``lab``'s when making it found its name taken (EEXIST): another process
    made it after the lab's check found it free (two labs whose namespace names collide, up at the same moment).
    Whose it is when its tag says so (as :func:`collision_message` says it); else only that another process made
    it: an empty placeholder then is another run's namespace being made, never proven stale."""
    if nsmod.is_netns_mount(name):
        said = owned_message(name, lab, owner_of(name))
        if said is not None:
            return said
    return (f"namespace {name} already exists: another process made it meanwhile (the name was free when this up "
            f"checked it); rename lab {lab}, or run up again once that process is done (it then says whose it is)")


def owned_message(name: str, lab: str, owner: tuple[str, str] | None) -> str | None:
    """Whose namespace ``name`` is when it is not stale: someone else's (no netlab tag), or a lab's that is up
    (here or with another state folder); None otherwise."""
    if owner is None:
        return (f"namespace {name} already exists and was not made by netlab (it has no netlab tag); "
                f"it belongs to someone else: rename lab {lab}, or have its owner remove it")
    tag = tag_on(name)
    if tag is not None and tags.elsewhere(tag):  # a lab up with another state folder: never stale from here
        folder = tags.folder_named(tags.tag_folder(tag) or "")
        where = f"state folder {folder}" if folder else "another state folder (NETLAB_STATE_DIR)"
        # The lab is the prefix of the namespace's name whose hash the tag names (tags.tagged_labs)
        that = next((name[:i] for i, c in enumerate(name) if c == "-" and lab_name_problem(name[:i]) is None
                     and nsmod.lab_hash(name[:i]) == owner[0]), None)
        return (f"namespace {name} already exists and belongs to "
                f"{f'lab {that}, up' if that else 'a lab up'} under {where}, not "
                f"{state_dir.STATE_ROOT} (its tag names that folder); rename lab {lab}, or take that lab down with "
                f"that folder first (`sudo NETLAB_STATE_DIR={shlex.quote(folder or 'FOLDER')} netlab down --lab "
                f"{that or 'LAB'}`)")
    other = lab_of(owner[0])
    if other is not None and other != lab:
        return (f"namespace {name} already exists and belongs to lab {other}, which is up "
                f"(see `{netlab_command('list')}`); rename lab {lab}, or take {other} down first "
                f"(`{down_command(other)}`)")
    return None


def _stale_message(name: str, lab: str, owner: tuple[str, str]) -> str:
    """Namespace ``name``, tagged by netlab for ``owner``, is a leftover: of lab ``lab``, or of a lab without
    state here; how to remove it."""
    other = lab_of(owner[0])
    if other == lab:
        why = f"it is a leftover of an earlier run of lab {lab}, not listed by its state"
        force = lab
    elif owner[0] == nsmod.lab_hash(lab):
        # The lab's state was lost, not one namespace: the run's others, its echo server and dnsmasq run on. Only
        # `down --force` takes them all, as every other command of this lab says (realize.state_errors.StateLost).
        why = f"it was made by netlab for lab {lab} in a run that has no state in {state_dir.STATE_ROOT} any more"
        force = lab
    else:
        why = f"it was made by netlab for another lab, which has no state in {state_dir.STATE_ROOT} any more"
        force = None
    if force is not None and other is None:
        how = f"take the lab down with {state_errors.force_down_hint(force)}"
    else:
        how = f"remove it (ip netns del {name}" + (f", or `netlab down --lab {force} --force`" if force else "") + ")"
    if state_dir.STATE_ROOT != state_dir.DEFAULT_STATE_ROOT and tags.tag_folder(tag_on(name)) is None:
        # An older netlab's tag names no state folder (one naming another is a lab up there: owned_message; one
        # naming this folder is this folder's, lost here, as `list` says): it may be another directory's (the
        # default's, where `list` shows such a lab), up and well, its state there.
        return (f"namespace {name} already exists: {why}; NETLAB_STATE_DIR is set, so it may belong to a lab "
                f"that is up with another state directory ({state_dir.DEFAULT_STATE_ROOT} by default): look there "
                f"first (`netlab list` without NETLAB_STATE_DIR); if it is stale, {how} and run up again")
    return f"namespace {name} already exists: {why}; it is stale: {how} and run up again"
