"""Take a lab down: exactly what its state and its tags prove it made, safe to run twice.

``down`` reads the tags of the namespaces the state lists, stops the lab's
processes (they must be gone before the namespaces are), then unmounts the
namespaces, several side by side (kernel.delete_netns_many). What needs
neither (the pods' files in /etc/netns, netlab.services.netns_files) is taken
away by a thread meanwhile, begun first and waited for last. It deletes no
veth: the kernel destroys a namespace, and its devices, once nothing holds
it; the next ``up`` makes new namespaces, so it never meets an old device.

A namespace that goes while the lab stays (``up`` converging to a topology
without it, or taking back a failed run) loses its veths first
(:func:`delete_namespaces`, on the bridge side: their peers go with them), so
that a quick ``up`` that brings it back does not meet its old veth in the node.

Once ``down`` begins to change anything, SIGINT and SIGTERM wait for it (signals.held): stopped halfway (a second
Ctrl-C, the SIGTERM after a CI runner's SIGINT), it left some namespaces unmounted and others not, and the
state that names them. Running ``down`` again finishes such a lab (the state still names what is left, each
namespace checked by its tag), but nobody knew it had to. The work held is bounded: a process's stop is its
grace then SIGKILL, a CNI DEL has its timeout, an unmount is a system call. Waiting for the lock, and reading
the state (and the tags --force looks for), are not held: a signal then stops ``down`` before it changed anything.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from netlab import signals
from netlab.errors import EnvironmentNotReady, NetlabError
from netlab.model.naming import is_netns
from netlab.kernel.base import Kernel
from netlab.kernel import testhooks
from netlab.kernel.kill import Stopped, other_line
from netlab.cni import host_writes
from netlab.feature import Feature, stop_taken
from netlab.realize.elsewhere import refuse_elsewhere
from netlab.lab.ownership import tag_for
from netlab.realize import ownership
from netlab.realize.interrupted import DOWN_FAILED, folder_names, interrupted_up
from netlab.realize.state import LabState, load_state
from netlab.realize.state_errors import StateCorrupt, StateNotForgotten, lost_state
from netlab.realize.lab_list import forget, state_temps
from netlab.realize.state_dir import lab_dir, state_file
from netlab.realize.lab_lock import LabLock

Progress = Callable[[str, int, int], None]


@dataclass
class DownResult:
    lab: str
    removed_netns: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    was_up: bool = True
    # What the features could not undo: a CNI plugin's DEL that failed (what it made may be left in the node's
    # namespace, which goes anyway), a process that outlived SIGKILL. Said as warnings; down goes on.
    problems: list[str] = field(default_factory=list)
    # The pods' files under /etc/netns that down removed, by path: those the lab's state recorded, and with
    # --force those only their first line proved the lab's (no state, no namespace of it named them: /run was
    # emptied, its namespaces deleted).
    removed_pod_files: list[str] = field(default_factory=list)
    # The processes not the lab's (a user's `netlab exec`, nsenter) stopped with its namespaces (kill.Stopped):
    # `down -o json`'s stopped_processes, said beside what was removed, not as problems.
    stopped: list[Stopped] = field(default_factory=list)


def down(lab_name: str, kernel: Kernel, features: Sequence[Feature] = (), wait: float = 60.0,
         progress: Progress | None = None, force: bool = False) -> DownResult:
    """Delete everything the lab's state proves it created. Safe to run twice.

    ``force``: the state is corrupt or lost; the namespaces tagged as the lab's go too (realize/ownership.py).
    SIGINT and SIGTERM wait until the lab is down, then the first is raised by the caller's handler (its
    exception comes from here, the result lost: the lab is down, its state gone).
    """
    signals.check()  # a SIGTERM whose exception was swallowed before: not taken down halfway, not begun
    cut = interrupted_up(lab_name) is not None  # asked before this down's lock names it instead of that up
    changing = _FromFirstChange()
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(LabLock(lab_name, "netlab down", wait=wait))
        except EnvironmentNotReady:
            unlocked = _not_up_unlocked(lab_name, force)  # a full or read-only state folder: no lab folder to lock
            if unlocked is None:
                raise
            return unlocked
        held.enter_context(changing)
        if force:  # a lab made in another mount namespace, its state readable: --force removes nothing here either
            refuse_elsewhere(_readable(lab_name), kernel.netns_mounted)  # (its placeholders, its state: not its)

            def down_one(st: LabState, tag: str) -> DownResult:
                changing.begin()
                return teardown(kernel, features, st, tag, progress)

            left: list[str] = []
            result = ownership.force_down(lab_name, down_one, tag_for, changing.begin, left)
            if result is not None:  # each file once (a stand-in's records and its first line may both name it)
                result.removed_pod_files = sorted(set(result.removed_pod_files))
            return result or DownResult(lab=lab_name, was_up=False, skipped=left)
        state = load_state(lab_name)
        if state is None:
            lost = lost_state(lab_name, pod_files=True)
            if lost is not None:  # not "nothing to do": the lab runs on without its state, or its pods' files
                raise lost  # remain; --force takes them
            # An up killed before its first state write was in place left its folder (its lock, maybe that write's
            # temporary file), nothing else: the write-ahead names every namespace before one exists (netlab
            # list: interrupted). Taken away, it is said as a lab taken down.
            cut = cut or bool(state_temps(folder_names(lab_name)))
            changing.begin()
            left = forget(lab_name)
            return DownResult(lab=lab_name, was_up=cut, skipped=left)
        refuse_elsewhere(state, kernel.netns_mounted)  # its namespaces are mounts there: none removed here
        changing.begin()
        return teardown(kernel, features, state, tag_for(state), progress)


def _readable(lab: str) -> LabState | None:
    """The lab's state, or None where it is lost or corrupt (what --force is for: ownership.force_down)."""
    try:
        return load_state(lab)
    except StateCorrupt:
        return None


