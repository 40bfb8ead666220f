"""The lab's saved state under ``/run/netlab/<lab>/`` and its lock.

The state is what proves ownership: ``down`` deletes a namespace only when
the state lists it *and* the namespace carries the lab's run id (see
netns.py). It also keeps the topology, so ``down``/``status`` work without
the file.

The directory is root-only (0700), checked before use (not a symlink, owned
by root, not group/world writable), and every write is atomic (write a
temporary file, fsync, rename). ``/run`` is a tmpfs: a reboot forgets the
labs, as it forgets their namespaces.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import stat
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator

from netlab.errors import ApplyFailed, EnvironmentNotReady, LabBusy, NetlabError, UsageError, display_path
from netlab.realize.state_schema import STATE_VERSION

if TYPE_CHECKING:
    from netlab.model.lab import Lab
    from netlab.model.topology import Topology

STATE_ROOT = os.environ.get("NETLAB_STATE_DIR", "/run/netlab")


def _check_dir(path: str) -> None:
    """Refuse a state directory someone else could have prepared for us."""
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise EnvironmentNotReady(f"{path} is a symlink; refusing to use it (remove it and retry)")
    if not stat.S_ISDIR(st.st_mode):
        raise EnvironmentNotReady(f"{path} is not a directory; remove it and retry")
    if st.st_uid != os.geteuid():
        raise EnvironmentNotReady(f"{path} is owned by uid {st.st_uid}, not by us; remove it and retry")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise EnvironmentNotReady(f"{path} is group- or world-writable; refusing to use it (chmod 700 {path})")


_checked: set[str] = set()  # directories created or checked by this process


def state_dir_error(path: str, exc: OSError) -> EnvironmentNotReady:
    """An OS error on the state directory itself, in words: exit 3, nothing was changed."""
    where = os.path.dirname(path) or path
    if exc.errno == errno.EROFS:
        return EnvironmentNotReady(f"cannot write {path}: {where} is on a read-only file system; "
                                   "make it writable or point NETLAB_STATE_DIR at a writable directory")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return EnvironmentNotReady(f"cannot write {path}: permission denied; run it with sudo")
    return EnvironmentNotReady(f"cannot use {path}: {exc.strerror or exc}")


def ensure_dir(path: str) -> str:
    """Create (0700) or check a state directory (once per process)."""
    if path in _checked:
        return path
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except FileNotFoundError:
        raise EnvironmentNotReady(f"cannot create {path}: its parent does not exist") from None
    except OSError as exc:
        raise state_dir_error(path, exc) from None
    _check_dir(path)
    _checked.add(path)
    return path


def state_root() -> str:
    return ensure_dir(STATE_ROOT)


def check_lab_name(value: str, what: str = "--lab") -> str:
    """A lab name a user typed, checked by the rule of a topology's ``name:`` before it
    becomes a path: ``--lab /etc``, ``..`` or ``.`` never reach a file operation."""
    from netlab.model.topology import lab_name_problem

    problem = lab_name_problem(value)
    if problem:
        raise UsageError(f"{what} {problem}")
    return value


def lab_dir(lab: str, create: bool = True) -> str:
    path = os.path.join(STATE_ROOT, check_lab_name(lab, "lab name"))
    if create:
        state_root()
        return ensure_dir(path)
    if os.path.lexists(path):
        _check_dir(STATE_ROOT)
        _check_dir(path)
    return path


class StateWriteFailed(OSError, ApplyFailed):
    """A state write did not reach the disk whole (full disk, quota, I/O error): exit 4.

    Also an OSError, so the features' "best effort on teardown" handlers still
    treat it as one.
    """

    def __init__(self, path: str, reason: str):
        super().__init__(errno.EIO, reason, path)
        self.message = (f"cannot write {path}: {reason}; free space in {os.path.dirname(path)} "
                        "(or point NETLAB_STATE_DIR at another directory)")

    def __str__(self) -> str:
        return self.message


def _write_error(path: str, exc: OSError) -> NetlabError:
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return state_dir_error(path, exc)
    return StateWriteFailed(path, exc.strerror or str(exc))


def write_atomic(path: str, data: bytes, mode: int = 0o600) -> None:
    """Write a file so readers see the old or the new content, never half.

    Every byte is written (os.write may write less than asked), fsynced, then
    renamed over the old file. Any failure leaves the old file and no
    temporary one, and raises StateWriteFailed (exit 4), or EnvironmentNotReady
    (exit 3) for a read-only or forbidden directory.
    """
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as exc:
        raise _write_error(path, exc) from None
    try:
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                if n <= 0:
                    raise StateWriteFailed(path, f"short write ({len(data) - len(view)} of {len(data)} bytes)")
                view = view[n:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and not isinstance(exc, StateWriteFailed):
            raise _write_error(path, exc) from None
        raise
    try:  # the rename itself reaches the disk (NETLAB_STATE_DIR may be on one)
        dfd = os.open(os.path.dirname(path) or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


@dataclass
class LabState:
    """What one lab owns, as saved on disk."""

    lab: str
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    topology: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    # Namespaces: name -> "intent" (about to be created) or "created".
    netns: dict[str, str] = field(default_factory=dict)
    # Plan resources applied last (JSON), for status and convergence.
    plan: list[dict[str, Any]] = field(default_factory=list)
    # Extra records owned by later features (containers, nat payloads ...).
    extra: dict[str, Any] = field(default_factory=dict)
    phase: str = "creating"  # creating | up | failed | deleting

    @property
    def path(self) -> str:
        return os.path.join(lab_dir(self.lab), "state.json")

    def save(self, best_effort: bool = False) -> bool:
        """Write the state atomically; StateWriteFailed if it cannot be written whole.

        ``best_effort``: report failure by returning False instead (teardown on a
        full disk: the namespaces are proven by their tags, the old state on disk
        still lists them, and deleting them must go on).
        """
        data = {
            "version": STATE_VERSION,
            "lab": self.lab,
            "run_id": self.run_id,
            "phase": self.phase,
            "source": self.source,
            "topology": self.topology,
            "netns": self.netns,
            "plan": self.plan,
            "extra": self.extra,
        }
        try:
            write_atomic(self.path, json.dumps(data, sort_keys=True, separators=(",", ":")).encode())
        except NetlabError:
            if not best_effort:
                raise
            return False
        return True

    def model(self) -> Topology:
        # Imported here, like resolved()'s imports: every command imports this module,
        # and only those that read a lab's topology load the models.
        from netlab.model.topology import Topology

        return Topology.model_validate(self.topology)

    def resolved(self) -> Lab:
        """The saved topology, resolved; a saved topology that no longer resolves is a corrupt state."""
        from netlab.model.lab import resolve
        from netlab.realize.attachments import attached_lab

        try:
            return attached_lab(resolve(self.model()), self)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError too
            why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise StateCorrupt(self.lab, os.path.join(STATE_ROOT, self.lab, "state.json"),
                               f"topology: {why[:160]}") from None


class StateCorrupt(EnvironmentNotReady):
    """A lab's state file is not a valid state of that lab: one line, and the way out."""

    def __init__(self, lab: str, path: str, why: str):
        self.lab = lab
        super().__init__(f"lab {lab}: its state file {path} is corrupt ({' '.join(why.split())}); "
                         f"take the lab down anyway with `sudo netlab down --lab {lab} --force` "
                         "(it deletes only namespaces tagged as the lab's)")


