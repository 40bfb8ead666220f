"""The lab's echo containers started: a fresh lab's server launched early, and the others through the running
server or, where it does not answer, a new one for every echo container of the lab (lifecycle.start's).

Each echo container is a thread of the lab's echo server (echoserver.py, reached through launch.py) that sits in its
pod's namespaces; a spec names the pod, its namespaces, its log and its ports.
"""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING, Iterable

from netlab.kernel import kill
from netlab.kernel import processes as proc
from netlab.kernel.threads import Background
from netlab.realize.state_dir import lab_dir
from netlab.workload import again, launch
from netlab.workload.containers import echo_ports, log_dir, log_path, new_run, output_logs
from netlab.workload.tasks import is_echo_thread
from netlab.workload.uts import ensure_uts

if TYPE_CHECKING:
    from netlab.model.lab import Lab, PodInfo
    from netlab.model.topology import Container


class EarlyEcho:
    """The lab's echo server being launched by lifecycle.start_early, in a thread of its own."""

    def __init__(self, lab: Lab, pods: list[PodInfo]):
        self.specs = [{"id": f"{p.name}/{c.name}"} for p in pods for c in p.containers if not c.command]
        self.ids = {spec["id"] for spec in self.specs}
        self.launcher: subprocess.Popen | None = None  # once it has its specs
        self.awaited = False  # its server's start read to the end (lifecycle.start), or stopped (abort_early_launcher)
        self.pinned: dict[str, str] = {}  # pod -> the hostname its UTS pin was given, once pinned
        self._work = Background(self._run, lab, pods, name="netlab-echo")

    def _run(self, lab: Lab, pods: list[PodInfo]) -> subprocess.Popen:
        # Pinning UTS namespaces is a mount per pod: it overlaps with the lead thread's netlink work. The
        # server's interpreter starts first, and loads while they are pinned (it waits for its specs).
        launcher = None
        try:
            launcher = launch.start_launcher(launch.control_path(lab.name, create=True), launch.server_log(lab.name))
            hostnames = {p.name: p.hostname for p in pods}
            uts, _, _ = ensure_uts(lab.name, hostnames)
            self.pinned = hostnames
            lab_dir(lab.name)  # made as netlab makes it (marked), then logs/ below it (said by lifecycle.start)
            self.specs = echo_specs(lab, [(pod, c, uts[pod.name]) for pod in pods for c in pod.containers
                                          if not c.command])
            launch.stop_server(lab.name)  # a fresh lab: whatever still listens there is a leftover
            launch.send_specs(launcher, self.specs)
            self.launcher = launcher
            return launcher
        except BaseException:
            if launcher is not None:  # it never got its specs: it goes
                launcher.kill()
                launcher.wait()
            raise

    def join(self) -> subprocess.Popen:
        """Wait for the thread; the launcher that has the specs, or what stopped it (raised)."""
        return self._work.join()


def echo_specs(lab: Lab, items: list[tuple[PodInfo, Container, str]]) -> list[dict]:
    """The server's spec of each echo container (pod, container, its pod's UTS pin); a logs/ (or a log) of a user's
    (a symlink, a mount): /dev/null as its log, nothing written in it (containers.output_logs)."""
    folder = log_dir(lab.name)
    logs = output_logs(lab.name, [log_path(lab.name, pod.name, c.name, folder) for pod, c, _ in items])
    return [{"id": f"{pod.name}/{c.name}", "pod": pod.name, "netns": pod.netns, "uts": uts, "log": log,
             "ports": echo_ports(pod, c)} for (pod, c, uts), log in zip(items, logs)]


def start_echo(lab: Lab, pods: dict, echo: list[tuple[PodInfo, Container, str]],
                running: list[tuple[PodInfo, Container]], starting: dict[str, str], remade: bool = False,
                served: Iterable[tuple[PodInfo, Container]] = ()) -> list[str]:
    """Echo containers to (re)start: through the lab's running server, or a new one for all of them (``remade``: a
    rollback's, in the pods it made again: never a new one while the old one lives, which serves the others)."""
    server = launch.server_pid(lab.name)
    if server is not None and proc.proc_state(server) != "T":
        specs = echo_specs(lab, [(pod, c, pods[pod.name]["uts"]) for pod, c, _ in echo])
        # Waiting out a busy server: one that does not answer is replaced, and every pod's echo container with it.
        answer = launch.ask(lab.name, {"op": "add", "specs": specs}, len(specs), patience=launch.BUSY_WAIT)
        if answer is not None:
            return launch.record(answer, specs, pods)
    if remade and server is not None:
        return again.echo_server_left(server, pods, echo, starting)
    # No server, a stopped one (SIGSTOP), or one that did not answer: a new server takes every
    # echo container of the lab. Threads of a server that cannot be reached go with it, so they are found while it
    # still holds them (once it is gone a thread id names nothing); a rollback's (``running``:
    # of the pods it made again) takes those of the other pods that ran in the server before its run (``served``),
    # which went with it as the run stopped those pods.
    orphans = [(pod, c) for pod, c in running if is_echo_thread(pods[pod.name]["containers"][c.name])]
    launch.stop_server(lab.name)
    problems: list[str] = []
    tids = [int(pods[pod.name]["containers"][c.name]["pid"]) for pod, c in orphans]
    kill.terminate(tids, proc.running)  # those of another server (one whose control socket went)
    orphans += [(pod, c) for pod, c in served if (pod, c) not in orphans]
    for pod, c in orphans:
        cid = f"{pod.name}/{c.name}"
        crec = pods[pod.name]["containers"][c.name]
        starting[cid] = f"restarted container {cid} (its echo server did not answer)"
        crec["restarts"] = int(crec.get("restarts", 0)) + 1
        blocked = new_run(lab.name, pod.name, c.name, problems)
        for key in ("pid", "start"):
            crec.pop(key, None)
        if blocked:  # not a file where its log or the previous one goes: it would append to the run before's
            crec["error"] = blocked
            problems.append(f"pod {pod.name} container {c.name}: could not start: {blocked}")
            continue
        echo.append((pod, c, "its echo server did not answer"))
    specs = echo_specs(lab, [(pod, c, pods[pod.name]["uts"]) for pod, c, _ in echo])
    launcher = launch.launch_echo(specs, launch.control_path(lab.name, create=True), launch.server_log(lab.name))
    return problems + launch.await_echo(launcher, specs, pods)


def abort_early_launcher(early: EarlyEcho | None) -> None:
    """The server start_early launched, when nothing awaited its start (the run failed, or was stopped, before): it
    goes, listening or not yet (launch.abort_launch; ``stop_server`` finds a server only once it listens)."""
    if early is None or early.awaited:
        return
    early.awaited = True
    try:
        launcher = early.join()
    except BaseException:  # noqa: BLE001 - it never got its specs: killed, nothing was launched
        return
    launch.abort_launch(launcher)
