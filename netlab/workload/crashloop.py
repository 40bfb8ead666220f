"""CrashLoopBackOff: the containers ``netlab up --watch`` holds back, kept where other commands read them.

The kubelet restarts a container that keeps exiting after a back-off (lab/restart.py), and while it waits
its status says so: the container is ``waiting``, reason ``CrashLoopBackOff``, message ``back-off 20s
restarting failed container=main pod=crash_default(UID)``, and ``kubectl get pods`` prints that reason as
the pod's STATUS. netlab's back-off lives in the watcher's memory; the watcher writes, for each container
it holds back, when its back-off ends and the current delay to ``backoff.json`` in the lab's state folder,
so that ``get pods`` and ``status`` can say it too.

The record is small plain JSON, written atomically, only when it changes:
``{"version": 1, "watcher": {"pid": P, "start": T}, "containers": {"pod/c": {"until": S, "delay": D}}}``
(``until``: the wall clock, seconds since the epoch; ``delay``: seconds; ``start``: the watcher's start
time in /proc, so a pid used again by another process is not taken for it). A reader trusts it only while
that very watcher runs, and an entry only until its back-off ends; a record that is missing, unreadable,
corrupt or left by a watcher that died is no record (nothing is held back). The watcher removes its
record when it restarts the container, when it stops, and the containers' teardown when the lab goes down.
"""

from __future__ import annotations

import json
import os
import stat
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from netlab.errors import NetlabError, loads_json
from netlab.kernel import processes
from netlab.realize.state_dir import lab_dir, write_atomic

FILE = "backoff.json"
VERSION = 1
REASON = "CrashLoopBackOff"  # the kubelet's waiting reason (kubecontainer.ErrCrashLoopBackOff)
MAX_BYTES = 1 << 20  # a bigger file is not one the watcher wrote


@dataclass(frozen=True)
class Waiting:
    """A container the watcher holds back: its back-off ends at ``until`` (time.time()), after ``delay``."""

    until: float
    delay: float
    watcher: int  # the watcher's pid

    def message(self, pod: str, namespace: str, container: str) -> str:
        """The kubelet's waiting message (kuberuntime's doBackOff; its pod is NAME_NAMESPACE(UID), and a lab's
        pods have no UID)."""
        return f"back-off {go_duration(self.delay)} restarting failed container={container} pod={pod}_{namespace}"

    def words(self, now: float) -> str:
        """How ``status`` says it, after what it says of the container: who restarts it, and when."""
        return f"{SAID}{go_duration(self.delay)}): `netlab up --watch` (pid {self.watcher}) restarts it in " \
               f"{max(0.0, self.until - now):.1f}s"


SAID = f"; {REASON} (back-off "  # how a line of ``status`` says a container waits out its back-off (Waiting.words)


def said_in(line: str) -> bool:
    """Whether a line of ``status`` says its container waits out the watcher's back-off."""
    return SAID in line


def go_duration(seconds: float) -> str:
    """A delay as Go's time.Duration prints it, as the kubelet's message has it: 10s, 1m20s, 5m0s, 500ms."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds < 60:
        return f"{seconds:g}s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{rest:g}s"


class Record:
    """The watcher's side: the containers it holds back now, written to the lab's record when they change."""

    def __init__(self, lab: str, still_up: Callable[[], bool], log: Callable[[str], None]):
        self.lab, self.still_up, self.log = lab, still_up, log
        self.waiting: dict[str, tuple[float, float]] = {}  # pod/container -> (until, delay)
        # What the file says; None: not known (at first: a record a dead watcher left is removed by the first write)
        self.recorded: dict[str, tuple[float, float]] | None = None
        self.failed = False

    def hold(self, waiting: Mapping[str, tuple[float, float]]) -> None:
        """These containers wait out their back-off now (and no other)."""
        self.waiting = dict(waiting)
        self.write()

    def restarted(self, key: str) -> None:
        """``key`` is being restarted: written by the next :meth:`write`."""
        self.waiting.pop(key, None)

    def write(self) -> None:
        """The file says what ``waiting`` holds (written only when that changed: a new exit, a restart). A
        file that cannot be written is said once: the lab is kept all the same, ``get pods`` says Error."""
        old = self.recorded
        if old is not None and old.keys() == self.waiting.keys() and all(
                abs(until - old[key][0]) < 0.05 and delay == old[key][1]
                for key, (until, delay) in self.waiting.items()):
            return
        try:
            write(self.lab, self.waiting, self.still_up)
        except NetlabError as exc:
            if not self.failed:
                self.log(f"warning: cannot record the containers in back-off for `netlab get pods`: {exc}")
            self.failed, self.recorded = True, None
            return
        self.failed, self.recorded = False, dict(self.waiting)

    def close(self) -> None:
        """The watcher stops: nobody restarts them now."""
        self.waiting = {}
        try:
            remove(self.lab)
        except NetlabError:
            pass


def path(lab: str) -> str | None:
    """Where the lab's record is; None when the lab has no state folder (it is not up)."""
    try:
        directory = lab_dir(lab, create=False)
    except (NetlabError, OSError):
        return None
    return os.path.join(directory, FILE) if os.path.isdir(directory) else None


