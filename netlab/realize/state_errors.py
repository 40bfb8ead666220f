"""The errors of a lab whose state cannot say what the lab made, and the way out of each.

A state file that is no valid state of its lab is corrupt (StateCorrupt); a
missing one where namespaces tagged as the lab's remain, or files in its
folder, is lost (StateLost); pods' files under /etc/netns that say they are
the lab's, with nothing else left, are left over (PodFilesLeft). Each is said
with ``down --force`` (or ``Lab(NAME).down(force=True)``), which takes away
only what proves itself the lab's: a namespace by its tag, a pod's file by its
first line (realize/ownership.py).
"""

from __future__ import annotations

import os
from typing import Sequence

from netlab.errors import EnvironmentNotReady, down_command, down_way, netlab_command
from netlab.model.naming import ETC_NETNS
from netlab.realize.state_dir import state_file


def force_down_hint(lab: str, api: bool = False) -> str:
    """The way out for a lab whose state cannot say what it made (corrupt, or lost): what proves a namespace the
    lab's is its tag, and a pod's file under /etc/netns its first line (realize/ownership.py). ``api``: the
    Python call (Lab.attach's caller has no command to type)."""
    way = f"Lab({str(lab)!r}).down(force=True)" if api else f"`{netlab_command(f'down --lab {lab} --force')}`"
    return f"{way} (it deletes only namespaces tagged as the lab's, pods' files in {ETC_NETNS} whose first " \
           "line says they are the lab's, and the files netlab wrote in the lab's folder)"


class StateCorrupt(EnvironmentNotReady):
    """A lab's state file is not a valid state of that lab: one line, and the way out."""

    def __init__(self, lab: str, path: str, why: str, api: bool = False):
        self.lab, self._args = lab, (lab, path, why)
        super().__init__(f"lab {lab}: its state file {path} is corrupt ({' '.join(why.split())}); "
                         f"take the lab down anyway with {force_down_hint(lab, api)}")

    def said_for(self, api: bool) -> StateCorrupt:
        """The same, its way out in a Python caller's words (``api``: Lab.attach) or the CLI's."""
        return StateCorrupt(*self._args, api=api)


class StateNewer(StateCorrupt):
    """A lab's state file of a later format than this netlab reads, or of a later revision of its format that holds
    what this netlab does not know: a newer netlab's (an upgrade, then a downgrade; a watcher left running across an
    upgrade). Refused as a corrupt state is (``list`` shows it so, a watcher ends),
    said as what it is. A newer release's records this netlab may ignore are no reason: they are kept, unread."""

    def __init__(self, lab: str, path: str, why: str, api: bool = False):
        self.lab, self._args = lab, (lab, path, why)
        EnvironmentNotReady.__init__(
            self, f"lab {lab}: its state file {path} was written by a newer netlab ({' '.join(why.split())}): act on "
            f"the lab with that netlab, or take it down anyway with {force_down_hint(lab, api)}")

    def said_for(self, api: bool) -> StateNewer:
        """The same, its way out in a Python caller's words (``api``: Lab.attach) or the CLI's."""
        return StateNewer(*self._args, api=api)


class StateLost(EnvironmentNotReady):
    """A lab has no state file, yet what a run of it made remains (namespaces tagged as its, files in its folder):
    its state was deleted or lost. Not "not up": the lab runs on, and only ``down --force`` knows it."""

    def __init__(self, lab: str, path: str, netns: Sequence[str], files: Sequence[str], api: bool = False):
        self.lab, self._args = lab, (lab, path, netns, files)
        if netns:
            more = f" and {len(netns) - 3} more" if len(netns) > 3 else ""
            some = (f"{len(netns)} namespaces tagged as its remain" if len(netns) > 1 else
                    "a namespace tagged as its remains")
            left = f"{some} ({', '.join(netns[:3])}{more})"
        else:
            left = f"its folder {os.path.dirname(path)} holds what a run of it left ({', '.join(files)})"
        super().__init__(f"lab {lab} has no state file ({path}), yet {left}: its state was lost; take the lab down "
                         f"with {force_down_hint(lab, api)}")

    def said_for(self, api: bool) -> StateLost:
        """The same, its way out in a Python caller's words (``api``: Lab.attach) or the CLI's."""
        return StateLost(*self._args, api=api)


