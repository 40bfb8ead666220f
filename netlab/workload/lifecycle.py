"""Containers in pods: start them after the network is up, stop them before it goes.

A pod is a set of namespaces that outlive any one container, as the pause
container holds them in Kubernetes:

- the network namespace ``<lab>-<pod>`` (made by apply.py), shared by every
  container of the pod, so they reach each other on ``localhost``;
- a UTS namespace whose hostname is the pod's name, made by uts.py and kept
  alive by a bind mount onto ``<state dir>/uts/<pod>`` (the way ``ip netns`` keeps a
  network namespace), so ``hostname`` prints the pod name in every container
  and in ``netlab exec``.

Each container is a process that joins both (see kernel/processes.py), started
detached from the CLI (new session, re-parented to init), with stdout and
stderr appended to ``<state dir>/logs/<pod>/<container>.log``. A container
without a ``command`` runs the built-in echo server (echo.py; a run's are
all launched at once by launch.py) on its declared ports, 8080/TCP if none,
and on the UDP twin of each TCP port (ports.py).

The lab's state records, per container, the process identity (pid + start
time) and the argv, so ``up`` again starts only what is missing, exited,
stopped or changed (it converges; no duplicates), and ``status`` reports the
same. A container's running state is the lab's: a process stopped by SIGSTOP
still holds its sockets (the kernel completes TCP handshakes for it) but
answers nothing, so it is drift, and ``up`` replaces it (SIGTERM with SIGCONT,
then a new process).

``stop`` does not trust those records: it stops every process whose network or
UTS namespace *is* one of the lab's (namespace identity, see kernel/processes.py).

Interface used by apply.py (see FEATURES there)::

    start(lab, state)  -> StartResult  containers started or restarted; problems (could not start)
    stop(state, netns_names)          before the namespaces are deleted
    drift(lab, state)  -> list[str]   one line per container not running (exited, stopped, changed)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from typing import Iterable

from netlab.feature import StartResult
from netlab.model.lab import Lab, PodInfo
from netlab.model.topology import DNS_LABEL, Container
from netlab.kernel import netns as nsmod
from netlab.kernel import processes as proc
from netlab.realize.state import LabState, lab_dir
from netlab.workload import ports
from netlab.workload.launch import await_echo, launch_echo
from netlab.workload.uts import ensure_uts, is_uts_mount, remove_uts, uts_dir, uts_hostnames, uts_path

__all__ = ["start", "start_early", "abort_early", "stop", "drift", "uts_path", "is_uts_mount", "log_path",
           "log_dir", "uts_dir", "container_argv", "echo_ports", "CONTAINER_PATH"]

RECORD = "workload"
RECORD_VERSION = 1
CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


# --- paths --------------------------------------------------------------------


def log_dir(lab_name: str, pod: str | None = None) -> str:
    base = os.path.join(lab_dir(lab_name), "logs")
    return os.path.join(base, pod) if pod else base


def log_path(lab_name: str, pod: str, container: str) -> str:
    return os.path.join(log_dir(lab_name, pod), f"{container}.log")


# --- what runs in a container ---------------------------------------------------


def echo_ports(pod: PodInfo, container: Container) -> list[tuple[int, str]]:
    """Ports the built-in echo server of this container listens on (see workload/ports.py)."""
    return ports.echo_ports(pod.containers, container)


def container_argv(pod: PodInfo, container: Container) -> list[str]:
    """argv of a container: its command, or the echo server's.

    The echo server runs on this installation's interpreter (sys.executable);
    it is recorded as plain ``python3`` so that ``up`` from another entry
    point (``netlab``, ``python -m netlab``) sees the same command.
    """
    if container.command:
        return list(container.command)
    argv = ["python3", "-m", "netlab.workload.echo", "--pod", pod.name]
    for port, protocol in echo_ports(pod, container):
        argv += ["--port", f"{port}/{protocol}"]
    return argv


def container_env(lab: Lab, pod: PodInfo, container: Container) -> dict[str, str]:
    """A clean environment, with the pod's facts like Kubernetes' downward API."""
    env = {
        "PATH": CONTAINER_PATH,
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "HOSTNAME": pod.name,
        "POD_NAME": pod.name,
        "POD_IP": str(pod.ip),
        "NODE_NAME": pod.node,
        "NETLAB_LAB": lab.name,
        "NETLAB_CONTAINER": container.name,
    }
    if not container.command:
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


# --- records in state.extra ------------------------------------------------------


def _records(state: LabState) -> dict:
    rec = state.extra.get(RECORD)
    if not isinstance(rec, dict) or rec.get("version") != RECORD_VERSION:
        rec = {"version": RECORD_VERSION, "pods": {}}
        state.extra[RECORD] = rec
    rec.setdefault("pods", {})
    return rec


def _proc_of(crec: dict) -> proc.ProcId | None:
    try:
        return proc.ProcId(int(crec["pid"]), int(crec["start"]))
    except (KeyError, TypeError, ValueError):
        return None


def _running_in(crec: dict, netns: str) -> bool:
    """The recorded process is alive and still inside the pod's network namespace (stopped or not)."""
    p = _proc_of(crec)
    if p is None or not proc.alive(p):
        return False
    want = proc.ns_identity(nsmod.netns_path(netns))
    return want is not None and proc.ns_identity(f"/proc/{p.pid}/ns/net") == want


