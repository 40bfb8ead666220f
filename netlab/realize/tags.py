"""A lab's namespaces by their netlab tag, the files a run left in its folder, and its pods' files under
/etc/netns: what proves a lab is there when its state cannot (realize/ownership.py, and realize/state.py for a
state file that is missing).
"""

from __future__ import annotations

import os
import re
import stat
from typing import Iterable

from netlab.kernel import netns as nsmod
from netlab.model.naming import ETC_NETNS, is_netns, lab_name_problem, pod_file_marker
from netlab.realize import state_dir

_TAG = re.compile(r"^netlab:([0-9a-f]{8}):([0-9a-f]{8})$")


def tag_owner(tag: str | None) -> tuple[str, str] | None:
    """``netlab:<lab hash>:<run hash>`` -> (lab hash, run hash); None for anything else."""
    m = _TAG.fullmatch(tag) if tag else None
    return (m.group(1), m.group(2)) if m else None


def tagged_namespaces(lab: str) -> dict[str, list[str]]:
    """Namespaces ``<lab>-*`` tagged as this lab's, grouped by their full tag (one per run)."""
    out: dict[str, list[str]] = {}
    for name in nsmod.list_netns():
        if not name.startswith(lab + "-"):
            continue
        if not is_netns(name):
            continue
        try:
            tag = nsmod.read_tag(name)
        except (OSError, ValueError):
            continue
        owner = tag_owner(tag)
        if owner is not None and owner[0] == nsmod.lab_hash(lab):
            out.setdefault(tag, []).append(name)  # type: ignore[arg-type]
    return out


def remnants(lab: str) -> list[str]:
    """What the lab's folder holds besides its lock, its state file and the temporary files of its writes (an
    ``up`` killed in its first state write, before any namespace: realize/interrupted.py)."""
    try:
        names = os.listdir(state_dir.lab_dir(lab, create=False))
    except OSError:
        return []
    return sorted(set(names) - {state_dir.LOCK_FILE, state_dir.STATE_FILE} - set(state_dir.state_temps(names)))


# A pod's files in /etc/netns/<pod namespace>/ (services/netns_files.py writes them), by their record's key.
POD_FILES = {"resolv": "resolv.conf", "hosts": "hosts"}
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
HEAD = 64  # bytes of a pod's file read for netlab's first line: "# netlab <lab>:", a lab name has <= 24


def pod_files(lab: str, names: Iterable[str] | None = None) -> dict[str, list[str]]:
    """By record key (``resolv``, ``hosts``), the pod namespaces whose file under /etc/netns says it is lab
    ``lab``'s: its first line is netlab's for exactly this lab (naming.pod_file_marker: lab ``ab``'s is
    neither ``ab-x``'s nor ``abc``'s). ``names``: the namespaces to look at; None: every folder
    ``/etc/netns/<lab>-*``.

    A pod's files outlive its lab's state and namespaces (/run is a tmpfs, /etc is not; a user deletes them by
    hand): their first line is then the only proof of whose they are. Nothing is followed through a symlink:
    /etc/netns and the folder are opened as directories that are not symlinks, the file as a regular file that
    is not one (a FIFO is never waited on)."""
    marker = pod_file_marker(state_dir.check_lab_name(lab, "lab name")).encode()
    found: dict[str, list[str]] = {kind: [] for kind in POD_FILES}
    for name, heads in _pod_heads(names, lambda name: name.startswith(lab + "-")):
        for kind, head in heads.items():
            if head.startswith(marker):
                found[kind].append(name)
    return found


def pod_file_labs(skip: Iterable[str] = ()) -> list[str]:
    """The labs the pods' files under /etc/netns say they are of (netlab's first line names the lab, and the
    folder is one of that lab's, ``<lab>-*``), read in every folder but those of the namespaces in ``skip``
    (the pods of the labs with a state: theirs)."""
    skip = set(skip)
    prefix = pod_file_marker("")[:-1].encode()  # "# netlab "
    labs: set[str] = set()
    for name, heads in _pod_heads(None, lambda name: name not in skip):
        for head in heads.values():
            said, colon, _ = head[len(prefix):].partition(b":") if head.startswith(prefix) else (b"", b"", b"")
            lab = said.decode(errors="replace")
            if colon and lab_name_problem(lab) is None and name.startswith(lab + "-"):
                labs.add(lab)
    return sorted(labs)


def _pod_heads(names: Iterable[str] | None, wanted) -> list[tuple[str, dict[str, bytes]]]:
    """(namespace, {kind: the first HEAD bytes of its file}) of the folders /etc/netns/<namespace> named by
    ``names`` (None: every one) whose name is a namespace's and that ``wanted`` takes, in name order; a
    folder or file that is a symlink, or not a directory or regular file, is left out."""
    try:
        etc = os.open(ETC_NETNS, _DIR)
    except OSError:  # none, or a symlink: nothing there is ours
        return []
    out: list[tuple[str, dict[str, bytes]]] = []
    try:
        if names is None:
            names = [entry.name for entry in os.scandir(etc)]
        for name in sorted(n for n in names if is_netns(n) and wanted(n)):
            try:
                folder = os.open(name, _DIR, dir_fd=etc)
            except OSError:  # gone, not a directory, or a symlink (ELOOP)
                continue
            try:
                heads = {kind: _head(folder, file) for kind, file in POD_FILES.items()}
            finally:
                os.close(folder)
            out.append((name, {kind: head for kind, head in heads.items() if head is not None}))
    except OSError:
        pass
    finally:
        os.close(etc)
    return out


def _head(folder: int, file: str) -> bytes | None:
    """The first HEAD bytes of ``file`` in directory ``folder`` when it is a regular file; None otherwise."""
    try:  # a device or FIFO is not even opened; a symlink put there meanwhile is refused by the open (ELOOP)
        if not stat.S_ISREG(os.stat(file, dir_fd=folder, follow_symlinks=False).st_mode):
            return None
        fd = os.open(file, _FILE, dir_fd=folder)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.pread(fd, HEAD, 0)
    except OSError:
        return None
    finally:
        os.close(fd)
