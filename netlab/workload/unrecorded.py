"""Command containers an `up` started and did not live to record: killed (SIGKILL) between their start and its save.

`up` writes each command container's record ahead of its start (lifecycle.start saves the state first), with a
new ``id`` (32 hex digits, as a runtime's container ID) and no pid yet; the container gets that id in its
environment, ``NETLAB_CONTAINER_ID``, and the record its pid and start time once it runs. A record with an id and
no pid (:func:`pending`) is a start whose `up` ended before it knew the outcome (so is an echo container's record
with no thread: its first run is then started as a new one, by the lab's echo server found by its control socket,
launch.py). Its process, if it runs, is found
by proof, never by a name or a pattern: a process with a thread in the pod's network namespace (or the pod's
UTS namespace, which the lab pins) whose environment holds that very id, the topmost of them (a child it forked
inherits the id). The next `up` takes it over (:func:`resolve`: its pid and start time recorded, then compared as
any recorded container: a changed command replaces it), so no second copy starts beside it (the cluster DNS's
second dnsmasq found port 53 taken, on every later `up`); ``status`` names it until then (:func:`line`).

None running, whether it ran is told by its log (:func:`evidence`): the record keeps the log's size as it was
written ahead (``log_at``; a restart's log was moved to the previous one before, so 0), the parent opens the log
before it forks, and nothing but the command writes to it after (a start that failed is one line of netlab's,
``netlab: could not start: ...``). A log grown past ``log_at`` with the command's output: it ran and exited, its
pid and exit code unknown (``ran`` in its record: ``status`` and ``get pods`` say it exited, exit code unknown,
and its pod's restartPolicy decides as for any exited container: a Never pod's is not run twice, QA q11 4). No
log: it never started (started as new). A log left as it was: netlab cannot tell (a command may exit writing
nothing), and says so; as the kubelet starts a container whose runtime state is Created or Unknown, `up` starts it.

A dnsmasq of the cluster DNS that the new one was to replace (``replaces``: its pid and start time) still
running is stopped, as the new one would have; one whose start never came is then started again.
Left: a process between its fork and its exec (its environment is still netlab's) when its `up` is killed
carries no id yet; it execs within milliseconds, long before the next `up` looks.
"""

from __future__ import annotations

import os
import secrets

from netlab.kernel import processes as proc
from netlab.workload.containers import log_path
from netlab.workload.stopping import stop_container
from netlab.workload.tasks import RUN_ENV

ENV = RUN_ENV
START_FAILED = b"netlab: could not start: "  # containers.note_start_error's line: the start failed
RAN, NEVER, UNKNOWN = "ran", "never", "unknown"  # :func:`evidence`


def new_id() -> str:
    return secrets.token_hex(16)


def pending(crec: object) -> bool:
    """A record written ahead of its container's start, whose pid (an echo container's thread) its `up` never
    recorded: nor an error."""
    return isinstance(crec, dict) and crec.get("pid") is None and "error" not in crec and not crec.get("ran")


def log_size(path: str) -> int:
    """The size of a container's log as its record is written ahead (``log_at``): 0 when there is none."""
    try:
        return os.lstat(path).st_size
    except OSError:
        return 0


