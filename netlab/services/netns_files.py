"""The files netlab writes for pods in ``/etc/netns/<pod namespace>/``, and how it keeps them its own.

``ip netns exec`` bind-mounts every file of ``/etc/netns/<namespace>/`` over the file of that name in ``/etc``
(netlab's containers and ``exec`` do the same: netlab.kernel.spawning.enter_pod_here). That is how a pod gets the
files the kubelet manages for it: ``resolv.conf`` (lifecycle.py, the cluster DNS) and ``hosts`` (hosts.py).

Every file here is written with the same care:

- The services record holds one map per file, {namespace name: "intent" |
  "created"} (``resolv``, ``hosts``), and the directories netlab made
  (``dirs``, by namespace name; ``etc_netns``: ``/etc/netns`` itself). An
  entry is recorded ("intent") and saved before the file or directory is
  made, and marked "created" after, as namespaces are: an ``up`` killed in
  between leaves nothing ``down`` misses.
- The records hold namespace names, never paths: every path is derived from
  a checked name of this lab (``<lab>-...``, netlab.model.naming.check_netns).
- A file is written whole when new (``O_EXCL``) and rewritten in place (same
  inode) when it differs, so a container that has it mounted sees the new
  content; no symlink is ever followed, no FIFO or directory ever read.
- ``up`` rewrites a file that starts with netlab's line for this lab
  (:func:`marker`), or that netlab created (an edited file is drift, repaired
  like any other); a file someone else made is left alone. ``down`` removes
  only files that start with netlab's line for this lab (or are empty, if a
  create was cut short): a file a person rewrote entirely is theirs. A
  directory goes only when no file of netlab's is recorded in it any more,
  and only when it is empty.
- ``/etc/netns`` is shared by every lab. The lab that made it may go first
  while others still have directories there, so netlab marks the directory
  it makes (an extended attribute, which goes with the directory): the last
  lab to leave it empty removes it. A directory made by someone else has no
  mark and stays; on a filesystem without user attributes only the lab that
  made it removes it, as before.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import TYPE_CHECKING

from netlab.feature import StartResult
from netlab.kernel import testhooks
from netlab.kernel.threads import Background
from netlab.model.files import Unreadable, read_regular
from netlab.model.naming import ETC_NETNS, check_netns, is_netns, pod_file_marker

if TYPE_CHECKING:
    from collections.abc import Iterable

    from netlab.realize.state import LabState

MADE_BY_NETLAB = "user.netlab.made"  # the mark on an /etc/netns netlab made (an extended attribute)
# The record's key of each file, and the file's name in /etc/netns/<namespace>/ (and in /etc).
FILES = {"resolv": "resolv.conf", "hosts": "hosts"}
READ_MAX = 16 << 20  # bytes of a pod's file read back (netlab writes a few hundred; past this it differs anyway)
# The modes the kubelet gives a pod's files and their folder, whatever the umask of the netlab that made them (a
# `umask 077` made them 0600: a pod's process of another user could not resolve a name).
FILE_MODE, DIR_MODE = 0o644, 0o755

# What sync is asked to write: {namespace: (pod name, the file's text)}.
Wanted = dict[str, tuple[str, str]]


# --- names and paths -----------------------------------------------------------------


def lab_netns(lab_name: str, netns: str) -> bool:
    """A namespace name of this lab (``<lab>-...``, a safe name): the only names paths are derived from."""
    return netns.startswith(f"{lab_name}-") and is_netns(netns)


def lab_wanted(lab_name: str, want: Wanted) -> Wanted:
    """The entries of ``want`` whose namespace is this lab's (:func:`lab_netns`): the only ones written."""
    return {netns: v for netns, v in want.items() if lab_netns(lab_name, netns)}


def netns_dir(netns: str) -> str:
    return os.path.join(ETC_NETNS, check_netns(netns))


def file_path(netns: str, kind: str) -> str:
    """``/etc/netns/<netns>/<file>`` of a record key (``resolv``, ``hosts``)."""
    return os.path.join(netns_dir(netns), FILES[kind])