def _stopped(crec: dict) -> bool:
    """The recorded process is stopped (SIGSTOP): a container that exists but runs nothing is not running."""
    p = _proc_of(crec)
    return p is not None and proc.stopped(p)


# --- the three entry points -------------------------------------------------------


class EarlyEcho:
    """Echo containers being launched by :func:`start_early`, in a thread of their own."""

    def __init__(self, lab: Lab, pods: list[PodInfo]):
        self.specs = [{"id": f"{p.name}/{c.name}"} for p in pods for c in p.containers if not c.command]
        self.ids = {spec["id"] for spec in self.specs}
        self.launcher: subprocess.Popen | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(lab, pods), name="netlab-echo", daemon=True)
        self._thread.start()

    def _run(self, lab: Lab, pods: list[PodInfo]) -> None:
        # Pinning UTS namespaces and making log directories are mount and
        # mkdir system calls: they overlap with the lead thread's netlink work.
        try:
            uts = ensure_uts(lab.name, [p.name for p in pods])
            specs = []
            for pod in pods:
                os.makedirs(log_dir(lab.name, pod.name), mode=0o700, exist_ok=True)
                specs += [_echo_spec(lab, pod, c, uts[pod.name]) for c in pod.containers if not c.command]
            self.specs = specs
            self.launcher = launch_echo(specs)
        except BaseException as exc:  # noqa: BLE001 - reported by join()
            self.error = exc

    def join(self) -> subprocess.Popen:
        self._thread.join()
        if self.error is not None:
            raise self.error
        assert self.launcher is not None
        return self.launcher


def _echo_spec(lab: Lab, pod: PodInfo, c: Container, uts: str) -> dict:
    return {"id": f"{pod.name}/{c.name}", "pod": pod.name, "netns": pod.netns,
            "netns_path": nsmod.netns_path(pod.netns), "uts": uts, "log": log_path(lab.name, pod.name, c.name),
            "ports": echo_ports(pod, c), "env": container_env(lab, pod, c)}


def start_early(lab: Lab, state: LabState) -> EarlyEcho | None:
    """A fresh lab: pin the UTS namespaces and launch the echo servers now.

    ``up`` calls this as soon as the namespaces exist, and configures links,
    addresses and routes while the launcher forks (on the other core). An echo
    server needs only its pod's namespaces: it listens on 0.0.0.0. Containers
    with a command still start in :func:`start`, after the network, as in
    Kubernetes where CNI ADD completes before any container runs.
    """
    if _records(state)["pods"]:
        return None  # not a fresh lab: start() compares with what runs
    present = [p for p in lab.pods if nsmod.is_netns_mount(p.netns)]
    if not any(not c.command for p in present for c in p.containers):
        return None
    return EarlyEcho(lab, present)


def abort_early(early: EarlyEcho | None) -> None:
    """Stop a launcher whose lab is being rolled back (its children go with the namespaces' stop)."""
    if early is None:
        return
    try:
        launcher = early.join()
    except BaseException:  # noqa: BLE001 - nothing was launched
        return
    if launcher.poll() is None:
        launcher.kill()
        launcher.wait()


