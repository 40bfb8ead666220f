"""The containers of pods a rollback made again (lab/remake.py): only what ran in them before the run.

`up` makes a pod anew (put on another node, given another address) by stopping its containers and deleting its
namespace first; a run stopped after that has its rollback make the pod again. What ran in the pod then starts
again, and nothing else: a container that had exited, or that a user had stopped, stays down (its record as it
was, so ``status`` names it as before), and the other pods are not looked at, whatever runs in them or not (a
rollback is not a repair; the next ``up`` is).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Callable

from netlab.kernel import kill
from netlab.workload import launch
from netlab.workload.tasks import STOPPED, is_echo_thread, task_in, why_replace

if TYPE_CHECKING:
    from netlab.model.lab import Lab, PodInfo
    from netlab.model.topology import Container

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
    and logs (:func:`netlab.workload.lifecycle.stop` would take them: it goes by the pod's name)."""
    names = set(netns_names)
    ids = [f"{pod}/{c}" for pod, prec in pods.items() if isinstance(prec, dict) and prec.get("netns") in names
           for c, crec in (prec.get("containers") or {}).items()
           if isinstance(crec, dict) and is_echo_thread(crec) and task_in(crec, prec["netns"]) is not None]
    if ids and launch.server_pid(lab_name) is not None:  # echo threads the run started in them
        launch.ask(lab_name, {"op": "remove", "ids": ids}, len(ids))
    return kill.stop_namespaces(sorted(names))
