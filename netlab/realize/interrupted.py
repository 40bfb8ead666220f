"""A lab that an ``up`` or ``down`` killed (SIGKILL) halfway left, as ``netlab list`` and ``down`` tell it.

``up`` writes the lab's state before it makes any namespace (the write-ahead, lab/up.py), under the lab's lock,
whose file names the holder. Killed before that first write is in place, it made only the lab's folder: its lock,
and maybe the write's temporary file (state_dir.write_atomic), which is no run's work (tags.remnants): the lab is
``interrupted``, and plain ``down`` removes the folder. Killed later, the state names what it made, in phase
``creating`` (or ``deleting``, a ``down`` killed), and nobody holds the lock: ``list`` says so, and ``down``
takes it away. What a command that met part of a lab missing says of a ``down`` at work on it, or done with it,
or of a lab left ``gone``: :func:`taken_down`.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

from netlab.errors import (EnvironmentNotReady, LabBusy, LabGoingDown, LabTakenDown, NetlabError, UsageError,
                           down_way, repair_way)
# An up killed before its first state write (its own module: the state's asks it); its names, as callers import them
from netlab.realize.interrupted_up import (UP as UP, UpInterrupted as UpInterrupted, folder_names as folder_names,
                                          interrupted_up as interrupted_up, ran, up_interrupted as up_interrupted)
from netlab.realize.converging import KEY as CONVERGING, words as converging_words
from netlab.realize.state_dir import state_file
from netlab.realize.lab_lock import lab_lock_holder, lab_lock_last, unheld

if TYPE_CHECKING:
    from netlab.realize.state import LabState


STALLED = ("creating", "deleting")  # the phases of a lab an up or down is at work on


DOWN_FAILED = "down_failed"  # state.extra: the down that set phase deleting and ended with an error (lab/teardown.py)


def converge_left(state: LabState) -> bool:
    """A running lab (phase up) whose state says an ``up`` of it is at work (realize/converging.py): unless it
    is, a converge killed after its write-ahead."""
    return state.phase == "up" and (getattr(state, "extra", None) or {}).get(CONVERGING) is not None


def stalled(state: LabState) -> str | None:
    """What to do with a lab whose ``up`` (phase creating; or up, a converge: :func:`converge_left`) or ``down``
    (deleting) ended before it finished
    (killed: nobody holds the lab's lock; for a ``down``, or failed: its state names the error it ended with);
    None when it is not so. ``state`` was read earlier: an ``up`` or ``down`` at work then may have finished since
    and let the lock go, so the phase judged is the one read again with the lock taken shared (nobody at work)."""
    if state.phase not in STALLED and not converge_left(state):
        return None
    from netlab.realize.state import load_state

    with unheld(state.lab) as free:
        if not free:
            return None  # at work now (or the lab's folder went meanwhile: a down finished)
        try:
            now = load_state(state.lab)
        except NetlabError:
            return None
        if now is None or (now.phase not in STALLED and not converge_left(now)):
            return None  # finished meanwhile
        last, program = lab_lock_last(state.lab)  # "pid N (netlab up)", and a library caller's command line
    if now.phase == "up":  # a converge killed after its write-ahead: the state asks the edited topology
        record = now.extra.get(CONVERGING)
        said = record.get("changes") if isinstance(record, dict) else None
        return (f"lab {now.lab}: {ran(UP, 'that was changing it', last, program)} ended before it finished "
                f"(killed), so the lab may not be as its state asks (unfinished: "
                f"{converging_words(said if isinstance(said, list) else [])}); `{repair_way(now.lab)}` finishes it")
    if now.phase == "creating":
        if last is not None and not last.endswith(f"({UP})"):  # a later command held it last: a down that failed
            return (f"lab {now.lab}: the `{UP}` that was making it ended before it finished, and {last}, the last "
                    f"command that held the lab, did not take it away; `{down_way(now.lab)}` takes away what it "
                    f"made")
        half = ": the lab is half made" if program else ""  # what a program's user may not know it left
        # Its state names all that up was making (the write-ahead): `up --lab L` makes the rest, as status says
        return (f"lab {now.lab}: {ran(UP, 'that was making it', last, program)} ended before it finished "
                f"(killed){half}; `{repair_way(now.lab)}` finishes it, or `{down_way(now.lab)}` takes away what "
                "it made")
    down = ran("netlab down", "that was taking it down", last, program)
    failed = now.extra.get(DOWN_FAILED)
    if isinstance(failed, dict) and last is not None and last.partition(" (")[0] == f"pid {failed.get('pid')}":
        return (f"lab {now.lab}: {down} failed before it finished: {failed.get('error')}; "
                f"`{down_way(now.lab)}` finishes it once that is put right")
    return f"lab {now.lab}: {down} ended before it finished (killed); `{down_way(now.lab)}` finishes it"


# A state write of this process's own reader, by lab: (the state's version before it, after it). status records a
# pod's first CHECK since its ADD (cni/first_check.py), under the lab's lock: its own write, no other command's work.
_OWN: dict[str, tuple[object, object]] = {}


def own_write(lab: str, before: object, after: object) -> None:
    """This process's reader wrote lab ``lab``'s state (its version ``before`` became ``after``): :meth:`Seen.meanwhile`
    takes that for no change."""
    _OWN[lab] = (before, after)


@dataclass(frozen=True)
class Seen:
    """Lab ``lab`` as a reader found it as its read began: who held its lock, and its state file's version."""

    lab: str
    holder: str | None
    version: object

    def meanwhile(self, reader: str = "status") -> NetlabError | None:
        """What another command did to the lab while ``reader`` (READERS: status, break, quiz, probe, reach, trace,
        policy table) read it (an ``up`` making it, a ``down`` taking it away): what the kernel showed then is that
        command's work half done; None when nobody held or changed it."""
        from netlab.realize.state import state_version

        holder, version = self.holder or lab_lock_holder(self.lab), state_version(self.lab)
        if _OWN.get(self.lab) == (self.version, version):  # the reader's own write alone (own_write)
            version = self.version
        if holder is None and version == self.version:
            return None
        met, verdict = READERS[reader]
        if version is None:  # a down took it away meanwhile
            return UsageError(f"lab {self.lab} was taken down while {reader} read it"
                              + (f" (by {holder})" if holder else "") + "; it is not up")
        from netlab.realize.state_errors import StateGone

        down = taken_down(self.lab, f"what {reader} read of it is its work half done, {verdict}")
        if down is not None and not isinstance(down, StateGone):  # a `netlab down` at work: as probe, get, exec
            return LabGoingDown(str(down))  # still a LabBusy: a break or up --lab waits for the lock
        who = holder or lab_lock_holder(self.lab, now=False) or "another netlab command"
        now = "is" if lab_lock_holder(self.lab) else "was"
        return LabBusy(f"lab {self.lab} {now} being changed by {who} while {reader} read it: {met} then is its "
                       f"work half done, {verdict}; run {reader} again once it has finished")

    @contextmanager
    def reading(self, reader: str = "status") -> Iterator[None]:
        """A read of the lab by ``reader`` (READERS): an error that cuts it short (a namespace an up deleted and
        makes again, a read a down stopped) while another command held or changed the lab is that command's work
        half done: :meth:`meanwhile`'s error is raised in its place, as status says it; else the error itself.
        A user's mistake (a name the lab does not have, a port its destination does not serve) is no read's: its
        caller checks it from the lab's model before the read begins (trace.run.packet_ends, api.reach.probe_of).
        An error that already names the other command (a LabBusy; a down's LabTakenDown, "the probe's agent was
        stopped with the lab's other processes") is raised as itself: it says more than the re-check. StateGone
        (no namespace of the lab there, judged from the state read before the read began) is a down's work when a
        down took the lab's lock or its state meanwhile: the re-check says that down."""
        try:
            yield
        except (LabBusy, LabTakenDown):  # it names the other command already, and what it met
            raise
        except Exception:
            if (meanwhile := self.meanwhile(reader)) is not None:
                raise meanwhile from None
            raise


# What each reader of a running lab met of it, and what that is not, when another command changed the lab
# while it read (:meth:`Seen.meanwhile`): status's drift, probe's, reach's, trace's and policy table's verdicts.
READERS = {
    "status": ("what the kernel showed", "not drift"),
    "break": ("what the kernel showed", "not a fault there before the break"),  # its status read (faults_before)
    "quiz": ("what the kernel showed", "not a fault there before the quiz"),
    "probe": ("what the probes met", "not the lab's fault"),
    "reach": ("what the probe met", "not the lab's fault"),
    "policy table": ("what the probes met", "not the lab's fault"),
    "trace": ("what the packet met", "not the lab's fault"),
}


def seen(lab: str) -> Seen:
    """The lab's lock holder and state version now: taken before a read of the lab begins (:class:`Seen`)."""
    from netlab.realize.state import state_version

    return Seen(lab, lab_lock_holder(lab), state_version(lab))


def taken_down(lab: str, what: str, read_up: bool = True, killed: str | None = None) -> NetlabError | None:
    """What a command that read lab ``lab`` up and then met part of it gone (``what``: a namespace, a log, its
    processes) says when a ``netlab down`` is taking the lab away (its state says phase deleting, written before
    down stops the lab's processes and deletes its namespaces, and down holds the lab's lock) or took it away
    since (no state now): one line, exit 2, as ``status``, ``probe`` and ``get`` say it, not a fault of a running
    lab that ``up`` would repair. A lab whose namespaces are all gone while its state stays (`netlab list`'s
    phase ``gone``, realize.state.gone): StateGone, status's line, exit 3; one made in another mount namespace
    (realize/elsewhere.py): that line, exit 3, returned as well. None otherwise (up, or an up or down
    that was killed halfway: list and status say that; given ``killed``, what the caller met missing, list's line
    for it (:func:`stalled`: `down` takes it away or finishes it, no `up` makes the part again) with ``killed``
    after it, exit 2). ``read_up``: the caller read the lab's state from its file (so no state now is a lab taken
    down since)."""
    from netlab.realize.state import gone, load_state
    from netlab.realize.state_errors import StateGone

    try:
        st = load_state(lab)
        if st is not None and st.phase == "deleting":
            if lab_lock_holder(lab) is not None:
                return being_taken_down(lab, what)
            st = load_state(lab)  # nobody holds it: finished since (no state), or killed halfway (stalled)
        if st is not None and gone(st):  # every namespace of it deleted, its state left: not up, said once
            from netlab.kernel.netns import is_netns_mount
            from netlab.kernel.processes import CannotTell
            from netlab.realize.elsewhere import elsewhere

            try:
                where = elsewhere(st, is_netns_mount)  # made in another mount namespace: said where, as status does
            except CannotTell:
                where = None
            return EnvironmentNotReady(where) if where is not None else StateGone(lab, state_file(lab))
        line = stalled(st) if st is not None and killed is not None else None
        if line is not None:
            return UsageError(f"{line} ({killed})")
    except NetlabError:
        return None  # a corrupt state: not this question's to answer
    if st is None and read_up:
        return LabTakenDown(f"lab {lab} was taken down (`netlab down`) meanwhile: {what}; it is not up")
    return None


def being_taken_down(lab: str, what: str) -> LabTakenDown:
    """The line of a command that met lab ``lab`` while a ``netlab down`` takes it away (``what``: what it met)."""
    return LabTakenDown(f"lab {lab} is being taken down (`netlab down`): {what}")