def start(lab: Lab, state: LabState, early: EarlyEcho | None = None) -> StartResult:
    """Start every pod's containers that are not already running as specified. Idempotent.

    Returns what it did (containers started, restarted, stopped) and problems
    in words (containers that could not start); those are also recorded, so
    ``status`` shows them.
    """
    rec = _records(state)
    pods = rec["pods"]
    done = StartResult()
    echo_specs: list[dict] = []
    starting: dict[str, str] = {}  # "pod/container" -> the action, once it runs
    try:
        if early is not None:
            early.join()  # its UTS namespaces and launcher exist before we look
        # Pods the topology no longer has (their namespaces went through stop()).
        for name in [n for n in pods if n not in {p.name for p in lab.pods}]:
            _forget_pod(state, name, pods.pop(name))
        present = []
        for pod in lab.pods:
            if nsmod.is_netns_mount(pod.netns):
                present.append(pod)
            else:
                done.problems.append(f"pod {pod.name}: namespace {pod.netns} is missing; containers not started")
        uts = ensure_uts(lab.name, [pod.name for pod in present])
        for pod in present:
            prec = pods.setdefault(pod.name, {})
            prec["netns"] = pod.netns
            prec["uts"] = uts[pod.name]
            containers = prec.setdefault("containers", {})
            wanted = {c.name for c in pod.containers}
            for cname in [c for c in containers if c not in wanted]:
                _stop_container(containers.pop(cname), pod.netns)
                done.actions.append(f"stopped container {pod.name}/{cname} (no longer in the topology)")
            os.makedirs(log_dir(lab.name, pod.name), mode=0o700, exist_ok=True)
            for c in pod.containers:
                argv = container_argv(pod, c)
                crec = containers.get(c.name)
                why = _why_replace(crec, argv, pod.netns)
                if why is None:
                    continue  # runs as specified
                if crec:
                    _stop_container(crec, pod.netns)  # changed, exited or stopped: replace it
                cid = f"{pod.name}/{c.name}"
                starting[cid] = f"started container {cid}" if not crec else f"restarted container {cid} ({why})"
                restarts = int(crec.get("restarts", -1)) + 1 if crec else 0
                log = log_path(lab.name, pod.name, c.name)
                new = {"argv": argv, "log": log, "restarts": restarts}
                containers[c.name] = new
                if not c.command:
                    if early is None or cid not in early.ids:
                        echo_specs.append(_echo_spec(lab, pod, c, prec["uts"]))
                    continue
                try:
                    p = proc.spawn(argv, netns=pod.netns, uts_path=prec["uts"], log_path=log,
                                   env=container_env(lab, pod, c))
                except OSError as exc:
                    new["error"] = exc.strerror or str(exc)
                    done.problems.append(f"pod {pod.name} container {c.name}: could not start: {new['error']}")
                    continue
                new.update(pid=p.pid, start=p.start)
        if early is not None:
            done.problems += await_echo(early.join(), early.specs, pods)
        if echo_specs:
            done.problems += await_echo(launch_echo(echo_specs), echo_specs, pods)
    finally:
        abort_early(early)
        state.save()
    for cid, action in starting.items():
        pod, cname = cid.split("/", 1)
        if "error" not in pods.get(pod, {}).get("containers", {}).get(cname, {"error": ""}):
            done.actions.append(action)
    return done


def _why_replace(crec: dict | None, argv: list[str], netns: str) -> str | None:
    """Why a container must be (re)started, in words; None when it runs as specified."""
    if not crec:
        return "never started"
    if "error" in crec:
        return "it had failed to start"
    if not _running_in(crec, netns):
        return "it had exited"
    if _stopped(crec):
        return "it was stopped"
    if crec.get("argv") != argv:
        return "its command changed"
    return None