def marker(lab_name: str) -> str:
    """netlab's first line in a file it writes for this lab (clusterdns.resolv_conf and hosts.hosts_file
    begin with it; naming.pod_file_marker)."""
    return pod_file_marker(lab_name)


# --- reading and writing, never through a symlink ------------------------------------------


def owner(path: str, lab_name: str, dir_fd: int | None = None) -> str:
    """Whose file is at ``path`` (in directory ``dir_fd``, when given): "absent", "ours" (netlab's first line for
    this lab), "empty", or "other" (anything else, a symlink, a FIFO or a directory included: never followed,
    never read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except FileNotFoundError:
        return "absent"
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO):
            return "other"
        raise
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return "other"
        head = fh.read(len(marker(lab_name).encode()) + 1)
    if not head:
        return "empty"
    return "ours" if head.decode(errors="replace").startswith(marker(lab_name)) else "other"


def read(path: str) -> str | None:
    """The text of a pod's file (never through a symlink, never from a FIFO); None when there is none to read."""
    try:
        return read_regular(path, READ_MAX, follow=False).decode(errors="replace")
    except Unreadable:
        return None


def seen(netns: str) -> dict[str, tuple[str, str | None]]:
    """A pod's /etc/resolv.conf and /etc/hosts as its containers see them (``inspect POD``): ``ip netns exec``
    and netlab exec mount each file of /etc/netns/<netns>/ over /etc, so netlab's file there when there is
    one, else the host's own. Path in the pod -> (where it is kept, its content; None: cannot be read)."""
    out: dict[str, tuple[str, str | None]] = {}
    for kind, name in FILES.items():
        in_pod, kept = os.path.join("/etc", name), file_path(netns, kind)
        if os.path.lexists(kept):
            out[in_pod] = (kept, read(kept))
            continue
        try:  # the host's: a symlink followed (/etc/resolv.conf often is one), as the pod's mounts see it
            out[in_pod] = (in_pod, read_regular(in_pod, READ_MAX, follow=True).decode(errors="replace"))
        except Unreadable:
            out[in_pod] = (in_pod, None)
    return out


# How many times a directory another lab removes while this one makes it is made again. /etc/netns is
# removed only when empty, by a lab leaving it, and this lab's first directory there keeps it: one more
# round is nearly always enough.
REMADE = 8


def make_dir(path: str) -> bool:
    """mkdir; True when this call made it, False when a directory was there. Never a symlink. A directory
    that was there when mkdir looked and gone when lstat looked (another lab left /etc/netns empty and
    removed it in between) is made."""
    for _ in range(REMADE):
        try:
            os.mkdir(path, DIR_MODE)
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:  # not the umask's mode; where the fchmod fails (EROFS, an LSM), the descriptor is not left open
                os.fchmod(fd, DIR_MODE)
            finally:
                os.close(fd)
            return True
        except FileExistsError:
            try:
                mode = os.lstat(path).st_mode
            except FileNotFoundError:
                continue
            if not stat.S_ISDIR(mode):
                raise NotADirectoryError(errno.ENOTDIR, "not a directory (or a symlink); left alone", path)
            return False
    raise FileExistsError(errno.EEXIST, "made and removed again by someone else, over and over", path)


def mark_made(path: str) -> None:
    """Mark a directory netlab made, so that any lab of netlab's may remove it once it is empty."""
    try:
        os.setxattr(path, MADE_BY_NETLAB, b"netlab", follow_symlinks=False)
    except OSError:
        pass  # no user attributes here: the lab that made it still removes it (its record says so)


def made_by_netlab(path: str) -> bool:
    try:
        return os.getxattr(path, MADE_BY_NETLAB, follow_symlinks=False) == b"netlab"
    except OSError:
        return False


def _write_all(fd: int, data: bytes) -> None:
    done = 0
    while done < len(data):
        done += os.pwrite(fd, data[done:], done)


