"""A lab's pod files in ``/etc/netns`` taken away: only netlab's own (services/netns_files.py says how a file is
known as netlab's), a namespace's files and then its directory, several namespaces side by side.

``down`` and ``up`` (a pod that goes) call :func:`stop`; ``down`` may begin with :class:`EarlyRemove`, a thread that
takes the files away while the lab's processes stop and its namespaces are deleted.
"""

from __future__ import annotations

from netlab.kernel.threads import Background, side_by_side
from netlab.services import netns_files as nf

# A lab that goes takes its pods' files and directories away, a namespace's in one of a few threads: an unlink
# or rmdir mostly waits for the file system (~0.1 ms each on an ext4 /etc), not for a core.
REMOVE_WORKERS = 4


# The files of the namespaces that go, by namespace, each as (kind, its recorded status).
Going = dict[str, list[tuple[str, str]]]


def _going(rec: dict, netns_names: set[str], everything: bool) -> tuple[Going, set[str]]:
    """What the records name of the namespaces that go (``everything``: all), and which of them have a
    directory netlab made (nothing of ours is left in it once their files go). The records are not changed."""
    going: Going = {}
    for kind in nf.FILES:
        for netns in [n for n in rec[kind] if everything or n in netns_names]:
            going.setdefault(netns, []).append((kind, rec[kind][netns]))
    return going, {netns for netns in going if netns in rec["dirs"]}


def _forget(rec: dict, going: Going, dirs: set[str]) -> None:
    """Take out of the records what was taken away (an entry recorded since, with another status, stays)."""
    for netns, files in going.items():
        for kind, status in files:
            if rec[kind].get(netns) == status:
                rec[kind].pop(netns)
        if netns in dirs:
            rec["dirs"].pop(netns, None)


def _take_away(lab_name: str, going: Going, dirs: set[str]) -> list[str]:
    """Each namespace's files, then its directory, by one of REMOVE_WORKERS threads, side by side; the paths of
    the files removed, in the records' order."""
    removed: dict[str, list[str]] = {}

    def one(netns: str) -> None:
        paths = [nf.remove_ours(lab_name, kind, netns, status) for kind, status in going[netns]]
        removed[netns] = [path for path in paths if path is not None]
        if netns in dirs:
            nf.remove_dir(lab_name, netns)

    side_by_side(one, list(going), REMOVE_WORKERS)
    return [path for netns in going for path in removed.get(netns, [])]


def stop(lab_name: str, rec: dict, netns_names: set[str], everything: bool,
         early: EarlyRemove | None = None) -> list[str]:
    """Namespaces about to go (``everything``: the whole lab): every file of theirs the records name, and
    then the directory netlab made for them, side by side (:func:`_take_away`); the records change here,
    in the caller's thread. ``early``: what a thread began (:class:`EarlyRemove`), waited for first. Returns
    the paths of the files removed."""
    removed: list[str] = []
    if early is not None:
        removed += early.join()
        _forget(rec, early.going, early.dirs)
    going, dirs = _going(rec, netns_names, everything)  # after an early removal: nothing new, as a rule
    _forget(rec, going, dirs)
    removed += _take_away(lab_name, going, dirs)
    nf.tidy(lab_name, rec)  # the other directories that hold nothing of ours, and /etc/netns when it is empty
    return removed


class EarlyRemove:
    """Every pod file and directory the records name, taken away by a thread while ``down`` stops the lab's
    processes and deletes its namespaces (services.lifecycle.stop_early): they need neither, and at 500 pods
    they are 1,000 unlinks and 500 rmdirs, 0.07 to 0.2 s of waits on this VM's ext4 by the hour.

    The thread changes no record: if the process dies meanwhile, the saved state still names every file, and
    the next ``down`` takes away what is left. :func:`stop` waits for it and then changes the records."""

    def __init__(self, lab_name: str, rec: dict):
        self.going, self.dirs = _going(rec, set(), everything=True)
        self._work = Background(_take_away, lab_name, self.going, self.dirs, name="netlab-pod-files-rm")

    def join(self) -> list[str]:
        """Wait for the thread; the paths of the files it removed, or raises what stopped it."""
        return self._work.join()