class PodFilesLeft(StateLost):
    """A lab with no state file, no namespace and no folder (/run was emptied, a reboot that kept /etc, or they
    were deleted by hand) whose pods' files under /etc/netns remain, saying they are its: not up, yet not
    "nothing to do" for ``down``. As a lost state: exit 3, and ``down --force`` takes them away."""

    def __init__(self, lab: str, path: str, folders: Sequence[str], api: bool = False):
        self.lab, self._args = lab, (lab, path, folders)
        more = f" and {len(folders) - 3} more" if len(folders) > 3 else ""
        left = f"{', '.join(folders[:3])}{more}"
        way = f"Lab({str(lab)!r}).down(force=True)" if api else f"`{netlab_command(f'down --lab {lab} --force')}`"
        EnvironmentNotReady.__init__(
            self, f"lab {lab} is not up (no state file {path}, no namespace tagged as its), yet its pods' files "
            f"remain in {ETC_NETNS} ({left}): take them away with {way} (it deletes only the files whose first "
            "line says they are the lab's)")

    def said_for(self, api: bool) -> PodFilesLeft:
        """The same, its way out in a Python caller's words (``api``: Lab.attach) or the CLI's."""
        return PodFilesLeft(*self._args, api=api)


class StateNotForgotten(EnvironmentNotReady):
    """``down`` took the lab away (its namespaces, processes, pins and pods' files), but its state file could be
    neither updated nor removed (an immutable folder or file, a read-only file system): said as what happened,
    exit 3. ``list`` then shows the lab ``gone`` (none of its namespaces is there), and ``down`` again, once the
    folder may be written, forgets it."""

    def __init__(self, lab: str, removed: int, path: str, error: Exception):
        self.lab = lab
        why = str(error).removeprefix(f"cannot write {path}: ")
        super().__init__(f"lab {lab}'s namespaces are removed ({removed}), but its state file {path} could be neither "
                         f"updated nor removed ({why}); `netlab list` shows the lab `gone` until then: once the "
                         f"folder may be written, `{down_command(lab)}` forgets it")


class StateGone(EnvironmentNotReady):
    """A lab whose state file says it is up though none of the namespaces it names is there with its tag
    (`netlab list`'s phase ``gone``: a ``down`` that removed them and could not forget the state, an immutable
    folder): not up, said once, not as every namespace missing. ``down`` forgets it once the folder may be
    written; ``up`` makes it again."""

    def __init__(self, lab: str, path: str, api: bool = False):
        self.lab, self._args = lab, (lab, path)
        forget = f"`{down_way(str(lab), api)}`"
        again = f"`Lab({str(lab)!r}).repair()`" if api else f"`{netlab_command(f'up --lab {lab}')}`"
        super().__init__(f"lab {lab} is not up: none of its namespaces is there any more, yet its state file "
                         f"remains ({path}); once its folder may be written, {forget} forgets it (or {again} makes "
                         "it again)")

    def said_for(self, api: bool) -> StateGone:
        """The same, its way out in a Python caller's words (``api``: a Lab method) or the CLI's."""
        return StateGone(*self._args, api=api)


def lost_state(lab: str, pod_files: bool = False) -> StateLost | EnvironmentNotReady | None:
    """What remains of lab ``lab`` whose state file is missing (its caller found none): namespaces tagged as its,
    or its folder holding more than its lock (a run's echo server socket, logs, UTS pins); ``pod_files``: or,
    when neither does, its pods' files under /etc/netns (``down`` and ``list`` look for them: for the other
    commands such a lab is not up). None when nothing remains: the lab is simply not up. ``down`` and ``up``
    delete the state file only after the namespaces, and last of the folder but for its lock
    (lab_list.forget), so a lab on its way down is never taken for lost. A lab whose namespaces' tag names
    another state folder is up with that one (tags.StateElsewhere), not lost: its pods' files are its too."""
    from netlab.realize import tags  # the kernel's namespaces: only when one is missing

    groups = tags.tagged_namespaces(lab)
    netns = sorted(name for tag, names in groups.items() if not tags.elsewhere(tag) for name in names)
    files = tags.remnants(lab)
    if netns or files:
        return StateLost(lab, state_file(lab), netns, files)
    away = tags.state_elsewhere(lab, groups)
    if away is not None:
        return away
    if pod_files:
        folders = sorted({name for names in tags.pod_files(lab).values() for name in names})
        if folders:
            return PodFilesLeft(lab, state_file(lab), folders)
    return None