def _not_up_unlocked(lab: str, force: bool) -> DownResult | None:
    """``down`` of lab ``lab`` whose lock cannot be taken because its folder, not there, cannot be made (a full or
    read-only state folder): without a folder it has no state, so when nothing else of it remains (no namespace
    tagged as its, no pods' files: what ``down`` looks for when it finds no state) it is simply not up, nothing
    to do, as on a writable folder; a lab whose state is lost is said so (plain ``down``'s line). None otherwise
    (its folder is there, or --force has something to take away: the lock's own error stands)."""
    try:
        if os.path.lexists(lab_dir(lab, create=False)):
            return None
    except (NetlabError, OSError):
        return None
    lost = lost_state(lab, pod_files=True)
    if lost is not None and not force:
        raise lost
    return None if lost is not None else DownResult(lab=lab, was_up=False)


class _FromFirstChange:
    """SIGINT and SIGTERM held (signals.held) from down's first change to its end, not before: while down only
    reads (the state, the lost state's traces, the tags --force looks for) a signal stops it at once, nothing
    changed. Held from the lock on, a read that blocked (a hung NFS /run, a FIFO at the state file) could only
    be stopped with SIGKILL."""

    def __init__(self) -> None:
        self._held = contextlib.ExitStack()
        self.begun = False

    def begin(self) -> None:
        if not self.begun:
            signals.check()  # a signal whose exception a finalizer swallowed while down read: nothing changed
            self._held.enter_context(signals.held())
            self.begun = True

    def __enter__(self) -> _FromFirstChange:
        return self

    def __exit__(self, *exc: Any) -> bool:
        return bool(self._held.__exit__(*exc))


def stop_features(features: Sequence[Feature], state: LabState, names: Iterable[str], everything: bool = False,
                  stopped: list[Stopped] | None = None, taken: bool = False) -> list[str]:
    """What the features' stops of these namespaces said (a process that outlived SIGKILL, a CNI DEL that failed),
    in their order. The processes not the lab's that they stopped (kill.Stopped) are added to ``stopped``;
    without it (a rollback's stops) each is said as a line after its feature's (kill.other_line). ``taken``: the
    names hold another's namespaces now (feature.stop_taken)."""
    names = list(names)
    out: list[str] = []
    for feature in features:
        out += stop_taken(feature, state, names) if taken else feature.stop(state, names, everything=everything)
        out += took(state, stopped)
    return out


def took(state: LabState, stopped: list[Stopped] | None) -> list[str]:
    """The processes not the lab's that the features' stops stopped since last asked (``state.stopped_others``),
    moved to ``stopped``; without it, their lines (a rollback's words)."""
    gone, state.stopped_others = state.stopped_others, []
    if stopped is None:
        return [other_line(p) for p in gone]
    stopped += gone
    return []


def delete_namespaces(kernel: Kernel, names: Iterable[str]) -> None:
    for name in names:
        if kernel.netns_mounted(name):
            kernel.delete_veths(name)
        kernel.delete_netns(name)


