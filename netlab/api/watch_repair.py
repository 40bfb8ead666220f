"""``netlab up --watch``'s repair: it converges the lab to what it must be once the repair holds the lab's lock.

The watcher checks the lab (the kernel against the plan of the lab's saved topology), then repairs it with the
same ``up`` a user would run, which waits for the lab's lock. Another command may take that lock in between: an
``up -t FILE`` of the watched file, edited, or an ``up --lab`` after ``netlab impair``. Its change is the lab's
desired state from then on; a repair of the lab as read before the lock would undo it (recreating a pod the
file no longer has, removing an impairment). So the repair reads the lab's state again under the lock, and when
another command changed it, converges to that, and only if the kernel still differs from it. A change of the
watched file is read once the apply holds the lab, for the same reason (:func:`apply_file`).

Whom the lock was waited for is not LabLock's own "waiting for ..." line, which would land in the watcher's log
outside its form: the lock is taken ``quiet``, and the watcher's line says it (watch_lines.waited_words).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

from netlab.api import watch_file
from netlab.api.topology import Loaded, load
from netlab.api.watch_lines import waited_words
from netlab.cni import edited
from netlab.workload import reconfigure
from netlab.errors import NetlabError, TopologyError
from netlab.feature import Feature, Reconfigure
from netlab.features import default_features
from netlab.kernel.live import LiveKernel
from netlab.lab import status as lab_status
from netlab.lab import up as lab_up
from netlab.model.lab import Lab
from netlab.realize.state import LabState, load_state
from netlab.realize.lab_lock import LabLock

FileId = watch_file.FileId
file_id = watch_file.file_id  # the topology file's and the files it includes


class NotFollowed(NetlabError):
    """Another command made the lab from another topology than the watched one while the repair waited for it."""


@dataclass
class Reading:
    """The watched file as :func:`apply_file` read it under the lab's lock: its id, the topology (None: the file
    is not valid, what load raised is raised), and whom the lock was waited for (the line's words). ``writing``
    says whether a save of the file is open (watch_file.FileWrites.writing); ``halfway``: a save had begun and was
    not done when the file was read, so what was read may be its first part (nothing is applied)."""

    path: str
    writing: Callable[[], bool] = lambda: False
    file_id: FileId = None
    loaded: Loaded | None = None
    waited: list[str] = field(default_factory=list)
    halfway: bool = False


def drift(state: LabState) -> list[str]:
    """How the kernel differs from the lab as ``state`` says it. Containers are not judged here: the watcher's
    restartPolicy and back-off judge them (watch_restart.py)."""
    kernel = LiveKernel()
    try:
        return lab_status.status(state, kernel, [f for f in default_features() if f.name != "workload"]).drift
    finally:
        kernel.close()


def refused(state: LabState, drift: list[str]) -> str | None:
    """What the watcher does when ``drift`` holds pods attached with a conflist edited in place since (a line that is
    a feature.Reconfigure: cni/edited.py): nothing, as the kubelet leaves running pods on the config they were
    attached with; its plain up would refuse the lab at every round (it would mix two configs), so the line names
    the one command that re-attaches them (`up --watch` takes no --reconfigure), which the watcher then follows;
    for a conflist edited into one that cannot be read (not JSON, deleted), fixing the file first.
    None: a plain up repairs the drift."""
    if not any(isinstance(line, Reconfigure) for line in drift):
        return None
    if any(isinstance(line, edited.Unreadable) for line in drift):  # fixed first, then re-attached (cni/edited.drift)
        return (f"nothing: a plain up refuses the lab while its conflist cannot be read (its pods run on with the "
                f"config they were attached with); fix the file (or put the old config back); once it is valid, "
                f"`{reconfigure.repair_up(state)}` re-attaches them (this watcher follows it); until then the watcher "
                f"repairs nothing of the lab")
    return (f"nothing: a plain up refuses a lab whose pods were attached with a config edited since; "
            f"`{reconfigure.repair_up(state)}` re-attaches them (this watcher follows it), or put the old config back; "
            f"until then the watcher repairs nothing of the lab")


def repair(read: LabState, lab: Lab, follows: Callable[[LabState], bool], restart: bool,
           features: Sequence[Feature], waited: list[str], heard: Callable[[], None] | None = None
           ) -> tuple[LabState, Lab, lab_up.UpResult | None]:
    """Repair the lab as ``read`` says it (``lab``, resolved), or as another command left it since, when
    ``follows(state)``: the watcher follows it (one made from another topology than the watched one is not
    followed: NotFollowed, and the watcher stops). Returns (the state, the lab repaired to, what up did), None for
    the last when the kernel is as that command left it and no container is to ``restart``. ``waited`` gets the
    words of a wait for the lab's lock; ``heard`` is called once the repair has read the lab, before it changes
    anything (lab_up.up_held)."""
    kernel = LiveKernel()
    try:
        with LabLock(read.lab, "netlab up", quiet=True) as lock:
            waited += waited_words(lock.waited, lock.waited_for)
            now = load_state(read.lab)
            if now is None:
                raise lab_up.LabGone(f"lab {read.lab} is not up (taken down meanwhile); nothing repaired")
            if now != read:
                if not follows(now):
                    raise NotFollowed(f"lab {read.lab} was made from another topology meanwhile; nothing repaired")
                read, lab = now, now.resolved()
                if not restart and not drift(now):
                    return now, lab, None
            return read, lab, lab_up.up_held(lab, kernel, features, read.source, heard=heard)
    finally:
        kernel.close()


def apply_file(reading: Reading, lab_name: str, features: Sequence[Feature]) -> lab_up.UpResult | None:
    """Apply the watched file as it is once the lab's lock is held (read before, another change of it, or another
    command's change of the lab, could come between the reading and the lock: the stale reading would be
    applied). ``reading`` gets the file's id, read before the file (a change after it is seen by the next look),
    and its topology; None when it names another lab than ``lab_name``, or when a save was halfway through as it
    was read (``reading.halfway``): nothing applied. LabGone when the lab was taken down meanwhile."""
    from netlab import doctor
    from netlab.api.lifecycle import check_conflist, moot_checks

    with LabLock(lab_name, "netlab up", quiet=True) as lock:
        reading.waited = waited_words(lock.waited, lock.waited_for)
        if load_state(lab_name) is None:  # a `down` held the lab: the watcher ends, it makes no lab anew
            raise lab_up.LabGone(f"lab {lab_name} is not up (taken down meanwhile); nothing applied")
        reading.file_id = file_id(reading.path)
        reading.loaded = None
        try:
            loaded = load(reading.path)  # TopologyError, NetlabError: not valid (``loaded`` stays None)
        finally:
            # A save that truncates the file, then writes it, begun since the watcher's look (while it waited for
            # the lab): its writer has the file open still, or the file changed while it was read. Its first part
            # may be a valid topology, not the user's edit
            reading.halfway = reading.writing() or file_id(reading.path) != reading.file_id
        if reading.halfway:
            return None
        reading.loaded = loaded
        if loaded.lab.name != lab_name:
            return None
        try:  # the plugins asked VERSION as plain up asks them: one of the user's own that fails is the file's
            answered = check_conflist(loaded.lab, loaded.source)  # validate's line, not the doctor's machine line
        except TopologyError:
            reading.loaded = None  # not valid, as plain up (exit 2) and validate say it: nothing applied
            raise
        # as plain up checks the machine for what the lab needs, and leaves out what it does not (pod-files on a
        # read-only /etc when nothing is to be written in /etc/netns)
        with doctor.required(loaded.lab, moot=moot_checks(loaded.lab) + answered):
            kernel = LiveKernel()
            try:
                return lab_up.up_held(loaded.lab, kernel, features, loaded.source)
            finally:
                kernel.close()
