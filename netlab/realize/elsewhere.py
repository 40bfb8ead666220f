"""A lab made in another mount namespace (`unshare -m`, systemd's PrivateMounts=, a container with a /run of its
own, QA caps57 defect 4): its network namespaces are bind mounts under that namespace's /run/netns, and when that
mount was private there the host's /run/netns holds only their empty placeholders. Seen from here the lab was
"gone", yet its containers ran on: `down` removed the placeholders, said "4 namespaces removed" and left the
namespaces and their processes alive; an `up` from here could not enter them ("setns: Invalid argument").

Told by a live process of the lab's in another mount namespace than this process's, that has the lab's namespaces
mounted in its /run/netns, while none of the lab's namespace names is a mount here: one of its recorded containers
(its pid and start time), or its echo server, found by its control socket in the lab's folder (every lab has one,
also a lab with no container: nodes only, or its containers exited; QA caps58 defect 3). A lab with neither alive
cannot be told from one whose namespaces went (a reboot, `ip netns delete`): it is taken for gone, as before.
Such a lab is refused, in one line naming where it is, by `status`, `up` and `down`, `down --force` too (it would
stop its containers there, remove the placeholders here and forget the state of a lab that lives on); netlab
cannot reach it from here (a namespace's mount is only in the mount namespace it was made in). Every command that
reads a running lab (probe, trace, get, exec, inspect, logs: realize.state.running_lab) says the same line, and so
does one that meets every namespace of it gone meanwhile (realize.interrupted.taken_down): they had said it "not up:
none of its namespaces is there any more" with a `down` that then refused (QA mf63 defect 1).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Callable

from netlab.errors import EnvironmentNotReady
from netlab.kernel import processes as proc
from netlab.kernel.mountinfo import parse_mount
from netlab.kernel.unixpath import peer_pid
from netlab.realize.state_dir import control_path

if TYPE_CHECKING:
    from netlab.realize.state import LabState


def _mount_ns(pid: int | str) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/mnt").st_ino
    except FileNotFoundError:
        return None
    except PermissionError as exc:
        raise proc.CannotTell(f"/proc/{pid}/ns/mnt") from exc


def _holds(pid: int, names: dict | list) -> bool:
    """Whether the mount namespace of ``pid`` has one of the lab's namespaces mounted in its /run/netns."""
    points = {f"/run/netns/{name}" for name in names}
    try:  # read here, not by read_mounts, which takes an unreadable table for an empty one
        with open(f"/proc/{pid}/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
            return any((m := parse_mount(line)) is not None and m.point in points for line in f)
    except FileNotFoundError:
        return False
    except PermissionError as exc:
        raise proc.CannotTell(f"/proc/{pid}/mountinfo") from exc


def _containers(st: LabState) -> list[tuple[str, dict[str, Any]]]:
    pods = ((st.extra or {}).get("workload") or {}).get("pods") or {}
    return [(f"{pod}/{name}", crec) for pod, prec in sorted(pods.items()) if isinstance(prec, dict)
            for name, crec in sorted((prec.get("containers") or {}).items()) if isinstance(crec, dict)]


def _live(st: LabState) -> list[tuple[str, proc.ProcId]]:
    """The lab's processes that can tell where it lives: its recorded containers, then its echo server."""
    out = []
    for what, crec in _containers(st):
        try:
            out.append((f"its container {what}", proc.ProcId(int(crec["pid"]), int(crec["start"]))))
        except (KeyError, TypeError, ValueError):
            continue
    server = peer_pid(control_path(st.lab))
    start = proc.start_time(server) if server is not None else None
    if server is not None and start is not None:
        out.append(("its echo server", proc.ProcId(server, start)))
    return out


def elsewhere(st: LabState, mounted: Callable[[str], bool]) -> str | None:
    """Why lab ``st`` cannot be reached from this mount namespace, in one line; None when it can (or is not up).
    ``mounted``: whether a namespace name is a mount here (the kernel's ``netns_mounted``)."""
    if not st.netns or any(mounted(name) for name in st.netns):
        return None
    mine = _mount_ns("self")
    for what, p in _live(st):
        theirs = _mount_ns(p.pid) if proc.alive(p) else None
        if theirs is None or mine is None or theirs == mine or not _holds(p.pid, st.netns):
            continue  # a command container has a mount namespace of its own (its pod's files), a slave of its
            # maker's: where the lab's namespaces were deleted (`ip netns delete`), the unmount reached it too
        if proc.alive(p):  # alive still: not a new pid
            return (f"lab {st.lab} was made in another mount namespace (mnt:[{theirs}], where {what} "
                    f"runs as pid {p.pid}): its network namespaces are mounted in that namespace's /run/netns, not "
                    f"in this one's, so netlab cannot reach or remove them from here; run it there: `sudo nsenter "
                    f"--mount=/proc/{p.pid}/ns/mnt netlab down --lab {st.lab}` (a /run/netns shared with the host's, "
                    "as `ip netns` makes it, keeps a lab visible)")
    return None


def refuse_elsewhere(st: LabState | None, mounted: Callable[[str], bool] | None = None) -> None:
    """Raise EnvironmentNotReady (exit 3, nothing changed) with ``elsewhere``'s line when lab ``st`` was made in
    another mount namespace: `up` would clash with it there (its containers, addresses), `down` remove nothing.
    ``mounted``: the kernel's ``netns_mounted``, else the machine's."""
    if mounted is None:
        from netlab.kernel.netns import is_netns_mount as mounted
    where = elsewhere(st, mounted) if st is not None else None
    if where is not None:
        raise EnvironmentNotReady(where)