def load_state(lab: str) -> LabState | None:
    """Read a lab's state; None when the lab is not known, StateCorrupt when the file is not
    a valid state of this lab (see state_schema.py)."""
    from netlab.realize.state_schema import check_state

    path = os.path.join(lab_dir(lab, create=False), "state.json")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise StateCorrupt(lab, path, "it is a symlink") from None
        raise state_dir_error(path, exc) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise StateCorrupt(lab, path, "it is not a regular file")
        with os.fdopen(os.dup(fd), "rb") as fh:
            raw = fh.read()
    finally:
        os.close(fd)
    try:
        data = check_state(raw, lab)
    except ValueError as exc:
        raise StateCorrupt(lab, path, str(exc)) from None
    return LabState(lab=lab, run_id=data["run_id"], topology=data["topology"], source=data["source"],
                    netns=data["netns"], plan=data["plan"], extra=data["extra"], phase=data["phase"])


def state_version(lab: str) -> tuple[int, int, int, int] | None:
    """What tells one written state file from the next (each save is a new file, renamed over
    the old: a new inode); None when there is none. A state read earlier with the same version
    is the file's content now."""
    try:
        st = os.stat(os.path.join(lab_dir(lab, create=False), "state.json"), follow_symlinks=False)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size


def forget(lab: str) -> None:
    """Remove a lab's state directory after a complete teardown."""
    path = lab_dir(lab, create=False)
    if not os.path.isdir(path):
        return
    _remove_tree(path, os.stat(path).st_dev, keep={os.path.join(path, "lock")})
    # The lock file goes last; holders of the lock keep their open fd.
    _checked.discard(path)
    try:
        os.unlink(os.path.join(path, "lock"))
        os.rmdir(path)
    except OSError:
        pass


