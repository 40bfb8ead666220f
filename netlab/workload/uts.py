"""The pod's UTS namespace (the pause container's job): its hostname, kept alive by a bind mount.

A pod's containers and ``netlab exec`` join it, so ``hostname`` prints the
pod's hostname everywhere in the pod: its ``hostname`` in the topology, else
its name, as the kubelet picks it. Like ``ip netns`` keeps a network namespace,
the namespace is pinned by bind-mounting it onto ``<state dir>/<lab>/uts/<pod>``.
Namespace changes happen in short-lived threads, never in the caller's.

The pins of a lab live on a small file system of their own, a tmpfs netlab
mounts on the lab's ``uts`` folder (``findmnt`` shows it as ``netlab-uts``),
so that ``down`` lets go of every pin with one lazy unmount of that tmpfs.
Unmounting waits for an RCU grace period: one for the whole tree, instead of
one per pin (500 pins: ~3 ms, against 80-90 ms one by one and ~50 ms eight at
a time). Where no tmpfs can be mounted, or a lab of an older netlab has its
pins in a plain folder, each pin is unmounted by itself, as before.
"""

from __future__ import annotations

import errno
import os
import threading
from typing import Collection, Mapping

from netlab.kernel import netns as nsmod
from netlab.kernel.mountinfo import mount_of, read_mounts
from netlab.kernel.threads import UNMOUNT_WORKERS, side_by_side
from netlab.realize.state_dir import PINS_FS, lab_dir


def uts_dir(lab_name: str, make: bool = False) -> str:
    """The lab's folder of UTS pins: its path (readers, status and get among them, look there), the lab's folder
    made first when ``make`` (up's :func:`ensure_uts`)."""
    return os.path.join(lab_dir(lab_name, create=make), "uts")


def uts_path(lab_name: str, pod: str) -> str:
    return os.path.join(uts_dir(lab_name), pod)


# The pins are empty files (hard links of one, below), so the tmpfs needs no room: a small size keeps
# anything else written there from taking the machine's memory.
PINS_FS_OPTIONS = "mode=0700,size=64k"


def is_pins_fs(udir: str) -> bool:
    """True when the file system mounted last on ``udir`` is the lab's tmpfs of pins (mount point, type
    and source checked in /proc/self/mountinfo), so that unmounting it lets go of nothing but pins."""
    if not os.path.ismount(udir):
        return False  # a plain folder
    real = os.path.realpath(udir)
    top = mount_of(real, read_mounts())  # a mount on top of the lab's tmpfs: someone else's, not ours to unmount
    return top is not None and top.point == real and (top.fstype, top.source) == ("tmpfs", PINS_FS)


def _mount_pins_fs(udir: str) -> None:
    """The lab's tmpfs of pins on ``udir``, when it is an empty plain folder (pins of an older netlab are
    never hidden under it). A machine where it cannot be mounted keeps its pins in the folder itself."""
    try:
        if os.listdir(udir) or is_pins_fs(udir):
            return
        nsmod.mount(PINS_FS, udir, "tmpfs", nsmod.MS_NOSUID | nsmod.MS_NODEV | nsmod.MS_NOEXEC, PINS_FS_OPTIONS)
    except OSError:
        pass


def remove_pins_fs(lab_name: str) -> bool:
    """Let go of all the lab's pins at once by a lazy unmount of its tmpfs of pins; False (nothing done)
    when its pins are not on one. The caller has stopped the processes the pins are looked up for."""
    udir = uts_dir(lab_name)
    if not is_pins_fs(udir):
        return False
    nsmod.detach(udir)
    return True


def _in_thread(fn) -> object:
    """Run fn in a short-lived thread: namespace changes die with the thread, never touch the caller."""
    box: dict[str, object] = {}

    def body() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            box["error"] = exc

    t = threading.Thread(target=body, name="netlab-uts")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box.get("value")


# The one empty file of a lab's UTS directory that every pod's pin is a hard link of (not a DNS label, so
# never a pod's name). A link only adds a name; a new file costs the file system an inode too: on an ext4
# /run, 0.2-0.9 ms a file against ~0.01 ms a link, for 500 pods on the path that starts the echo server.
TEMPLATE = ".pin"


def _make_file(path: str) -> None:
    """An empty regular file at ``path`` (one already there is kept; a symlink there is refused: ELOOP)."""
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))


def _pin_file(template: str, path: str) -> None:
    """The file a pod's UTS namespace is mounted on: a new hard link of ``template``, or the file already
    there (a pin left unmounted by a crash); a file of its own when a link cannot be made (too many links)."""
    try:
        os.link(template, path)
    except OSError as exc:
        if exc.errno not in (errno.EEXIST, errno.EMLINK):
            raise
        _make_file(path)


