"""The containers of pods a rollback made again (lab/remake.py): only what ran in them before the run.

`up` makes a pod anew (put on another node, given another address) by stopping its containers and deleting its
namespace first; a run stopped after that has its rollback make the pod again. What ran in the pod then starts
again, and nothing else: a container that had exited, or that a user had stopped, stays down (its record as it
was, so ``status`` names it as before), and the other pods are not looked at, whatever runs in them or not (a
rollback is not a repair; the next ``up`` is).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Callable, Collection

from netlab.kernel import kill
from netlab.kernel import processes as proc
from netlab.workload import launch
from netlab.workload.containers import note_start_error
from netlab.workload.tasks import STOPPED, is_echo_thread, task_in, why_replace

if TYPE_CHECKING:
    from netlab.model.lab import Lab, PodInfo
    from netlab.model.topology import Container

    Echo = list[tuple[PodInfo, Container, str]]

NOT_RUNNING = "it was not running before the run that a rollback took back"
# A container paused (its process stopped by SIGSTOP or SIGTSTP) is running, as a runtime's paused container is; the
# run's stop killed it with its pod's namespace, so the rollback starts it again in the namespace made anew, running,
# as a runtime starts a new sandbox's containers (held down as not running, status said it had exited, with 143).
PAUSED = STOPPED


def running(pods: dict, netns_names: list[str]) -> dict:
    """Of the recorded pods in ``netns_names``: pod name -> (its record, copied; the containers that run as
    recorded)."""
    names = set(netns_names)
    out = {}
    for pod, prec in pods.items():
        if not isinstance(prec, dict) or prec.get("netns") not in names:
            continue
        containers = prec.get("containers") or {}
        up = sorted(c for c, crec in containers.items() if isinstance(crec, dict) and
                    why_replace(crec, crec.get("argv") or [], prec["netns"], prec.get("uts")) in (None, PAUSED))
        out[pod] = {"record": copy.deepcopy(prec), "running": up}
    return out


def served(pods: dict, netns_names: list[str]) -> list[str]:
    """The echo containers ("pod/container") of the pods not in ``netns_names`` that run as threads of an echo
    server now (a stopped one's too: a paused container runs)."""
    names = set(netns_names)
    return sorted(f"{pod}/{c}" for pod, prec in pods.items()
                  if isinstance(prec, dict) and prec.get("netns") not in names
                  for c, crec in (prec.get("containers") or {}).items()
                  if isinstance(crec, dict) and is_echo_thread(crec))


def served_gone(lab: Lab, pods: dict, only: Collection[str] | None,
                ids: Collection[str]) -> list[tuple[PodInfo, Container]]:
    """Of the echo containers ``ids`` (:func:`served`, before the run), those of pods not in ``only`` the lab still
    records as they were: a new echo server, the old one gone, takes them again."""
    if only is None or not ids:
        return []
    return [(pod, c) for pod in lab.pods if pod.name not in only for c in pod.containers
            if not c.command and f"{pod.name}/{c.name}" in ids
            and "pid" in ((pods.get(pod.name) or {}).get("containers") or {}).get(c.name, {})]


def put_back(lab: Lab, pods: dict, netns_names: list[str],
             was: dict | None) -> tuple[set[str], Callable[[PodInfo, Container, dict, str], str | None]]:
    """The pods (names) to start in, and a hold that keeps down what did not run in them before. Each pod's record
    as it was (its creation time; the containers that did not run, as they were), where the run's stop dropped it."""
    names = {p.name for p in lab.pods if p.netns in set(netns_names)}
    down: set[str] = set()
    for pod, snap in (was or {}).items():
        if pod not in names:
            continue
        prec = snap["record"]
        kept = {c: crec for c, crec in (prec.get("containers") or {}).items() if c not in snap["running"]}
        now = pods.setdefault(pod, {})  # the run's own records of the pod, if it came so far, give way
        if "created" in prec:
            now["created"] = prec["created"]
        now.setdefault("containers", {}).update(kept)
        down |= {f"{pod}/{c}" for c in kept}

    def hold(pod: PodInfo, c: Container, crec: dict, why: str) -> str | None:
        if why == PAUSED:  # its process lives on, paused, where the run's stop never came: left as it was
            return PAUSED
        return NOT_RUNNING if f"{pod.name}/{c.name}" in down else None

    return names, hold


def stop_made(lab_name: str, pods: dict, netns_names: list[str]) -> list[str]:
    """A rollback deletes these namespaces, which its run made again for pods the lab had before it (a sandbox
    deleted by hand, made again by a repair): only what runs in them goes, all of it the run's. What the pods had
    before the run stays as it was: their containers running on in the old sandbox, their UTS namespaces, records
    and logs (:func:`netlab.workload.pod_teardown.stop` would take them: it goes by the pod's name)."""
    names = set(netns_names)
    ids = [f"{pod}/{c}" for pod, prec in pods.items() if isinstance(prec, dict) and prec.get("netns") in names
           for c, crec in (prec.get("containers") or {}).items()
           if isinstance(crec, dict) and is_echo_thread(crec) and task_in(crec, prec["netns"]) is not None]
    if ids:  # echo threads the run started in them; a server that misses this goes with them, and every pod's
        launch.ask_busy(lab_name, {"op": "remove", "ids": ids}, len(ids))  # echo container with it
    return kill.stop_namespaces(sorted(names))


def echo_server_left(server: int, pods: dict, echo: Echo, starting: dict[str, str]) -> list[str]:
    """The echo containers of the pods a rollback made again, when the lab's echo server is stopped (SIGSTOP) or
    does not answer: it is left as it is, serving the other pods (a new one would take only these pods' containers,
    and the others' echo threads would go with the old one: they answered no more, status said they had exited),
    and these are not started, each said as one that could not start (``up`` replaces the server and starts them)."""
    how = "is stopped (SIGSTOP)" if proc.proc_state(server) == "T" else "did not answer"
    error = f"the lab's echo server (pid {server}) {how}, and a rollback does not replace it (it serves the other pods)"
    problems = []
    for pod, c, _why in echo:
        crec = pods[pod.name]["containers"][c.name]
        crec["error"] = error
        note_start_error(crec["log"], error)
        starting.pop(f"{pod.name}/{c.name}", None)
        problems.append(f"pod {pod.name} container {c.name}: could not start: {error}")
    return problems