def _remove_tree(path: str, dev: int, keep: set[str]) -> None:
    """Delete a state tree without following symlinks or crossing mount points
    (a UTS namespace still pinned by a bind mount is left, and so is its directory)."""
    for name in os.listdir(path):
        full = os.path.join(path, name)
        if full in keep:
            continue
        st = os.lstat(full)
        if st.st_dev != dev:
            continue  # a mount point: not ours to delete through
        if stat.S_ISDIR(st.st_mode):
            _remove_tree(full, dev, keep)
            try:
                os.rmdir(full)
            except OSError:
                pass
        else:
            os.unlink(full)


def known_labs() -> list[str]:
    """Labs with saved state, sorted."""
    if not os.path.isdir(STATE_ROOT):
        return []
    _check_dir(STATE_ROOT)
    from netlab.model.topology import lab_name_problem

    return sorted(name for name in os.listdir(STATE_ROOT)
                  if lab_name_problem(name) is None and os.path.isfile(os.path.join(STATE_ROOT, name, "state.json")))


class LabLock:
    """A per-lab flock; the lock file names the holder so others can say who.

    ``down`` deletes the lab's directory, lock file included, while it holds
    the lock. A command waiting on that file then locks a file nobody else
    will ever open, while a newcomer locks the new file at the path: both
    would proceed. So after ``flock`` the locked fd must still be the file at
    the path; if not, the lock is taken again on the file that is there now.
    """

    def __init__(self, lab: str, command: str = "netlab", wait: float = 60.0):
        self.lab, self.command, self.wait = lab, command, wait
        self.fd: int | None = None

    def __enter__(self) -> "LabLock":
        deadline = time.monotonic() + self.wait
        told = False
        while True:
            fd, path = self._open()
            try:
                told = self._flock(fd, deadline, told)
            except BaseException:
                os.close(fd)
                raise
            if _same_file(fd, path):
                break
            os.close(fd)  # locked a deleted file: its holder removed the lab; lock the one there now
        self.fd = fd
        try:  # who holds it, for the others' "waiting for ..." (a full disk only loses the note)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} ({self.command})\n".encode(), 0)
        except OSError:
            pass
        return self

    def _open(self) -> tuple[int, str]:
        """Open (or create) the lock file, making the lab's directory again if a holder removed it."""
        for _ in range(100):
            directory = lab_dir(self.lab)
            path = os.path.join(directory, "lock")
            try:
                return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600), path
            except FileNotFoundError:
                _checked.discard(directory)  # removed since we checked it: make it again
            except OSError as exc:
                raise state_dir_error(path, exc) from None
        raise EnvironmentNotReady(f"{self.lab}: its state directory keeps disappearing; is another netlab "
                                  "removing it?")

    def _flock(self, fd: int, deadline: float, told: bool) -> bool:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return told
            except BlockingIOError:
                holder = _holder(fd)
                if time.monotonic() >= deadline:
                    raise LabBusy(f"lab {self.lab} is in use by {holder}; try again when it finishes") from None
                if not told:
                    print(f"netlab: waiting for {holder} to release lab {self.lab}", file=sys.stderr)
                    told = True
                time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            _drop_if_only_lock(self.lab)
            os.close(self.fd)
            self.fd = None