def remove_template(lab_name: str) -> None:
    """The empty file the pins are links of, once no pod's pin is left beside it."""
    udir = uts_dir(lab_name)
    try:
        if os.listdir(udir) == [TEMPLATE]:
            os.unlink(os.path.join(udir, TEMPLATE))
    except FileNotFoundError:
        pass


def is_uts_mount(path: str) -> bool:
    """True when ``path`` is a bind-mounted namespace (nsfs), not a plain file."""
    return nsmod.is_nsfs(path)


def uts_missing(words: str) -> str:
    """What a command that met the UTS namespace pin of ``words`` (``pod a``, ``node n1``) missing says of it:
    the part a ``down`` killed halfway took (exec's and get's words, given to interrupted.taken_down)."""
    return f"{words}'s UTS namespace is not there"


def ensure_uts(lab_name: str, hostnames: Mapping[str, str], unchanged: Collection[str] = ()
               ) -> tuple[dict[str, str], list[str], list[str]]:
    """Each pod's (or node's) UTS namespace, pinned by a bind mount, with its hostname (``hostnames``: pin name ->
    hostname); made where missing, its hostname set where it names another. Returns the pins' paths, the names
    whose namespace was made now, and those whose hostname was set in the namespace they had (a pod whose
    topology changed its hostname: its containers see the new one at once). ``unchanged``: names whose pin this
    run made a moment ago with that very hostname (a fresh lab's, by its early echo start): not entered to read it
    again (500 pods: a setns and uname each), but made again where its pin is gone.

    All are made in one short-lived thread (unshare, sethostname, bind-mount,
    next), so the calling thread never changes namespace. The files the
    namespaces are mounted on are hard links of one empty file (:func:`_pin_file`).
    """
    udir = uts_dir(lab_name)  # once, not once a pin: it checks the state folder
    out = {name: os.path.join(udir, name) for name in hostnames}
    todo = [name for name, path in out.items() if not is_uts_mount(path)]
    have = [name for name in out if name not in todo and name not in unchanged]
    renamed: list[str] = []
    template = os.path.join(udir, TEMPLATE)
    if todo:
        os.makedirs(uts_dir(lab_name, make=True), mode=0o700, exist_ok=True)
        _mount_pins_fs(udir)
        _make_file(template)

    def make() -> None:
        home = nsmod.current_fd("uts")
        try:
            for name in have:
                fd = os.open(out[name], os.O_RDONLY | os.O_CLOEXEC)
                try:
                    nsmod.setns(fd, nsmod.CLONE_NEWUTS)
                finally:
                    os.close(fd)
                if os.uname().nodename != hostnames[name]:
                    nsmod.sethostname(hostnames[name])
                    renamed.append(name)
            for name in todo:
                path = out[name]
                _pin_file(template, path)
                try:
                    nsmod.unshare(nsmod.CLONE_NEWUTS)
                    nsmod.sethostname(hostnames[name])
                    nsmod.mount("/proc/thread-self/ns/uts", path, None, nsmod.MS_BIND)
                except BaseException:
                    remove_uts(path)
                    raise
        finally:
            nsmod.setns(home, nsmod.CLONE_NEWUTS)
            os.close(home)

    if out:
        _in_thread(make)
    return out, todo, renamed


def uts_hostnames(paths: dict[str, str]) -> dict[str, str | None]:
    """The hostname inside each pinned UTS namespace (None where it is not one); one thread for all."""

    def read() -> dict[str, str | None]:
        res: dict[str, str | None] = {}
        home = nsmod.current_fd("uts")
        try:
            for key, path in paths.items():
                if not is_uts_mount(path):
                    res[key] = None
                    continue
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    nsmod.setns(fd, nsmod.CLONE_NEWUTS)
                    res[key] = os.uname().nodename
                finally:
                    os.close(fd)
        finally:
            nsmod.setns(home, nsmod.CLONE_NEWUTS)
            os.close(home)
        return res

    return _in_thread(read)  # type: ignore[return-value]


def remove_uts_many(paths: list[str]) -> None:
    """:func:`remove_uts` of each, a few side by side (their unmounts' waits overlap)."""
    side_by_side(remove_uts, paths, UNMOUNT_WORKERS)


def remove_uts(path: str) -> None:
    if is_uts_mount(path):
        try:
            nsmod.detach(path)
        except OSError:
            pass  # unlink below fails with EBUSY and says so
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
