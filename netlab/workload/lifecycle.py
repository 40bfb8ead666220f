"""Containers in pods: start them after the network is up, stop them before it goes.

A pod is a set of namespaces that outlive any one container, as the pause
container holds them in Kubernetes:

- the network namespace ``<lab>-<pod>``, shared by every container of the
  pod, so they reach each other on ``localhost``;
- a UTS namespace whose hostname is the pod's (its name unless the topology
  gives it one), made by uts.py and kept alive by a bind mount onto
  ``<state dir>/<lab>/uts/<pod>`` (the way ``ip netns`` keeps a network
  namespace), so ``hostname`` prints it in every container and in ``netlab exec`` (each node gets one too, node_uts.py).

A container with a ``command`` is a process that joins both (see
kernel/spawning.py), started detached from the CLI (new session,
re-parented to init). A container without one runs netlab's echo server on
its declared ports, 8080/TCP if none, and on the UDP twin of each TCP port
(ports.py); all of a lab's are served by one process, the lab's echo server
(echoserver.py, reached through launch.py), in which each echo container is a
thread that sits in its pod's namespaces. Every container's output is
appended to ``<state dir>/<lab>/logs/<pod>.<container>.log``.

The lab's state records, per container, the task's identity (pid, or the
echo container's thread id, plus its start time) and the argv, so ``up``
again starts only what is missing, exited (as its pod's restartPolicy says:
policy.py), stopped or changed (it converges; no duplicates), and ``status``
reports the same. A container's running state
is the lab's: a process stopped by SIGSTOP still holds its sockets (the
kernel completes TCP handshakes for it) but answers nothing, so it is drift,
and ``up`` replaces it (SIGTERM with SIGCONT, then a new one). Stopping one
echo container stops the lab's echo server: all of them are then stopped,
and ``up`` starts a new server for them all.

``stop`` does not trust those records (pod_teardown.py): it stops every
process with a thread in the lab's namespaces, and the lab's echo server.

Interface used by netlab.lab (a feature, netlab/feature.py)::

    start(lab, state)  -> StartResult  containers started or restarted; problems (could not start)
    stop(state, netns_names)          before the namespaces are deleted
    drift(lab, state)  -> list[str]   one line per container not running (exited, stopped, changed)
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Callable, Collection, Iterable

from netlab.errors import repair_way
from netlab.feature import StartResult
from netlab.kernel import netns as nsmod
from netlab.kernel import spawning, testhooks
from netlab.kernel import processes as proc
from netlab.realize.state_dir import lab_dir
from netlab.workload import (again, dns_records, echo_start, echo_upgrade, exits, health, launch, node_uts, policy,
                             service_envs, unrecorded)
from netlab.workload import put_back as put_back_mod
from netlab.workload import drift as container_drift
from netlab.workload.containers import (CONTAINER_PATH, container_argv, container_env, echo_ports, log_blocked, log_dir,
                                        log_path, logs_fd, forget_runs, logs_refused, logs_uncut, new_run,
                                        note_start_error, open_log)
from netlab.workload import stopping
from netlab.workload.pod_teardown import forget_pod, stop
from netlab.workload.records import RECORD, RECORD_VERSION, records as _records  # noqa: F401 - RECORD*: interface
from netlab.workload.stopping import stop_container
from netlab.workload.tasks import SANDBOX_REMADE, is_echo_thread, why_replace
from netlab.workload.uts import ensure_uts, is_uts_mount, uts_dir, uts_path

if TYPE_CHECKING:
    from netlab.model.lab import Lab, PodInfo
    from netlab.model.topology import Container
    from netlab.realize.state import LabState

__all__ = ["start", "start_early", "abort_early", "stop", "drift", "running", "start_again", "stop_made",
           "before_run", "put_back",
           "uts_path", "is_uts_mount", "log_path", "log_dir", "uts_dir", "container_argv", "echo_ports",
           "CONTAINER_PATH", "containers", "why_replace", "Hold"]

# --- the three entry points -------------------------------------------------------


def start_early(lab: Lab, state: LabState) -> echo_start.EarlyEcho | None:
    """A fresh lab: pin the UTS namespaces and launch the lab's echo server now.

    ``up`` calls this as soon as the namespaces exist, and configures links,
    addresses and routes while the server starts (on the other core). An echo
    container needs only its pod's namespaces: it listens on 0.0.0.0.
    Containers with a command still start in :func:`start`, after the network,
    as in Kubernetes where CNI ADD completes before any container runs.
    """
    if _records(state)["pods"]:
        return None  # not a fresh lab: start() compares with what runs
    present = [p for p in lab.pods if nsmod.is_netns_mount(p.netns)]
    if not any(not c.command for p in present for c in p.containers):
        return None
    return echo_start.EarlyEcho(lab, present)


def abort_early(early: echo_start.EarlyEcho | None) -> None:
    """Stop the echo server of a lab that is being rolled back, and its launcher."""
    echo_start.abort_early_launcher(early)


# hold(pod, container, record, why) -> a reason not to restart it now, or None: the pod's restartPolicy
# (plain `up`: exits.policy_hold), and the kubelet's back-off too (netlab up --watch).
Hold = Callable[["PodInfo", "Container", dict, str], "str | None"]


def start(lab: Lab, state: LabState, early: echo_start.EarlyEcho | None = None, hold: Hold | None = None,
          only: Collection[str] | None = None, served: Collection[str] = ()) -> StartResult:
    """Start every pod's containers that are not already running as specified. Idempotent.

    Returns what it did (containers started, restarted, stopped) and problems
    in words (containers that could not start); those are also recorded, so
    ``status`` shows them. ``hold`` may keep an exited container down (it is
    then neither restarted nor reported). ``only``: the pods (names) to look at, the others' containers and
    records left as they are, and the nodes' too (a rollback's pods made again: workload/again.py); ``served``:
    the other pods' echo containers its run's lab echo server served before it (a new server takes them too).
    """
    pods = _records(state)["pods"]
    envs = service_envs.Starting(lab, _records(state))
    hold = hold if hold is not None else exits.policy_hold(lab.name)
    done = StartResult()
    echo: list[tuple[PodInfo, Container, str]] = []  # echo containers to (re)start, and why
    starting: dict[str, str] = {}  # "pod/container" -> the action, once it runs
    spawned: list[tuple[str, proc.ProcId, int]] = []  # command containers started, with a pidfd each
    launches: list[tuple[PodInfo, Container, dict, dict | None, int | None]] = []  # to start, once recorded
    exited: dict[str, dict] = {}  # containers restarted because they had exited: their old records
    logs: int | None = None  # the lab's logs/ folder, checked and opened once for every log looked at below
    try:
        if early is not None:
            early.join()  # its UTS namespaces and server exist before we look
        # Pods the topology no longer has (their namespaces went through stop()).
        for name in [n for n in pods if n not in {p.name for p in lab.pods} and only is None]:
            pods.pop(name)
            forget_pod(state, name)
        present = []
        for pod in [p for p in lab.pods if only is None or p.name in only]:
            if nsmod.is_netns_mount(pod.netns):
                present.append(pod)
            elif pod.name not in lab.terminal:  # (a terminal CNI pod's stopped sandbox: its namespace removed)
                done.problems.append(f"pod {pod.name}: namespace {pod.netns} is missing; containers not started")
        hostname = {pod.name: pod.hostname for pod in present}
        pinned = early.pinned if early is not None else {}  # just now, with these hostnames: not read again
        uts, made, renamed = ensure_uts(lab.name, hostname, [n for n, h in hostname.items() if pinned.get(n) == h])
        # Containers an `up` killed as it started them did not record: taken over (or their records dropped).
        took, _taken = unrecorded.resolve(lab.name, pods, uts, {pod.name: pod.netns for pod in present})
        done.actions += took
        # A pod recorded before whose pin is gone (unmounted by hand) got a UTS namespace anew: said.
        done.actions += [f"made pod {name}'s UTS namespace again (hostname {hostname[name]})"
                         for name in made if name in pods]
        done.actions += [f"set pod {name}'s hostname to {hostname[name]}" for name in renamed]
        if only is None:
            done += node_uts.start(lab, again=bool(pods))  # a node's hostname is its name, as on a real node
        done += dns_records.sync(lab, pods)  # the cluster DNS's A and PTR records, before its dnsmasq (re)reads them
        lab_dir(lab.name)  # made as netlab makes it (marked), then logs/ below it (fd-relative, never a user's)
        refused = logs_refused(lab.name)
        if refused is not None:  # a symlink, a bind mount: nothing written through it, the output to /dev/null
            done.problems.append(refused)
        else:
            logs = logs_fd(lab.name)
        if only is None and early is None:  # a server of another netlab (left up across an upgrade): replaced
            replaced = echo_upgrade.replace(lab, _records(state), present, uts)
            done += replaced
            if replaced.actions:
                # Every node's 10256 closed with the old one: served again now, not only at the end (which syncs
                # them again, and says what it could not serve)
                health.start(lab, _records(state))
                state.save()  # its containers' new threads, should this up be stopped before its end
        running_echo: list[tuple[PodInfo, Container]] = []
        logs_folder = log_dir(lab.name)
        for pod in present:
            prec = pods.setdefault(pod.name, {})
            if "created" not in prec:
                # The pod's creationTimestamp: when up first made its sandbox. Kept when the sandbox is made
                # again (the kubelet rebuilds a dead one in the same pod object); a pod taken out of the
                # topology loses its record, and is a new pod when it comes back.
                birth = proc.ns_birth(nsmod.netns_path(pod.netns))
                prec["created"] = birth[2] / 1e9 if birth else time.time()
            prec["netns"] = pod.netns
            prec["uts"] = uts[pod.name]
            containers = prec.setdefault("containers", {})
            wanted = {c.name for c in pod.containers}
            for cname in [c for c in containers if c not in wanted]:
                stop_container(state.lab, f"{pod.name}/{cname}", containers.pop(cname), pod.netns, prec["uts"])
                done.problems += forget_runs(lab.name, pod.name, cname)  # its logs go with it (kubectl finds none)
                done.actions.append(f"stopped container {pod.name}/{cname} (no longer in the topology)")
            for c in pod.containers:
                argv = container_argv(pod, c)
                crec = containers.get(c.name)
                why = why_replace(crec, argv, pod.netns, prec["uts"])
                if why is None:
                    if not c.command:
                        running_echo.append((pod, c))
                    continue  # runs as specified
                cid = f"{pod.name}/{c.name}"
                held = hold(pod, c, crec, why) if crec else None
                if held:
                    if why == SANDBOX_REMADE:
                        # The kubelet kills a dead sandbox's containers whatever the policy; held, this one
                        # is not started again in the new namespace.
                        stop_container(state.lab, cid, crec, pod.netns, prec["uts"])
                        done.actions.append(f"stopped container {cid} ({why}; {held})")
                    continue
                replace = None  # a pidfd of the running dnsmasq of the cluster DNS, which its new one stops
                if crec and (c.command or not is_echo_thread(crec)):
                    # Changed, exited, stopped, or left in the pod's old namespace: replace it. The cluster DNS's
                    # dnsmasq only at the new one's exec (kernel/spawning.py): port 53 closed as briefly as can be.
                    replace = stopping.claim(crec, pod.netns) if dns_records.is_addon(pod) else None
                    if replace is None:
                        stop_container(state.lab, cid, crec, pod.netns, prec["uts"])
                starting[cid] = f"started container {cid}" if not crec else f"restarted container {cid} ({why})"
                # A changed command (also of one that exited since) is a new pod's container: restarts 0, no
                # run before it, no last exit code. But for the cluster DNS add-on's: a record only dnsmasq's
                # command line holds changed, where CoreDNS would not restart: counted.
                renewed = bool(crec) and crec.get("argv") != argv and not dns_records.is_addon(pod)
                if crec and why == policy.EXITED and not renewed:  # an echo container too: its server knows
                    exited[cid] = crec  # how, asked of the lab's echo server below, while it still holds it
                restarts = int(crec.get("restarts", -1)) + 1 if crec and not renewed else 0
                rotated = None
                if renewed:  # what is not a file at its log's name: said below, as its start fails on it
                    done.problems += forget_runs(lab.name, pod.name, c.name, which=("previous log",))
                elif crec:
                    rotated = new_run(lab.name, pod.name, c.name, done.problems, dir_fd=logs)  # `logs --previous`
                # its Service variables as it starts: those it keeps while it runs (netlab exec -c gives them),
                # kept once for all the runs that start with them (service_envs.py)
                new = {"argv": argv, "log": log_path(lab.name, pod.name, c.name, logs_folder), "restarts": restarts,
                       service_envs.FIELD: envs.key_for(pod)}
                containers[c.name] = new
                dns_records.note_start(lab, pod, new)  # the add-on's dnsmasq reads the records file as it is
                blocked = rotated or log_blocked(new["log"], dir_fd=logs)  # not a file there: someone's, left alone
                if blocked and replace is not None:
                    os.close(replace)
                    stop_container(state.lab, cid, crec, pod.netns, prec["uts"])
                if blocked:
                    new["error"] = blocked
                    done.problems.append(f"pod {pod.name} container {c.name}: could not start: {blocked}")
                    continue
                if not c.command:
                    if early is None or cid not in early.ids:
                        echo.append((pod, c, why))
                    continue
                net = proc.ns_birth(nsmod.netns_path(pod.netns))  # where it starts (tasks.started_in)
                if net is not None:
                    new["net"] = list(net)
                new["id"] = unrecorded.new_id()  # in its environment: found by it, should this run be killed
                new["log_at"] = unrecorded.log_size(new["log"])  # its own output starts there: it ran, if any
                if replace is not None and crec:
                    new["replaces"] = [crec["pid"], crec["start"]]
                launches.append((pod, c, new, crec, replace))
        if launches:  # written ahead: each container it starts is recorded, by its id, before it runs
            state.save()
            uncut = logs_uncut(lab.name)  # once: a file system that cannot start a command container's log over
            if uncut:
                done.problems.append(uncut)
        while launches:
            pod, c, new, crec, replace = launches.pop(0)
            cid, uts_pin = f"{pod.name}/{c.name}", pods[pod.name]["uts"]
            if crec and replace is None:  # the run before ended: what it started goes with it (QA q51 2)
                stopping.stop_rest(crec, pod.netns)
            try:
                log_fd = open_log(new["log"])  # in netlab's own logs/ only: else /dev/null (said above)
                try:
                    p, fd = spawning.spawn(new["argv"], netns=pod.netns, uts_path=uts_pin, log_path=log_fd,
                                           env={**container_env(lab, pod, c, service_env_of(state, new)),
                                                unrecorded.ENV: new["id"]},
                                           replace=replace)
                finally:
                    os.close(log_fd)
            except OSError as exc:
                new["error"] = exc.strerror or str(exc)
                note_start_error(new["log"], new["error"])
                done.problems.append(f"pod {pod.name} container {c.name}: could not start: {new['error']}")
                continue
            finally:
                new.pop("replaces", None)
                if replace is not None:  # gone by now (or never reached: stopped here)
                    os.close(replace)
                    stop_container(state.lab, cid, crec, pod.netns, uts_pin)
            if fd is not None:
                spawned.append((cid, p, fd))
            new.update(pid=p.pid, start=p.start)
            if not launches:
                testhooks.fault_point("containers-started")  # running, their pids known to this process alone
        for cid, code in exits.exit_codes(lab.name, exited).items():
            starting[cid] = f"restarted container {cid} (it had exited with code {code})"
            # The new run's record keeps how the one before it ended, as the kubelet's lastState; its own
            # exit, when it comes, is asked of the server for its own pid and start time (exits.py).
            pod_name, cname = cid.split("/", 1)
            pods[pod_name]["containers"][cname]["last_exit_code"] = code
        if early is not None:
            done.problems += launch.await_echo(early.join(), early.specs, pods)
            early.awaited = True
        if echo:
            done.problems += echo_start.start_echo(lab, pods, echo, running_echo, starting, remade=only is not None,
                                         served=again.served_gone(lab, pods, only, served))
        done += dns_records.reload(lab, pods)  # a running dnsmasq whose records file changed: SIGHUP, waited for
        exits.hold_commands(lab, pods, spawned)
        done += health.start(lab, _records(state))  # kube-proxy's health checks, by the same server
    finally:
        if logs is not None:
            os.close(logs)
        for _cid, _p, fd in spawned:
            os.close(fd)
        for *_rest, replace in launches:  # never started: the pidfds of what they were to replace
            if replace is not None:
                os.close(replace)
        echo_start.abort_early_launcher(early)
        service_envs.collect(_records(state))  # the sets no run's record names any more go
        state.save()
    for cid, action in starting.items():
        pod, cname = cid.split("/", 1)
        if "error" not in pods.get(pod, {}).get("containers", {}).get(cname, {"error": ""}):
            done.actions.append(action)
    _failed(present, pods, done)
    return done


def _failed(present: list[PodInfo], pods: dict, done: StartResult) -> None:
    """Every container that could not start, this time or before and not tried since (the watcher holds a
    Never pod's): moved from the problems to ``failed``, one line each, as ``status`` names them."""
    for pod in present:
        records = pods.get(pod.name, {}).get("containers", {})
        for c in pod.containers:
            crec = records.get(c.name) or {}
            if "error" not in crec:
                continue
            where = f"pod {pod.name} container {c.name}: "
            said = [line for line in done.problems if line.startswith(where)]
            done.problems = [line for line in done.problems if line not in said]
            done.failed += said or [f"{where}could not start: {crec['error']}"]


def containers(lab: Lab, state: LabState) -> list[tuple[PodInfo, Container, dict | None]]:
    """Every container of the topology with its record (None: never started), in topology order."""
    pods = _records(state)["pods"]
    return [(pod, c, pods.get(pod.name, {}).get("containers", {}).get(c.name)) for pod in lab.pods
            for c in pod.containers]


def stop_taken(state: LabState, netns_names: Iterable[str]) -> list[str]:
    """:func:`stop` of pods whose namespace's name another's namespace holds now: never stopped by that name."""
    return stop(state, netns_names, taken=True)


def running(state: LabState, netns_names: list[str]) -> dict:
    """What of these namespaces' pods runs now, before `up` stops them to make them anew (workload/again.py), and
    the other pods' echo containers the lab's echo server serves (their threads go with it if it does not
    answer as those pods stop)."""
    rec = _records(state)
    return {"pods": again.running(rec["pods"], netns_names), "served": again.served(rec["pods"], netns_names),
            service_envs.KEY: dict(rec.get(service_envs.KEY) or {})}  # the sets the pods' records name


def stop_made(state: LabState, netns_names: list[str]) -> list[str]:
    """A rollback: stop what runs in these namespaces its run made again, and nothing of their pods' own."""
    return again.stop_made(state.lab, _records(state)["pods"], netns_names)


def start_again(lab: Lab, state: LabState, netns_names: list[str], was: dict | None) -> StartResult:
    """A rollback made these namespaces' pods again: start only what ran in them (``was``: :func:`running`'s)."""
    rec = _records(state)
    only, hold = again.put_back(lab, rec["pods"], netns_names, (was or {}).get("pods"))
    # the sets the records put back name, should a start of the run have let them go since (service_envs.collect)
    rec[service_envs.KEY] = {**((was or {}).get(service_envs.KEY) or {}), **(rec.get(service_envs.KEY) or {})}
    return start(lab, state, hold=hold, only=only, served=(was or {}).get("served") or ())


def before_run(lab: Lab, state: LabState) -> put_back_mod.Before:
    """The containers as a run of ``lab`` finds them, before it changes anything: what a rollback puts back."""
    return put_back_mod.before(lab, state)


def put_back(lab: Lab, state: LabState, ran: Lab, was: put_back_mod.Before | None, skip: Collection[str]
             ) -> list[str]:
    """A running lab's rollback: the containers the run changed (and the cluster DNS's records), as ``was`` had
    them and ``lab`` (the lab put back) asks (workload/put_back.py); what could not start again, one line each."""
    return put_back_mod.put_back(lab, state, was, skip, start) if was is not None else []


def service_env_of(state: LabState, crec: dict) -> dict[str, str] | None:
    """The Service variables the run of ``crec`` started with (service_envs.py); None: not known (an older
    netlab's record), the Services as they are now."""
    return service_envs.started_with(_records(state), crec)


def drift(lab: Lab, state: LabState) -> list[str]:
    """One line per container that is not running as the topology says (workload/drift.py), and the cluster DNS's
    records file when it is not as planned. Their way back is the `up` status names below them; in a Lab method's
    lines the Python call (errors.repair_way), or the one its caller set for a file's plan (``state.repair``); for
    a lab whose conflist was edited since its pods' ADD `up -t FILE --reconfigure` (workload.reconfigure.repair_up)."""
    def repair() -> str:  # worked out only for a line that names it (workload/drift.once)
        from netlab.workload.reconfigure import repair_up  # loaded only then (with the CNI config and its plan: ~3 ms)

        return state.repair or repair_way(state.lab, repair_up(state))
    pods = _records(state)["pods"]
    return container_drift.lines(lab, pods, repair) + dns_records.drift(lab, pods)
