"""A pod's processes stopped and its UTS pin and logs gone, as its network namespace goes (``down``, a pod the
topology no longer has, one made again), and a pod's containers stopped in place (``netlab break``).

``stop`` does not trust the records: it stops every process with a thread in the lab's namespaces (namespace
identity, see kernel/processes.py), and the lab's echo server, found through its control socket.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Callable, Iterable

from netlab.kernel import kill, processes
from netlab.kernel.processes import ProcId
from netlab.model.naming import DNS_LABEL
from netlab.workload import crashloop, launch
from netlab.workload.containers import log_dir, logs_by_pod, remove_logs
from netlab.workload.records import records as _records
from netlab.workload.stopping import drop_echo, stop_container
from netlab.workload.tasks import RUN_ENV, proc_of, run_mark, task_of
from netlab.workload.uts import is_uts_mount, remove_pins_fs, remove_template, remove_uts, remove_uts_many, uts_dir, \
    uts_path

if TYPE_CHECKING:
    from netlab.model.lab import PodInfo
    from netlab.realize.state import LabState


def stop(state: LabState, netns_names: Iterable[str], everything: bool = False, taken: bool = False) -> list[str]:
    """Stop every process in these namespaces (and the pods' UTS namespaces), then unpin those.

    ``everything``: the whole lab goes. Then its echo server is stopped, and
    every pod's UTS namespace is doomed too, even one whose network namespace
    is no longer the lab's (deleted and remade by someone else): its
    containers still run in the lab's UTS namespace and in the lab's old, now
    nameless, network namespace. Otherwise the echo server is asked to drop
    the containers of the pods that go, waited for while it is busy (should it
    be stopped or still not answer, it has a thread in their namespaces and is
    stopped with the rest, said in a line: stopping.drop_echo).

    When the whole lab goes, its pins go at once with their tmpfs (uts.py).

    ``taken``: these names hold namespaces that are not the lab's now (its own were deleted by hand, another's
    mounted since): nothing is stopped by them, what ran in the pods is found in the pods' UTS namespaces, the
    lab's own pins (and the echo server drops their echo containers), as for a namespace deleted and left so.

    Returns descriptions of processes that survived SIGKILL (none expected), and the echo server's line. The
    processes not the lab's that it stopped (a user's ``netlab exec``, ``nsenter``) are added to
    ``state.stopped_others`` (kill.Stopped), as data: its caller takes them (lab/teardown.stop_features).
    """
    names = list(netns_names)
    pods = _records(state)["pods"]
    name_set = set(names)
    # Pods whose namespace goes: from the records, and from the UTS files on disk
    # (a crash between mount and save leaves a pinned namespace unrecorded).
    doomed = {pod for pod, prec in pods.items() if everything or prec.get("netns") in name_set}
    udir = uts_dir(state.lab)
    uts_files = []
    if os.path.isdir(udir):
        for pod in os.listdir(udir):  # pods' and nodes' pins (DNS labels), not the file they are links of
            if DNS_LABEL.match(pod) and (everything or f"{state.lab}-{pod}" in name_set):
                doomed.add(pod)
    uts_files = [os.path.join(udir, pod) for pod in sorted(doomed)]
    if everything:
        crashloop.remove(state.lab, anyone=True)  # no container of it waits for a restart now
        survivors = [f"the lab's echo server (pid {pid})" for pid in launch.stop_server(state.lab)]
    else:
        ids = [f"{pod}/{c}" for pod in sorted(doomed) for c in pods.get(pod, {}).get("containers", {})]
        survivors = drop_echo(state.lab, ids)  # a line when the server cannot drop them: it goes with them
    others: list[kill.Found] = []
    survivors += kill.stop_namespaces([] if taken else names, [u for u in uts_files if is_uts_mount(u)],
                                      ours=containers_of(pods, doomed), others=others)
    where = {os.path.join(udir, pod): f"{state.lab}-{pod}" for pod in doomed}  # a pin found it: its pod's name
    state.stopped_others += [kill.Stopped.of(f, where.get(f.where, f.where)) for f in others]
    if not (everything and remove_pins_fs(state.lab)):
        remove_uts_many([uts_path(state.lab, pod) for pod in sorted(doomed) if DNS_LABEL.match(pod)])
    logs = logs_by_pod(state.lab)
    for pod in doomed:  # their pins are gone (above): only their records and logs are left
        pods.pop(pod, None)
    left = remove_logs(state.lab, [name for pod in sorted(doomed) for name in logs.get(pod, [])])
    if not everything:  # else the lab's whole folder goes (lab_list.forget), with what is in it
        survivors += left
    remove_template(state.lab)
    for d in (udir, log_dir(state.lab)):
        try:
            os.rmdir(d)
        except OSError:
            pass
    if doomed and not everything:  # the whole lab's state goes with it
        try:
            state.save()
        except OSError:
            pass
    return survivors


def containers_of(pods: dict[str, dict[str, Any]], doomed: Iterable[str]) -> Callable[[ProcId], bool]:
    """Whether a process is one of the containers the records of the pods ``doomed`` name: a command container's
    first process, or one of its run (:func:`processes.of_run`: its session, its run's mark), or a daemon it
    detached (a session of its own, still its run's mark, started after it), or the echo server whose threads are
    the echo containers. What else runs in their namespaces someone else started there (``netlab exec``, which
    sets no mark, ``nsenter``), which their stop says it stopped (kill.stop_namespaces' ``others``)."""
    leaders: set[ProcId] = set()
    runs: dict[int, tuple[ProcId, bytes]] = {}  # by session id: a run's first process began its session
    servers: set[int] = set()
    for pod in doomed:
        for crec in ((pods.get(pod) or {}).get("containers") or {}).values():
            p = proc_of(crec) if isinstance(crec, dict) else None
            if p is None:
                continue
            leaders.add(p)
            mark = run_mark(crec)
            if mark:
                runs[p.pid] = (p, mark.encode())
            group = processes.thread_group(p.pid)
            if group is not None and group != p.pid and processes.start_time(p.pid) == p.start:
                servers.add(group)  # an echo container: a thread of the lab's echo server

    def ours(p: ProcId) -> bool:
        if p in leaders or p.pid in servers:
            return True
        run = runs.get(processes.session(p.pid) or 0)
        if run is not None and processes.of_run(p.pid, *run):
            return True
        # A daemon a container detached (a session of its own) still carries its run's mark; and netlab's own
        # without a record to say so (`down --force` of a lab whose state was lost): the lab's echo server, and
        # a command container's run, whose environment names it (tasks.RUN_ENV)
        return is_echo_server(p.pid) or processes.environ_names(p.pid, RUN_ENV.encode())

    return ours


def is_echo_server(pid: int) -> bool:
    """Process ``pid`` is a lab's echo server, as launch.start_launcher starts it (``python -I -m
    netlab.workload.echoserver ...``)."""
    return processes.cmdline(pid)[1:4] == ["-I", "-m", launch.ECHO_SERVER]


def stop_pod(state: LabState, pod: PodInfo) -> list[str]:
    """Stop a pod's running containers, keeping their records: the pod is down, as after a crash.

    ``status`` then reports them exited and ``up`` starts them again (``netlab break``).
    Returns the containers stopped, as "pod/container".
    """
    prec = _records(state)["pods"].get(pod.name) or {}
    out = []
    for name, crec in sorted((prec.get("containers") or {}).items()):
        if isinstance(crec, dict) and task_of(crec, pod.netns) not in (None, "Z", "X"):
            stop_container(state.lab, f"{pod.name}/{name}", crec, pod.netns, uts_path(state.lab, pod.name))
            out.append(f"{pod.name}/{name}")
    return out


def forget_pod(state: LabState, pod: str) -> None:
    """Unpin the pod's UTS namespace and drop its logs (its processes are already stopped).

    Paths are computed from the lab and pod names (never taken from the state
    file), and the pod name must be a DNS label, so nothing outside the lab's
    state directory can be touched.
    """
    if not DNS_LABEL.match(pod):
        return
    remove_uts(uts_path(state.lab, pod))
    remove_logs(state.lab, logs_by_pod(state.lab).get(pod, []))  # what it leaves, stop() said as the pod went
