"""Which process a lab belongs to, when that process takes it down itself: the pytest plugin's labs.

A lab the plugin brings up records its owner in the state (``extra.owner``): the plugin, the process's pid,
its start time (field 22 of ``/proc/PID/stat``, clock ticks since boot), the boot (``boot_id``) and the pid
namespace the pid is counted in. A pytest process killed with SIGKILL never takes its labs down; the record
tells such a lab from a live run's and from a lab someone made by hand (no record), so that an xdist
controller takes down exactly the labs of a worker that crashed, and a later run or ``netlab list`` names the
labs a run that is gone left up.

The owner is gone only when that is proven: the same boot and pid namespace, and the pid no longer that
process (no such process, a zombie, or another process with another start time). A record of another boot or
pid namespace (a run in a container sharing the state directory) is never judged gone.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator
from typing import Any

OWNER = "owner"  # the key in LabState.extra
PYTEST = "pytest"  # the only owner so far: netlab's pytest plugin

# The owner a lab brought up fresh in this context records (set by the plugin around its Lab.up_loaded): not a
# process-wide setting, so a lab a test brings up itself (Lab.up, the CLI) is never recorded as the plugin's.
_claim: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("netlab_owner", default=None)


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command (field 3, the state, first); None without the process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    return raw.rsplit(")", 1)[-1].split()  # the command, in parentheses, may hold spaces and ")"


def _boot() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def _pidns(pid: int | str = "self") -> int:
    try:
        return os.stat(f"/proc/{pid}/ns/pid").st_ino
    except OSError:
        return 0


def identity(pid: int, by: str = PYTEST) -> dict[str, Any] | None:
    """The owner record of process ``pid`` (None when there is no such process)."""
    fields = _stat(pid)
    if fields is None or len(fields) < 20:
        return None
    return {"by": by, "pid": pid, "start": int(fields[19]), "boot": _boot(), "pidns": _pidns()}


@contextlib.contextmanager
def claimed(by: str = PYTEST) -> Iterator[None]:
    """Labs brought up fresh inside the block record this process as their owner."""
    token = _claim.set(identity(os.getpid(), by))
    try:
        yield
    finally:
        _claim.reset(token)


def current() -> dict[str, Any] | None:
    """The owner record a lab brought up fresh now gets (lab/up.py), or None."""
    return _claim.get()


def of(extra: dict[str, Any]) -> dict[str, Any] | None:
    """The owner record of a state's ``extra`` (checked by the state's schema), or None."""
    record = extra.get(OWNER)
    return record if isinstance(record, dict) else None


def gone(record: dict[str, Any]) -> bool:
    """True only when the record's process has provably ended (see the module's docstring)."""
    if record.get("boot") != _boot() or not record.get("boot") or record.get("pidns") != _pidns():
        return False  # counted elsewhere: nothing here proves it
    fields = _stat(int(record["pid"]))
    if fields is None:
        return True
    return fields[0] in ("Z", "X") or int(fields[19]) != record["start"]


def same_process(record: dict[str, Any], other: dict[str, Any]) -> bool:
    return all(record.get(key) == other.get(key) for key in ("by", "pid", "start", "boot", "pidns"))


def describe(record: dict[str, Any]) -> str:
    """``pytest (pid 1234)``."""
    return f"{record.get('by')} (pid {record.get('pid')})"