def teardown(kernel: Kernel, features: Sequence[Feature], state: LabState, tag: str,
             progress: Progress | None = None, said: bool = False) -> DownResult:
    """The lab of ``state`` taken down. ``said``: the processes not the lab's that its stops stopped are said
    among its problems, a line each (a rollback's words), not listed in its ``stopped``."""
    result = DownResult(lab=state.lab)
    valid = []
    for name in list(state.netns):
        if not is_netns(name):
            result.skipped.append(f"{name!r}: not a valid namespace name")
            continue
        valid.append(name)
    tags = read_tags(kernel, state.lab, valid)  # before any change: what cannot be read stops it here
    state.phase, state.tearing_down = "deleting", True
    state.extra.pop(DOWN_FAILED, None)  # an earlier down's error: this one is at work now
    state.save(best_effort=True)  # a full disk must not keep a lab up: the tags prove what is ours
    host = host_writes.entries() if host_writes.watched(state) else None  # before the plugins' DELs
    try:
        _stop_all(kernel, features, state, (valid, tags, tag), progress, result, None if said else result.stopped)
        result.problems += host_writes.left(state, host)
    except Exception as exc:  # said by the caller; the state says it too, for `list`: not "killed" (stalled)
        state.extra[DOWN_FAILED] = {"pid": os.getpid(), "error": (str(exc) or type(exc).__name__)[:500]}
        state.save(best_effort=True)
        raise
    testhooks.fault_point("down-deleted")  # its namespaces gone, its state (phase deleting) kept, the lock held
    result.skipped += forget(state.lab)
    if state.unsaved is not None and os.path.lexists(state_file(state.lab)):  # the lab is gone, its state stays
        raise StateNotForgotten(state.lab, len(result.removed_netns), state_file(state.lab), state.unsaved)
    return result


def _stop_all(kernel: Kernel, features: Sequence[Feature], state: LabState,
              read: tuple[list[str], dict[str, str | None], str], progress: Progress | None,
              result: DownResult, stopped: list[Stopped] | None) -> None:
    # What needs neither the lab's processes nor its namespaces (the pods' files in /etc/netns: a few waits on
    # the file system each) begins now and is waited for last, by that feature's stop.
    early = {feature.name: feature.stop_early(state) for feature in features}
    try:
        _teardown(kernel, [f for f in features if early[f.name] is None], state, read, progress, result, stopped)
    finally:
        for feature in features:
            if early[feature.name] is not None:
                result.problems += feature.stop(state, [], everything=True, early=early[feature.name])
                result.problems += took(state, stopped)
        result.removed_pod_files += sorted(state.removed_files)  # the pods' /etc/netns files the features took away


def read_tags(kernel: Kernel, lab: str, names: Sequence[str]) -> dict[str, str | None]:
    """The tags of the namespaces ``names`` that are mounted. One that cannot be read (EMFILE at the open-files
    limit, EPERM) is no answer: not "not this lab's", which would leave it behind and delete the state that names
    it (``down`` under ``ulimit -n 12`` said "is down", exit 0). The lab is then left as it is, state and all."""
    try:
        return kernel.read_tags([name for name in names if kernel.netns_mounted(name)])
    except OSError as exc:
        raise TagsUnreadable(f"lab {lab}: cannot tell which namespaces are its own: reading their tags failed: "
                             f"{exc.strerror or exc}; nothing of it was taken down, its state is kept") from exc


class TagsUnreadable(EnvironmentNotReady):
    """The lab's namespaces' tags could not be read: nothing of the lab was changed (exit 3)."""


def _teardown(kernel: Kernel, features: Sequence[Feature], state: LabState,
              read: tuple[list[str], dict[str, str | None], str], progress: Progress | None,
              result: DownResult, stopped: list[Stopped] | None) -> None:
    mine: list[str] = []
    valid, tags, tag = read
    for name in valid:
        if name in tags and tags[name] == tag:
            mine.append(name)
        elif kernel.remove_placeholder(name):
            result.removed_netns.append(name)
        elif kernel.netns_exists(name):
            result.skipped.append(f"{name}: exists but is not this lab's (no matching tag); left alone")
    result.problems += stop_features(features, state, mine, everything=True, stopped=stopped)
    testhooks.fault_point("down-stopped")  # its containers stopped, their UTS pins gone, the namespaces not yet
    if progress and mine:
        progress("namespaces", 0, len(mine))
    kernel.delete_netns_many(mine)
    result.removed_netns += mine