def stop(state: LabState, netns_names: Iterable[str], everything: bool = False) -> list[str]:
    """Stop every process in these namespaces (and the pods' UTS namespaces), then unpin those.

    ``everything``: the whole lab goes. Then every pod's UTS namespace is
    doomed too, even one whose network namespace is no longer the lab's
    (deleted and remade by someone else): its containers still run in the
    lab's UTS namespace and in the lab's old, now nameless, network namespace.

    Returns descriptions of processes that survived SIGKILL (none expected).
    """
    names = list(netns_names)
    rec = _records(state)
    pods = rec["pods"]
    name_set = set(names)
    # Pods whose namespace goes: from the records, and from the UTS files on disk
    # (a crash between mount and save leaves a pinned namespace unrecorded).
    doomed = {pod for pod, prec in pods.items() if everything or prec.get("netns") in name_set}
    udir = os.path.join(lab_dir(state.lab), "uts")
    if os.path.isdir(udir):
        for pod in os.listdir(udir):
            if everything or f"{state.lab}-{pod}" in name_set:
                doomed.add(pod)
    uts_files = [os.path.join(udir, pod) for pod in sorted(doomed)]
    survivors = proc.stop_namespaces(names, [u for u in uts_files if is_uts_mount(u)])
    for pod in sorted(doomed):
        _forget_pod(state, pod, pods.pop(pod, {}))
    for d in (udir, os.path.join(lab_dir(state.lab), "logs")):
        try:
            os.rmdir(d)
        except OSError:
            pass
    if doomed:
        try:
            state.save()
        except OSError:
            pass
    return survivors


def drift(lab: Lab, state: LabState) -> list[str]:
    """One line per container that is not running as the topology says."""
    pods = _records(state)["pods"]
    out: list[str] = []
    hosts = uts_hostnames({pod.name: uts_path(lab.name, pod.name) for pod in lab.pods})
    for pod in lab.pods:
        prec = pods.get(pod.name)
        if prec is None:
            out.append(f"containers: pod {pod.name} has no containers started; run `sudo netlab up` again")
            continue
        if hosts.get(pod.name) != pod.name:
            out.append(f"containers: pod {pod.name}: UTS namespace (hostname {pod.name}) is missing")
        containers = prec.get("containers", {})
        for c in pod.containers:
            crec = containers.get(c.name)
            where = f"pod {pod.name} container {c.name}"
            if crec is None:
                out.append(f"containers: {where} was never started")
            elif "error" in crec:
                out.append(f"containers: {where} could not start: {crec['error']}")
            elif not _running_in(crec, pod.netns):
                out.append(f"containers: {where} exited (pid {crec.get('pid')}); "
                           f"see `netlab logs {pod.name} -c {c.name}`")
            elif _stopped(crec):
                out.append(f"containers: {where} is stopped (pid {crec.get('pid')}, by SIGSTOP or SIGTSTP); "
                           f"`sudo netlab up` restarts it")
            elif crec.get("argv") != container_argv(pod, c):
                out.append(f"containers: {where} runs an old command; `sudo netlab up` restarts it")
    return out


def stop_pod(state: LabState, pod: PodInfo) -> list[str]:
    """Stop a pod's running containers, keeping their records: the pod is down, as after a crash.

    ``status`` then reports them exited and ``up`` starts them again (``netlab break``).
    Returns the containers stopped, as "pod/container".
    """
    prec = _records(state)["pods"].get(pod.name) or {}
    out = []
    for name, crec in sorted((prec.get("containers") or {}).items()):
        if isinstance(crec, dict) and _running_in(crec, pod.netns):
            _stop_container(crec, pod.netns)
            out.append(f"{pod.name}/{name}")
    return out


# --- helpers -------------------------------------------------------------------------


def _stop_container(crec: dict, netns: str) -> None:
    """Stop one recorded container (only if it is still that process, in that namespace)."""
    p = _proc_of(crec)
    if p is None or not proc.alive(p):
        return
    want = proc.ns_identity(nsmod.netns_path(netns))

    def still_ours(pid: int) -> bool:
        return proc.start_time(pid) == p.start and proc.ns_identity(f"/proc/{pid}/ns/net") == want

    proc.terminate([p.pid], still_ours)


def _forget_pod(state: LabState, pod: str, prec: dict) -> None:
    """Unpin the pod's UTS namespace and drop its logs (its processes are already stopped).

    Paths are computed from the lab and pod names (never taken from the state
    file), and the pod name must be a DNS label, so nothing outside the lab's
    state directory can be touched.
    """
    if not DNS_LABEL.match(pod):
        return
    remove_uts(uts_path(state.lab, pod))
    shutil.rmtree(log_dir(state.lab, pod), ignore_errors=True)
