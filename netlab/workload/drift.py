"""What `status` says of a lab's containers: each one not running as the topology says, in one line.

A container never started, one that could not start, one that exited (with
how it exited where the kernel or the lab's echo server knows it, and what
its pod's restartPolicy does about it), one stopped by a signal, one running
another command than planned or on in a deleted network namespace; a pod whose hostname or
UTS namespace is not the topology's. A container ``up --watch`` holds back by
its back-off says so (CrashLoopBackOff, workload/crashloop.py).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable, Union

from netlab.errors import logs_way
from netlab.workload import crashloop, exits, health, node_uts, policy, unrecorded
from netlab.workload.containers import container_argv, log_path
from netlab.workload.tasks import in_old_sandbox, task_of
from netlab.workload.uts import uts_hostnames, uts_path

if TYPE_CHECKING:
    from netlab.model.lab import Lab
    from netlab.model.topology import Container

Repair = Union[str, Callable[[], str]]  # the `up` that repairs the lab, or what works it out


def lines(lab: Lab, pods: dict, repair: Repair) -> list[str]:
    """One line per container that is not running as the topology says; ``pods``: the containers' records
    (state.extra's, by pod name); ``repair``: the `up` that repairs the lab (realize.state.repair_up), as
    `status` says it below these lines, or what works it out when a line names it (:func:`once`)."""
    fix = once(repair)
    out: list[str] = []
    gone: dict[str, tuple[int, str, dict, Container, str]] = {}  # exited: (line, where, record, spec, policy)
    now, waiting = time.time(), crashloop.read(lab.name)  # held back by the watcher's back-off: said so
    hosts = uts_hostnames({pod.name: uts_path(lab.name, pod.name) for pod in lab.pods})
    for pod in lab.pods:
        prec = pods.get(pod.name)
        if prec is None:
            out.append(f"containers: pod {pod.name} has no containers started; up starts them")
            continue
        if hosts.get(pod.name) is None:
            out.append(f"containers: pod {pod.name}: UTS namespace (hostname {pod.hostname}) is missing")
        elif hosts[pod.name] != pod.hostname:
            out.append(f"containers: pod {pod.name}: hostname is {hosts[pod.name]}, not {pod.hostname}; up sets it")
        containers = prec.get("containers", {})
        for c in pod.containers:
            crec = containers.get(c.name)
            where = f"pod {pod.name} container {c.name}"
            state_letter = task_of(crec, pod.netns) if crec and "error" not in crec else None
            if crec is None:
                out.append(f"containers: {where} was never started")
            elif unrecorded.pending(crec) and (said := unrecorded.line(crec, pod.netns, uts_path(lab.name, pod.name),
                                                                          where, fix(),
                                                                          log_path(lab.name, pod.name, c.name))):
                out.append(said)
            elif "error" in crec:
                held = waiting.get(f"{pod.name}/{c.name}")
                out.append(f"containers: {where} {policy.START_FAILED}{crec['error']}{held.words(now) if held else ''}")
            elif state_letter is None and in_old_sandbox(crec, uts_path(lab.name, pod.name), pod.netns):
                out.append(f"containers: {where} runs on in the pod's old, deleted network namespace (pid "
                           f"{crec.get('pid')}); `{fix()}` stops it and starts it in the "
                           "pod's new one")
            elif crec.get("argv") != container_argv(pod, c) and state_letter in (None, "T"):
                # A new pod's container (workload.tasks.why_replace): whatever the old run's policy, up starts it.
                was = "exited" if state_letter is None else "is stopped"
                out.append(f"containers: {where} {was} (pid {crec.get('pid')}) and its command changed; "
                           f"`{fix()}` starts the new one")
            elif state_letter is None:
                gone[f"{pod.name}/{c.name}"] = (len(out), where, crec, c, pod.spec.restart_policy)
                out.append(f"containers: {where} exited ({_pid(crec)}); see `{logs_way(lab.name, pod.name, c.name)}`")
            elif state_letter == "T":
                out.append(f"containers: {where} is stopped (pid {crec.get('pid')}, by SIGSTOP or SIGTSTP); "
                           f"`{fix()}` restarts it")
            elif crec.get("argv") != container_argv(pod, c):
                out.append(f"containers: {where} runs another command than planned; `{fix()}` restarts it")
    # How the containers exited, asked once (an echo container: as its server stopped it, 143). One that completed
    # and that its pod does not restart is done, as it should be (policy.py); one that its pod never restarts stays
    # as it is, said so.
    codes = exits.exit_codes(lab.name, {cid: g[2] for cid, g in gone.items()})
    for cid, (i, where, crec, _c, restart) in gone.items():
        code = codes.get(cid)
        pod_name, cname = cid.split("/", 1)
        how = "exited (" if code is None else "completed (exit code 0, " if code == 0 else f"exited with code {code} ("
        kept = "" if restart != "Never" else f"; {policy.LEFT_EXITED if code is not None else policy.LEFT_UNKNOWN}"
        if cid in waiting:
            kept = waiting[cid].words(now)
        out[i] = "" if policy.completed(restart, code) else \
            f"containers: {where} {how}{_pid(crec)}); " \
            f"see `{logs_way(lab.name, pod_name, cname)}`{kept}"
    return [line for line in out if line] + node_uts.drift(lab) + health.drift(lab, fix)


def once(repair: Repair) -> Callable[[], str]:
    """``repair`` as a call that works it out the first time a line names it: in a lab whose containers all run
    as planned no line does, and working it out may read and parse the lab's topology file (realize.state.repair_up:
    whether the file still names this lab; 500 pods: ~5 ms, and ~13 ms more to load the YAML parser)."""
    if isinstance(repair, str):
        return lambda: repair
    got: list[str] = []

    def fix() -> str:
        if not got:
            got.append(repair())
        return got[0]
    return fix


def _pid(crec: dict) -> str:
    """How an exited container's line names its run: its pid, or, for one that ran and exited before the `up` that
    started it recorded it (workload/unrecorded.py), that its pid and exit code are not known."""
    if crec.get("pid") is not None:
        return f"pid {crec['pid']}"
    return "pid and exit code unknown: the `up` that started it ended before it recorded it; its log shows it ran"