def write(lab: str, waiting: Mapping[str, tuple[float, float]], still_up: Callable[[], bool]) -> None:
    """Record the containers this process holds back: ``pod/container`` -> (until, delay); none removes the
    record. ``still_up`` is asked after the write: a ``down`` that began meanwhile (it removes the lab's folder)
    must not find a file it has not removed, and take the lab for one whose state was lost. Raises
    NetlabError (StateWriteFailed, EnvironmentNotReady) when the file cannot be written."""
    where = path(lab)
    if where is None:
        return
    if not waiting:
        remove(lab)
        return
    record = {"version": VERSION, "watcher": {"pid": os.getpid(), "start": processes.start_time(os.getpid())},
              "containers": {key: {"until": round(until, 3), "delay": delay}
                             for key, (until, delay) in sorted(waiting.items())}}
    write_atomic(where, json.dumps(record, separators=(",", ":")).encode())
    if not still_up():
        remove(lab)


def remove(lab: str, anyone: bool = False) -> None:
    """Remove the record this process wrote, or one whose watcher is gone (a running watcher's stays: of a lab
    taken down and made again meanwhile); ``anyone``: whoever wrote it (the lab goes down)."""
    where = path(lab)
    if where is None:
        return
    pid = None if anyone else _watcher(_read(where))
    if pid is not None and pid != os.getpid():
        return
    try:
        os.unlink(where)
    except OSError:
        pass


def read(lab: str, now: float | None = None) -> dict[str, Waiting]:
    """The containers the lab's watcher holds back now (``pod/container`` -> Waiting): none when there is no
    record, when it cannot be read or is not one, when the watcher that wrote it is gone, and none whose
    back-off has ended."""
    where = path(lab)
    data = _read(where) if where else None
    if data is None:
        return {}
    now = time.time() if now is None else now
    pid, entries = _watcher(data), data.get("containers")
    if pid is None or not isinstance(entries, dict):
        return {}  # the watcher that wrote it is gone: what it held back, it will not restart
    out = {}
    for key, entry in entries.items():
        if not isinstance(entry, dict):
            continue
        until, delay = entry.get("until"), entry.get("delay")
        if _number(until) and _number(delay) and delay >= 0 and until > now and key.count("/") == 1:
            out[key] = Waiting(float(until), float(delay), pid)
    return out


def _read(where: str) -> dict[str, Any] | None:
    """The record as JSON, never through a symlink; None when it is missing, not a regular file, too big, not
    JSON, or of another version."""
    try:
        fd = os.open(where, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        raw = os.read(fd, MAX_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(raw) > MAX_BYTES:
        return None
    try:
        data = loads_json(raw)
    except ValueError:  # UnicodeDecodeError and JSONDecodeError alike
        return None
    return data if isinstance(data, dict) and data.get("version") == VERSION else None


def _watcher(data: dict[str, Any] | None) -> int | None:
    """The pid of the watcher that wrote the record, while that very process runs (else None): a watcher that died
    and is a zombie (its parent has not reaped it yet) keeps its /proc stat and start time, and restarts nothing."""
    watcher = data.get("watcher") if data else None
    if not isinstance(watcher, dict):
        return None
    pid, start = watcher.get("pid"), watcher.get("start")
    if not _int(pid) or not _int(start) or pid <= 0 or not processes.alive(processes.ProcId(pid, start)):
        return None
    return int(pid)


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value and abs(value) < 1e12
