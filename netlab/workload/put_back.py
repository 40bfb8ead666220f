"""A running lab's rollback puts its containers back as the run found them (lab/rollback.py, ``put_back``).

An `up` of an edited file replaces a container whose command changed (the cluster DNS's dnsmasq too, when a Service
came or went: its command names them), stops one taken out of a pod, and writes the cluster DNS's records file; a run
stopped or failed after that kept them while its line said "rolled back": the pod ran the new command, kube-dns
answered for the new Service, and status called what ran "an old command" and named as its repair the `up` that
applies the cancelled change (QA qa59m 1).

Before it changes anything the run notes the containers' records (:func:`before`), and of those whose command it
is to change or which it is to stop (not in the run's topology) whether they run then. The rollback, once the state
holds the last good run's topology again, compares (:func:`put_back`), pod by pod in the namespaces it neither made
nor deletes:

- a container whose recorded process still runs (the run never came to it: a dnsmasq not yet replaced) gets its
  record back, and what the run started in its place, if it did, is stopped;
- one that ran before the run and was stopped by it (a changed command, a container taken out of its pod) is
  started again with the command the topology put back gives it (a new process: as after a changed command,
  restarts 0; the run took its logs);
- one that was not running before the run (exited, a Never pod's) gets its record back, exited, and what the run
  started is stopped: a rollback does not run it twice;
- one the run started anew with the same command (it had exited: a repair) is left running, as the journal leaves
  the repairs of objects that were missing (docs/reliability.md);
- a pod whose hostname the run set gets its old one back;
- a container's logs from before the run that a restart by the run took (a changed command starts them over, as a
  new pod's container has no run before it) cannot come back: :attr:`Before.gone` names the container, for the
  rollback's line (what it printed before the run is found in neither its log nor its previous log);

then the cluster DNS's records file is written as the topology put back gives it and a dnsmasq that read another
file reads it again (SIGHUP), as `up` does: all of it by :func:`netlab.workload.lifecycle.start`, restricted to those
pods and containers (its ``only`` and ``hold``), never another container of the lab.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Collection

from netlab.kernel import netns as nsmod
from netlab.workload import dns_records
from netlab.workload.containers import container_argv, log_path, previous_log_path
from netlab.workload.records import records
from netlab.workload.stopping import stop_container
from netlab.workload.tasks import STOPPED, proc_of, why_replace

if TYPE_CHECKING:
    from netlab.feature import StartResult
    from netlab.model.lab import Lab, PodInfo
    from netlab.model.topology import Container
    from netlab.realize.state import LabState

    # lifecycle.start, restricted: start(lab, state, hold=..., only=...)
    Start = Callable[..., StartResult]

NOT_CHANGED = "the run a rollback took back did not change it"  # the hold of every other container
IDENTITY = ("id", "pid", "start", "argv", "error", "ran")  # what tells one run of a container from another


@dataclass
class Before:
    """The containers' records as the run found them (each container's record copied), by pod; of those whose
    command the run changes or that it stops, whether they ran then ("pod/container" -> bool); the cluster DNS's
    records file; and each pod's hostname in the run's topology; of those same containers, what their log held
    (:func:`_printed`), and, once put back, those whose logs from before the run are gone (``gone``: "pod/c")."""

    pods: dict[str, dict]
    ran: dict[str, bool] = field(default_factory=dict)
    dns: str | None = None
    hostnames: dict[str, str] = field(default_factory=dict)
    logs: dict[str, tuple[int, str]] = field(default_factory=dict)
    gone: list[str] = field(default_factory=list)


LOG_HEAD = 4096  # the bytes of a log that tell it from another (its first, with its size)


def _printed(path: str, size: int | None = None) -> tuple[int, str] | None:
    """A log's size and a digest of its first bytes (``size``: of as many as another's had); None when nothing is
    there, it is empty, or it cannot be read (not netlab's file: never followed)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        have = os.fstat(fd).st_size
        head = os.pread(fd, min(LOG_HEAD, have if size is None else size), 0)
    except OSError:
        return None
    finally:
        os.close(fd)
    return (have, hashlib.sha256(head).hexdigest()) if head else None


def _logs_gone(lab_name: str, was: Before) -> list[str]:
    """The containers whose log held something before the run, found now in neither their log nor their previous
    log (a restart moves the one to the other): what they printed before the run is gone."""
    out = []
    for cid, (size, digest) in sorted(was.logs.items()):
        pod, _, cname = cid.partition("/")
        for path in (log_path(lab_name, pod, cname), previous_log_path(lab_name, pod, cname)):
            now = _printed(path, min(size, LOG_HEAD))
            if now is not None and now[0] >= size and now[1] == digest:
                break
        else:
            out.append(cid)
    return out


def before(lab: Lab, state: LabState) -> Before:
    """What :func:`put_back` compares with, read before the run ``lab`` changes anything. Only the containers whose
    command it changes, or that it stops, are looked at in /proc (a run that changes nothing reads nothing)."""
    pods = records(state)["pods"]
    copied: dict[str, dict] = {}
    for pod, prec in pods.items():
        if isinstance(prec, dict):
            containers = prec.get("containers")
            containers = containers if isinstance(containers, dict) else {}
            copied[pod] = {**prec, "containers": {c: dict(crec) for c, crec in containers.items()
                                                  if isinstance(crec, dict)}}
    out = Before(copied, dns=dns_records.read(lab.name), hostnames={p.name: p.hostname for p in lab.pods})
    wanted = {p.name: p for p in lab.pods}
    for pod, prec in copied.items():
        spec = wanted.get(pod)
        argv = {c.name: container_argv(spec, c) for c in spec.containers} if spec is not None else {}
        for cname, crec in prec["containers"].items():
            if spec is not None and argv.get(cname, crec.get("argv")) == crec.get("argv") and cname in argv:
                continue  # the run leaves its command as it is
            out.ran[f"{pod}/{cname}"] = _runs(crec, prec.get("netns"), prec.get("uts"))
            printed = _printed(log_path(lab.name, pod, cname))
            if printed is not None:
                out.logs[f"{pod}/{cname}"] = printed
    return out


def _runs(crec: dict, netns: object, uts: object) -> bool:
    """The recorded task runs as recorded (a paused one too: a runtime's paused container runs)."""
    if not isinstance(netns, str):
        return False
    return why_replace(crec, crec.get("argv") or [], netns, uts if isinstance(uts, str) else None) in (None, STOPPED)


def _same(a: dict | None, b: dict | None) -> bool:
    return (a is None) == (b is None) and (a is None or all(a.get(k) == b.get(k) for k in IDENTITY))  # type: ignore


def put_back(lab: Lab, state: LabState, was: Before, skip: Collection[str], start: Start) -> list[str]:
    """Put back what the run changed of ``lab``'s containers (the lab as the state put back gives it; ``skip``: the
    namespaces the rollback deletes or makes again itself) through ``start`` (lifecycle.start). Returns what it could
    not, one line each (a command that could not start again, as ``up`` says it)."""
    pods = records(state)["pods"]
    present = {p.name: p for p in lab.pods if p.netns not in skip and nsmod.is_netns_mount(p.netns)}
    only: set[str] = set()
    allowed: set[str] = set()
    for name, pod in present.items():
        prec, old = pods.get(name), was.pods.get(name)
        if prec is None or old is None:
            continue  # no record before (the run's first start of the pod: kept), or none now (its removal: said)
        now_c, was_c = prec.setdefault("containers", {}), old.get("containers") or {}
        for cname in sorted(set(now_c) | set(was_c)):
            a, b = was_c.get(cname), now_c.get(cname)
            if _same(a, b):
                continue
            only.add(name)
            cid = f"{name}/{cname}"
            if a is None or was.ran.get(cid) is True and not _runs(a, pod.netns, prec.get("uts")):
                allowed.add(cid)  # started by the run, or stopped by it: as the topology put back asks
                continue
            if cid not in was.ran and b is not None and _runs(b, pod.netns, prec.get("uts")):
                continue  # the same command started again (it had exited, or was stopped): a repair, kept
            # Still running (the run never came to it), or not running before the run: as it was
            if b is not None and proc_of(b) is not None and proc_of(b) != proc_of(a):
                stop_container(state.lab, cid, b, pod.netns, prec.get("uts"))
            now_c[cname] = dict(a)
        if was.hostnames.get(name, pod.hostname) != pod.hostname:
            only.add(name)
    if not only and dns_records.read(lab.name) == was.dns:
        was.gone = _logs_gone(lab.name, was)
        return []

    def hold(pod: PodInfo, c: Container, crec: dict, why: str) -> str | None:
        return None if f"{pod.name}/{c.name}" in allowed else NOT_CHANGED

    out = start(lab, state, hold=hold, only=only)
    was.gone = _logs_gone(lab.name, was)
    return [line for line in out.failed + out.problems if any(line.startswith(f"pod {name} ") for name in only)]