def create(path: str, text: str) -> None:
    """A new file (never an existing one, never through a symlink), written whole; 0644 as the kubelet's, whatever
    the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        _write_all(fd, text.encode())
    finally:
        os.close(fd)


def write_in_place(path: str, text: str) -> None:
    """Same inode (a bind mount of the old file keeps showing the content), no symlink followed (and a FIFO
    put there is refused at once, ENXIO, instead of waiting for a reader)."""
    fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file; left alone", path)
        os.fchmod(fd, FILE_MODE)
        os.ftruncate(fd, 0)
        _write_all(fd, text.encode())
    finally:
        os.close(fd)


# --- one kind of file for every pod ----------------------------------------------------------


def remove(lab_name: str, rec: dict, kind: str, netns: str, done: StartResult | None = None) -> None:
    """Take away the file of ``kind`` netlab wrote for ``netns`` (only ours); its directory goes in :func:`tidy`."""
    status = rec[kind].pop(netns, None)
    path = None if status is None else remove_ours(lab_name, kind, netns, status)
    if path is not None and done is not None:
        done.actions.append(f"removed {path}")


def remove_ours(lab_name: str, kind: str, netns: str, status: str) -> str | None:
    """Unlink the file of ``kind`` of ``netns`` if it is netlab's for this lab (its record said ``status``);
    the path removed, or None."""
    if not lab_netns(lab_name, netns):
        return None
    try:  # the folder itself, never a symlink put in its place: nothing it points to is ours
        folder = os.open(netns_dir(netns), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
            return None
        raise
    try:
        mine = owner(FILES[kind], lab_name, dir_fd=folder)
        if mine == "ours" or (mine == "empty" and status == "intent"):  # empty: a create cut short
            try:
                os.unlink(FILES[kind], dir_fd=folder)
                return file_path(netns, kind)
            except FileNotFoundError:
                pass
    finally:
        os.close(folder)
    return None


def remove_dir(lab_name: str, netns: str) -> None:
    """rmdir /etc/netns/<netns> of this lab, only when empty (someone's file there keeps it)."""
    if lab_netns(lab_name, netns):
        try:
            os.rmdir(netns_dir(netns))
        except OSError:
            pass


def tidy(lab_name: str, rec: dict) -> None:
    """The directories netlab made that hold none of its files any more: removed when empty (someone's
    file there keeps its directory), and /etc/netns itself once the lab has no directory left there, if this
    lab or another one of netlab's made it."""
    held = {netns for kind in FILES for netns in rec[kind]}
    for netns in [n for n in rec["dirs"] if n not in held]:
        rec["dirs"].pop(netns)
        remove_dir(lab_name, netns)
    if not held and not rec["dirs"] and (rec["etc_netns"] is not None or made_by_netlab(ETC_NETNS)):
        remove_etc_netns()
        rec["etc_netns"] = None


def make_etc_netns() -> bool:
    """/etc/netns, with netlab's mark, when it is not there; True when this call made it."""
    made = make_dir(ETC_NETNS)
    if made:
        mark_made(ETC_NETNS)
    return made


def remove_etc_netns() -> None:
    """/etc/netns, only when empty: other labs' and people's directories keep it."""
    try:
        os.rmdir(ETC_NETNS)
    except OSError:
        pass


def make_netns_dir(rec: dict, netns: str) -> bool:
    """/etc/netns/<netns>; True when this call made it. Another lab leaving may remove an empty /etc/netns
    netlab made between our mkdir of it and this one: it is made again (and again, should that lab or a
    third one remove it once more before our directory is in it)."""
    for _ in range(REMADE):
        try:
            return make_dir(netns_dir(netns))
        except FileNotFoundError:
            if make_etc_netns():
                rec["etc_netns"] = "created"
    raise FileNotFoundError(errno.ENOENT, "removed again by someone else, over and over", ETC_NETNS)


def sync(lab_name: str, state: LabState, rec: dict, kind: str, want: Wanted, without: str,
         others: bool = True) -> StartResult:
    """Write the file of ``kind`` of every namespace in ``want``, and take it away from the others (not with
    ``others`` False: a rollback that made some pods again writes theirs alone, and leaves every other file
    as it is).

    ``without`` says what a pod misses when someone else's file stands where
    netlab's would ("does not use the cluster DNS"). Right after the first file
    of the run is written, the fault point ``<kind>-written`` (tests).
    """

    done = StartResult()
    want = lab_wanted(lab_name, want)  # paths only from the lab's names
    for netns in [n for n in rec[kind] if n not in want and others]:
        remove(lab_name, rec, kind, netns, done)
    if want:
        if write_ahead(rec, kind, want):
            state.save()
        if make_etc_netns():
            rec["etc_netns"] = "created"
        written = 0
        for netns, (pod, text) in want.items():
            path = file_path(netns, kind)
            if dir_not_ours(netns) is not None:  # a symlink: nothing written through it (status says it so too)
                rec[kind].pop(netns, None)
                done.problems.append(left_alone_line(pod, netns, kind, without))
                continue
            try:
                if make_netns_dir(rec, netns):
                    rec["dirs"][netns] = "created"
                else:
                    take_back(lab_name, rec, [netns])
                mine = owner(path, lab_name)
                if mine == "absent":
                    create(path, text)
                    rec[kind][netns] = "created"
                    done.actions.append(f"wrote {path}")
                    written += 1
                    if written == 1:
                        testhooks.fault_point(f"{kind}-written")
                elif mine == "ours" or rec[kind].get(netns) == "created" or (
                        mine == "empty" and rec[kind].get(netns) == "intent"):
                    have, mode = read(path), wrong_mode(path)
                    if have != text or mode is not None:
                        why = (f"its mode was {mode}" if have == text
                               else "it differed" if mine == "ours" else "it was edited")
                        write_in_place(path, text)
                        done.actions.append(f"rewrote {path} ({why})")
                    rec[kind][netns] = "created"
                else:
                    rec[kind].pop(netns, None)  # someone else's file: not ours to write or remove
                    done.problems.append(left_alone_line(pod, netns, kind, without))
            except OSError as exc:
                done.problems.append(f"pod {pod}: cannot write {path}: {exc.strerror or exc}")
    tidy(lab_name, rec)
    return done


def take_back(lab_name: str, rec: dict, netns_names: Iterable[str]) -> None:
    """A pod's folder netlab made and then forgot: while it was a symlink (someone's, left alone) ``sync`` dropped
    its files' records and ``tidy`` the folder's, and once the real folder was put back every ``down`` left it
    (QA q53 4). A real folder of this lab's namespace, not recorded, that holds netlab's files for this lab and
    nothing else (at least one) is netlab's again: it and its files are recorded as made, for ``down`` (or a pod
    that goes) to remove them and then it. Anything else in it (a user's file, a symlink) keeps it the user's."""
    for netns in netns_names:
        if netns in rec["dirs"] or not lab_netns(lab_name, netns):
            continue
        kinds = _ours_only(lab_name, netns)
        if kinds:
            rec["dirs"][netns] = "created"
            for kind in kinds:
                rec[kind].setdefault(netns, "created")


def _ours_only(lab_name: str, netns: str) -> list[str]:
    """The kinds of netlab's files for this lab in /etc/netns/<netns> (a folder, not followed), when nothing else
    is in it; [] otherwise."""
    try:
        fd = os.open(netns_dir(netns), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return []
    try:
        names = os.listdir(fd)
        kinds = {name: kind for kind, name in FILES.items()}
        if not names or any(name not in kinds or owner(name, lab_name, dir_fd=fd) != "ours" for name in names):
            return []
        return [kinds[name] for name in names]
    except OSError:
        return []
    finally:
        os.close(fd)


def write_ahead(rec: dict, kind: str, want: Wanted) -> bool:
    """Name everything writing ``want`` may make (/etc/netns, the directories, the files) in the records,
    as "intent", before it exists; True when anything new was named (the caller saves the state)."""
    intent = rec["etc_netns"] is None and not os.path.lexists(ETC_NETNS)
    if intent:
        rec["etc_netns"] = "intent"
    for netns in want:
        for record, path in ((rec["dirs"], netns_dir(netns)), (rec[kind], file_path(netns, kind))):
            if netns not in record and not os.path.lexists(path):
                record[netns] = "intent"
                intent = True
    return intent


class EarlyWrite:
    """The pods' files of a fresh lab written by a thread of its own while ``up`` makes the network
    (services.lifecycle.start_early): they need no namespace, and each is a few waits on the file system
    (0.1 to 1 ms a directory or a file on this VM's ext4, by the hour: up to 0.76 s of a 500-pod ``up`` when
    written after the network).

    The caller has recorded every path as "intent" and saved the state first (:func:`write_ahead`); the
    thread changes no record. :meth:`join` gives what it made; the caller records it, and :func:`sync` then
    finds each file netlab's and as wanted (or writes it, or says why it cannot). The fault point
    ``<kind>-written`` comes right after the thread's first file of that kind, as in :func:`sync`."""

    def __init__(self, wants: dict[str, Wanted]):
        """``wants``: by kind, of the lab's own namespaces only (:func:`lab_wanted`)."""
        self._work = Background(self._write, wants, name="netlab-pod-files")

    @staticmethod
    def _write(wants: dict[str, Wanted]) -> tuple[bool, set[str]]:
        etc_netns = make_etc_netns()
        dirs: set[str] = set()
        for kind, want in wants.items():
            written = 0
            for netns, (_pod, text) in want.items():
                try:
                    if netns not in dirs and make_dir(netns_dir(netns)):
                        dirs.add(netns)
                    create(file_path(netns, kind), text)
                except OSError:
                    continue  # someone's file, or /etc/netns gone meanwhile: sync makes it or says why not
                written += 1
                if written == 1:
                    testhooks.fault_point(f"{kind}-written")
        return etc_netns, dirs

    def join(self) -> tuple[bool, set[str]]:
        """Wait for the thread; whether it made /etc/netns, and the namespaces whose directory it made.
        Raises what stopped it (a fault point's ApplyFailed)."""
        return self._work.join()


def dir_not_ours(netns: str) -> str | None:
    """What stands at the pod's folder /etc/netns/<netns> when it is not a folder (a symlink: never followed, nothing
    written through it; a file): someone's, left alone with both files; None when it is a folder, or not there."""
    try:
        mode = os.lstat(netns_dir(netns)).st_mode
    except OSError:
        return None
    if stat.S_ISDIR(mode):
        return None
    return "a symlink" if stat.S_ISLNK(mode) else "not a folder"


def left_alone(lab_name: str, rec: dict, kind: str, netns: str) -> bool:
    """Whether ``sync`` leaves the pod's file of ``kind`` as it is: there, not netlab's first line for this lab,
    and not recorded as made by this lab (an empty file only when named in the records before it was made); or
    its folder is not a folder (:func:`dir_not_ours`: a symlink), which nothing is written through."""
    if dir_not_ours(netns) is not None:
        return True
    try:
        mine = owner(file_path(netns, kind), lab_name)
    except OSError:
        return False
    recorded = rec.get(kind, {}).get(netns)
    return mine in ("other", "empty") and recorded != "created" and not (mine == "empty" and recorded == "intent")


def left_alone_line(pod: str, netns: str, kind: str, without: str) -> str:
    """What ``sync`` says of a file it leaves alone (and status of it)."""
    what = dir_not_ours(netns)
    if what is not None:
        return f"pod {pod}: {netns_dir(netns)} is {what}, not netlab's folder; left alone, so this pod {without}"
    return f"pod {pod}: {file_path(netns, kind)} exists and is not netlab's; left alone, so this pod {without}"


def differs(netns: str, kind: str, text: str) -> str | None:
    """How the file of ``kind`` of ``netns`` differs from ``text``: "missing", "different", its mode when not the
    kubelet's (a pod's user other than root could not read it), or None."""
    have, mode = read(file_path(netns, kind)), wrong_mode(file_path(netns, kind))
    if have == text:
        return mode and f"mode {mode}, not {FILE_MODE:04o} (a pod's process not run as root cannot read it)"
    return "missing" if have is None else "different"


def wrong_mode(path: str) -> str | None:
    """The permission bits of the file at ``path`` (not followed) as 0NNN when they are not :data:`FILE_MODE`."""
    try:
        mode = stat.S_IMODE(os.lstat(path).st_mode)
    except OSError:
        return None
    return None if mode == FILE_MODE else f"{mode:04o}"