def _same_file(fd: int, path: str) -> bool:
    """The open file ``fd`` is the one at ``path`` now (not deleted, not replaced)."""
    try:
        now = os.lstat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino)


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    return text or "another netlab process"


def _drop_if_only_lock(lab: str) -> None:
    """A lab directory that holds nothing but the lock (an up that failed before its
    first state write, a status of a lab that is not up) is removed by the lock's holder."""
    path = os.path.join(STATE_ROOT, lab)
    try:
        if os.listdir(path) != ["lock"]:
            return
        os.unlink(os.path.join(path, "lock"))
        os.rmdir(path)
    except OSError:
        return
    _checked.discard(path)


def select_lab_name(lab_name: str | None, topology: str | None, required: bool = True) -> str | None:
    """The lab a command acts on: ``--lab NAME``, ``-t FILE`` (its ``name:``), or the only lab up.

    One rule for every command. The name is checked before it is used for
    anything; with neither option and no lab up, None (or, when ``required``,
    a usage error).
    """
    if lab_name is not None and topology is not None:
        raise UsageError("give --lab or -t, not both")
    if topology is not None:
        from netlab.model.load import load_topology

        return load_topology(topology).name
    if lab_name is not None:
        return check_lab_name(lab_name)
    labs = known_labs()
    if not labs:
        if required:
            raise UsageError("no lab is up; start one with: sudo netlab up")
        return None
    if len(labs) > 1:
        raise UsageError(f"several labs are up ({', '.join(labs)}); pick one with --lab NAME")
    return labs[0]


def check_source(state: LabState | None, source: str | None, reconfigure: bool) -> None:
    """``up -t FILE`` of a lab that is up from another file (or from the built-in default)
    would silently replace it: refuse, naming the running file, unless ``--reconfigure``."""
    if state is None or reconfigure:
        return
    old, new = state.source, source

    def same(a: str, b: str) -> bool:
        return os.path.abspath(a) == os.path.abspath(b) or os.path.realpath(a) == os.path.realpath(b)

    if (old is None and new is None) or (old is not None and new is not None and same(old, new)):
        return
    running = display_path(old) if old is not None else "the built-in default"
    given = display_path(new) if new is not None else "the built-in default"
    raise UsageError(f"lab {state.lab} is up from {running}, and {given} has the same name: it would replace "
                     f"that lab; rename it, or replace the running lab with `netlab up --reconfigure`")


def running_lab(name: str) -> LabState:
    """The saved state of a lab that is up; a usage error naming the labs up otherwise."""
    st = load_state(name)
    if st is None:
        labs = known_labs()
        hint = f" (labs up: {', '.join(labs)})" if labs else ""
        raise UsageError(f"lab {name!r} is not up{hint}")
    return st


def select_lab(lab_name: str | None, topology: str | None) -> LabState:
    """The running lab a command acts on: --lab, -t FILE, or the only lab up."""
    return running_lab(select_lab_name(lab_name, topology))  # type: ignore[arg-type]


def iter_states() -> Iterator[LabState | StateCorrupt]:
    """Every lab's state, in name order; a corrupt one is yielded as its error, so one
    bad file does not hide the other labs."""
    for name in known_labs():
        try:
            st = load_state(name)
        except StateCorrupt as exc:
            yield exc
            continue
        if st is not None:
            yield st
