"""A terminal pod's sandbox, stopped: the CNI DEL that a kubelet's StopPodSandbox runs for a pod whose containers all
exited for good (Completed or Error: workload/terminal.py), in a lab whose CNI plugins attach its pods.

When a pod's phase turns Succeeded or Failed, the kubelet's pod worker terminates it (syncTerminatingPod ->
killPod -> kuberuntime's KillPod, killPodWithSyncResult): its containers are stopped, then StopPodSandbox of each
of its sandboxes. containerd's StopPodSandbox (internal/cri/server/sandbox_stop.go) stops the sandbox, runs
teardownPodNetwork, the CNI DEL of the chain (libcni hands each plugin the cached result), and removes the
sandbox's network namespace. The plugins undo their ADD: bridge deletes the pod's veth, host-local releases its
lease (another pod may be given the address), portmap takes out the pod's hostPort DNAT. The pod object keeps
its IP: the kubelet reads no IP of a sandbox that is not ready (GetPodStatus) and copies the podIPs of the pod's
last status instead (kubernetes#125370, #125404), so ``kubectl get pods -o wide`` shows a Completed pod's IP.

``up`` (and ``up --watch``'s repair, which status's line below calls for) does the same once it learns the pod is
terminal: the DEL of every network of the pod's chain, as a re-attach or ``down`` runs it (cni/attach.detach), then
the record's phase "terminated", with the attachment it had: status neither CHECKs the pod nor calls it
detached, up never ADDs it again, ``get pods`` shows its IP. Then up removes the pod's network namespace, as
containerd's StopPodSandbox does after teardownPodNetwork (``sandbox.NetNS.Remove()``; lab/up_converge
._release_stopped): the plan holds nothing there (plan/build.stopped_sandboxes), so status looks for no namespace,
and ``exec`` into the pod says it has terminated (:func:`released_line`), as kubectl refuses to exec into a
completed pod. containerd's RemovePodSandbox stops the sandbox once more before removing it, its namespace closed:
``down`` runs that second DEL, with an empty CNI_NETNS (a DEL must tolerate what is gone). A terminal pod whose
command changes runs again (it is not terminal then): up makes its namespace again and ADDs it as a new sandbox.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from netlab.realize.attachments import DELETED, KEY, SANDBOX_GONE, TERMINATED, UNCHECKED

if TYPE_CHECKING:
    from netlab.feature import StartResult
    from netlab.cni.runtime import Runtime
    from netlab.model.lab import Lab
    from netlab.realize.state import LabState

DEL_FAILED = "del_failed"  # a record's mark: a DEL of the pod failed (the next one runs it again)
WHY = "its containers exited for good: Completed or Error"


def to_stop(prec: Any) -> bool:
    """Whether a terminal pod's record still holds what its plugins' ADD made (its sandbox's DEL has not run)."""
    return isinstance(prec, dict) and prec.get("phase") not in (DELETED, TERMINATED)


def closed(prec: Any) -> bool:
    """Whether the pod's sandbox was stopped as terminal: ``down``'s DEL of it is the second one, handed no
    namespace, as containerd's RemovePodSandbox stops the sandbox again with its namespace closed."""
    return isinstance(prec, dict) and prec.get("phase") == TERMINATED


def stop_terminal(rt_: Runtime, lab: Lab, state: LabState, records: dict[str, Any], out: StartResult) -> list[str]:
    """DEL the sandbox of each terminal pod of ``lab`` (``lab.terminal``) that its plugins attached, as a kubelet's
    StopPodSandbox does; the failures' lines (the record keeps its phase, marked: the next up runs DEL again)."""
    # the plugins' runtime only here: released() and its lines are read by every up, status and down, a builtin
    # lab's too, which load no CNI runtime (tests/integration/test_cli_loads_live.py)
    from netlab.cni.attach import detach_said

    failures: list[str] = []
    todo = [pod.name for pod in lab.pods if pod.name in lab.terminal and to_stop(records.get(pod.name))]
    for name in todo:
        prec = records[name]
        again = " again" if prec.get(DEL_FAILED) else ""
        said = detach_said(rt_, prec, name)
        if said:
            prec[DEL_FAILED] = True
            failures.append(f"{said[0]}; pod {name} has terminated ({WHY}) and the DEL of its stopped sandbox "
                            "failed: its plugins' state stays, and the next up runs DEL again")
            continue
        for mark in (DEL_FAILED, SANDBOX_GONE, "check_fails", UNCHECKED):
            prec.pop(mark, None)
        prec["phase"] = TERMINATED
        out.actions.append(f"ran the CNI DEL of terminated pod {name}'s sandbox{again} ({WHY}): a kubelet stops "
                           "such a pod's sandbox, and its plugins took back what their ADD made (its eth0, its "
                           "address's lease, its hostPort rules); its network namespace goes with it, as "
                           "containerd removes a stopped sandbox's")
    if todo:
        state.save()
    return failures


def drift(name: str, prec: Any) -> list[str]:
    """status's line for terminal pod ``name`` whose sandbox's DEL has not run (``prec``: its record); none when it
    ran, or when its plugins never attached it (a kubelet makes no sandbox for a terminal pod)."""
    if not to_stop(prec):
        return []
    if prec.get(DEL_FAILED):
        return [f"cni: pod {name} has terminated ({WHY}), but the CNI DEL of its stopped sandbox failed: its plugins' "
                "state stays (its eth0, its address's lease, its hostPort rules); up runs DEL again"]
    return [f"cni: pod {name} has terminated ({WHY}), but its sandbox's CNI DEL has not run: its plugins' state "
            "stays (its eth0, its address's lease, its hostPort rules); up runs it, as a kubelet stops a terminated "
            "pod's sandbox"]


def runs_again(name: str, prec: Any, state: LabState) -> list[str]:
    """status's line for pod ``name`` that is not terminal now but whose sandbox was stopped as terminal (``prec``: its
    record): up ADDs it as a new sandbox, with no DEL (that ran), making its namespace again where up removed it."""
    if not closed(prec):
        return []
    if prec.get("netns") not in state.netns:
        what, made = "up removed its stopped sandbox's network namespace", "makes its namespace again and "
    else:
        what, made = "the CNI DEL of its stopped sandbox ran", ""
    return [f"cni: pod {name} terminated and {what}, but it runs again now (its containers do not all exit for good: "
            f"its command changed): up {made}ADDs a new sandbox"]


def released(state: LabState) -> frozenset[str]:
    """The terminal pods whose stopped sandbox's DEL ran and whose network namespace up removed since (the state
    lists it no more): nothing of theirs to enter."""
    rec = state.extra.get(KEY)
    pods = rec.get("pods") if isinstance(rec, dict) else None
    return frozenset(name for name, prec in (pods if isinstance(pods, dict) else {}).items()
                     if closed(prec) and prec.get("netns") not in state.netns)


def released_namespaces(lab_name: str) -> dict[str, str]:
    """Each pod of lab ``lab_name`` whose stopped sandbox's namespace up removed (:func:`released`), with the
    namespace its record names, as the lab's state says them now (none when it cannot be read: said where it is
    read). down (before it forgets them), exec/trace's lines and the capture's namespaces read them."""
    from netlab.errors import NetlabError
    from netlab.realize.state import load_state

    try:
        state = load_state(lab_name)
    except NetlabError:
        return {}
    if state is None:
        return {}
    names = released(state)
    pods = state.extra[KEY]["pods"] if names else {}
    return {name: str(pods[name].get("netns")) for name in names}


def released_netns(lab: Lab) -> frozenset[str]:
    """The namespaces of ``lab``'s pods whose stopped sandbox's namespace up removed."""
    return frozenset(released_namespaces(lab.name).values())


def released_line(name: str, log: bool = False, gone: bool = False) -> str:
    """What exec says of pod ``name`` whose stopped sandbox's namespace was removed (``log``: what logs says before
    the log, on stderr; ``gone``: what the commands that enter its namespace say, trace to or from it)."""
    head = f"pod {name} has terminated ({WHY}): a kubelet stopped its sandbox and its network namespace was removed"
    if log:
        return f"{head}; this is what its container's last run wrote"
    if gone:
        return f"{head}: nothing there sends or answers, and no interface holds its address"
    return (f"{head}, so nothing runs in it to exec into, as kubectl says \"cannot exec into a container in a "
            "completed pod\"")