def evidence(crec: dict, log: str) -> str:
    """Whether the container of a pending record (:func:`pending`) with no process left ran, as its log ``log``
    (the path netlab gives it, never the record's) tells: RAN (its command wrote to it), NEVER (no log: the
    start never reached the fork; or netlab's line of a start that failed), UNKNOWN (the log as it was written
    ahead: it may have run without a word). An echo container's record (no id): NEVER for its first run, as its
    server is found by its control socket and serves it anew, else UNKNOWN."""
    if not crec.get("id"):
        return NEVER if _first_run(crec) else UNKNOWN
    at = crec.get("log_at")
    at = at if isinstance(at, int) and not isinstance(at, bool) and at >= 0 else 0
    try:
        fd = os.open(log, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return NEVER
    except OSError:
        return UNKNOWN
    try:
        head = os.pread(fd, len(START_FAILED), at)
    except OSError:
        return UNKNOWN
    finally:
        os.close(fd)
    if not head:
        return UNKNOWN
    return NEVER if head == START_FAILED else RAN


def ran(crec: object, log: str) -> bool:
    """The container ran, and exited before its `up` recorded its pid: resolved so (``ran`` in the record), or
    a pending record whose log says so (:func:`evidence`) and no process of it left."""
    if not isinstance(crec, dict):
        return False
    return crec.get("ran") is True and crec.get("pid") is None or \
        pending(crec) and evidence(crec, log) == RAN


def _first_run(crec: dict) -> bool:
    return int(crec.get("restarts") or 0) == 0 and crec.get("last_exit_code") is None


def find(crec: dict, netns: str, uts: str | None) -> proc.ProcId | None:
    """The process the container's id (``crec['id']``) names in the pod's namespaces; None when none runs (or
    the record has no id: an echo container's, whose server is found by its control socket)."""
    if not crec.get("id"):
        return None
    entry = f"{ENV}={crec['id']}".encode()
    found = proc.find_in_namespaces([netns], [uts] if uts else [])
    holders = {pid for pid in found if proc.environ_has(pid, entry)}
    tops = []
    for pid in holders:
        start = proc.start_time(pid)
        if start is not None and proc.parent(pid) not in holders and proc.running(pid):
            tops.append(proc.ProcId(pid, start))
    return min(tops, key=lambda p: (p.start, p.pid)) if tops else None


def line(crec: dict, netns: str, uts: str | None, where: str, repair: str, log: str) -> str | None:
    """status's line for a pending record (:func:`pending`); None for one that ran and exited (said as one that
    exited: :func:`ran`)."""
    p = find(crec, netns, uts)
    if p is None:
        said = evidence(crec, log)
        if said == RAN:
            return None
        if said == NEVER:
            return f"containers: {where} was never started (an `up` ended as it started it); `{repair}` starts it"
        return (f"containers: {where} may never have started: an `up` ended as it started it and its log is empty, "
                f"so netlab cannot tell whether it ran; `{repair}` starts it")
    return (f"containers: {where} runs (pid {p.pid}) unrecorded: the `up` that started it ended before it recorded "
            f"it; `{repair}` takes it over")


def resolve(lab_name: str, pods: dict, uts: dict[str, str], netns: dict[str, str]) -> tuple[list[str], list]:
    """Every pending record of the pods ``netns`` names (pod -> its network namespace; ``uts``: pod -> its pin):
    its process taken over, or, none running, the record as a container that ran and exited (its log says so:
    ``ran``, its pid and exit code unknown, its pod's restartPolicy then decides), or one that may never have
    started: dropped for a first run (started as new), left for a restart (exited, as far as anyone knows).
    Returns the actions in words and the processes taken over, ("pod/container", ProcId)."""
    actions: list[str] = []
    taken: list[tuple[str, proc.ProcId]] = []
    for pod, where in netns.items():
        containers = (pods.get(pod) or {}).get("containers") or {}
        for cname, crec in list(containers.items()):
            if not pending(crec):
                continue
            cid = f"{pod}/{cname}"
            old = crec.pop("replaces", None)
            if old:  # the dnsmasq this one replaces: stopped by the new one before its exec, or now
                stop_container(lab_name, cid, {"pid": old[0], "start": old[1]}, where, uts.get(pod))
            p = find(crec, where, uts.get(pod))
            if p is not None:
                crec.update(pid=p.pid, start=p.start)
                taken.append((cid, p))
                actions.append(f"took over container {cid} (pid {p.pid}), which an `up` that ended before it "
                               "recorded it had started")
            elif evidence(crec, log_path(lab_name, pod, cname)) == RAN:
                crec["ran"] = True  # it ran and exited: how, nobody knows
                actions.append(f"container {cid} had run and exited (its log shows it) before the `up` that "
                               "started it recorded it: exit code unknown")
            elif _first_run(crec):
                containers.pop(cname)  # its first run: never started (or ran without a word); started as new
    return actions, taken
