"""A pod whose CNI ADD failed is ADDed again as a new sandbox, a few times, as a node makes a failed sandbox again.

On a node the runtime tears a sandbox down when its network setup fails (containerd's RunPodSandbox runs the CNI
DEL, teardownPodNetwork), the kubelet records a FailedCreatePodSandBox event, and its pod worker syncs the pod
again after a back-off (pod_workers.go, backOffPeriod 10 s): a new sandbox, with a new id. The kubelet tries every
failure again, without end. A node's pods are set up side by side, and plugins race there: two first ADDs on a
node both create the firewall plugin's CNI-ADMIN chain, and under iptables-nft the loser's ``iptables -N`` exits 4
("CHAIN_USER_ADD failed (File exists)"), which the plugin (Debian's 1.1.1) takes for a failure, as it takes only
exit 1 for "the chain exists" (containernetworking/plugins#335 and #408, containers/podman#3447).

``up`` does the same, bounded: a pod whose ADD a plugin failed of itself (it exited non-zero: it cannot say
whether what it met lasts; the firewall plugin does not use the spec's code 11, "try again later") and whose DEL
ran is ADDed again as a new sandbox (a new CNI_CONTAINERID, its record written first; its network namespace made
anew, as containerd makes a new sandbox's: cni/sandbox_ns.py), once the round's other ADDs have ended and after
RETRY_WAIT, up to ADD_TRIES tries in all. A pod that passed so is said in a warning,
as the kubelet's event says the failure; one that fails every try fails ``up``, its line naming the tries. Not
tried again: a plugin netlab killed at its deadline or its output bound (each try would cost that again), a
result netlab's checks refuse (the same chain gives it again), a plugin not found or not trusted, and a failed
ADD whose DEL failed too (no second ADD before a DEL passes).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable

from netlab.cni import sandbox_ns
from netlab.cni.attach import DEL_RAN, add_all
from netlab.cni.runtime import Runtime
from netlab.feature import StartResult

if TYPE_CHECKING:
    from netlab.model.lab import Lab, PodInfo
    from netlab.realize.state import LabState

ADD_TRIES = 3  # a pod's ADDs in one up: its first, then up to two new sandboxes
RETRY_WAIT = 1.0  # seconds between a round of ADDs and the next round's new sandboxes (the kubelet's is 10 s)


def add_tried(rt_: Runtime, lab: Lab, state: LabState, todo: list[PodInfo], records: dict[str, Any],
              out: StartResult, previous: dict[str, dict[str, Any]], running: bool,
              fresh: Callable[[PodInfo], dict[str, Any]]) -> list[str]:
    """ADD the pods (attach.add_all), and again, as new sandboxes (``fresh``: a pod's new record; their network
    namespaces made anew, cni/sandbox_ns.py), those whose ADD a plugin failed of itself and whose DEL ran;
    what failed for good, one line each. A re-attached pod is ADDed as it was (``previous``) only once no new
    sandbox follows."""
    earlier: dict[str, list[str]] = {}  # pod: the lines of its failed tries
    failures: list[str] = []
    for tried in range(1, ADD_TRIES + 1):
        failed = add_all(rt_, lab, state, todo, records, out, previous, running, retry=tried < ADD_TRIES)
        again = [pod for pod in todo if pod.name in failed and failed[pod.name][1]]
        for pod in todo:
            if pod.name in failed and pod not in again:
                failures.append(with_tries(pod.name, earlier.get(pod.name, []), failed[pod.name][0]))
            elif pod.name not in failed and pod.name in earlier:  # the kubelet's FailedCreatePodSandBox, said
                out.problems.append(passed_words(pod.name, earlier[pod.name], tried))
        if not again:
            break
        for pod in again:
            earlier.setdefault(pod.name, []).append(failed[pod.name][0])
        warnings, unmade = sandbox_ns.renew(lab, state, again)
        out.problems.extend(warnings)
        for pod in [p for p in again if p.name in unmade]:  # its namespace is gone: no new sandbox to ADD
            failures.append(f"{with_tries(pod.name, earlier[pod.name][:-1], failed[pod.name][0])}; "
                            f"{unmade[pod.name].removeprefix(f'pod {pod.name}: ')}")
        again = [pod for pod in again if pod.name not in unmade]
        for pod in again:
            records[pod.name] = fresh(pod)
        if not again:
            break
        state.save()  # write-ahead: each new sandbox's record (its new CNI_CONTAINERID) before its ADD
        time.sleep(RETRY_WAIT)
        todo = again
    return failures


def _plugin_words(pod: str, line: str) -> str:
    """A failed ADD's line without the pod's name before it and the DEL that followed after it."""
    return line.removeprefix(f"pod {pod}: ").removesuffix(DEL_RAN.format(pod=pod))


def with_tries(pod: str, earlier: list[str], line: str) -> str:
    """The line of a pod's last failed try, with how many there were and the first one's failure when it differs,
    said right after that try's failure and its DEL (before what followed: its ADD as it was, for a re-attach)."""
    if not earlier:
        return line
    ran = DEL_RAN.format(pod=pod)
    cut = line.find(ran) + len(ran) if ran in line else len(line)
    first = _plugin_words(pod, earlier[0])
    how = "every try failed so" if first == _plugin_words(pod, line[:cut]) else f"its first failed so: {first}"
    return (f"{line[:cut]} (its ADD was tried {len(earlier) + 1} times, each a new sandbox after the DEL of the one "
            f"before, as the kubelet creates a pod's sandbox again after a FailedCreatePodSandBox; {how})"
            f"{line[cut:]}")


def passed_words(pod: str, earlier: list[str], tried: int) -> str:
    """up's warning for a pod whose ADD passed on a later try: what failed first (a user sees it, as the
    kubelet's event shows it), and that the plugins' calls are in its CNI log."""
    first = _plugin_words(pod, earlier[0])
    head = (f"cni: pod {pod}'s first ADD failed: {first}" if len(earlier) == 1 else
            f"cni: pod {pod}'s first {len(earlier)} ADDs failed (the first: {first})")
    return (f"{head}; its DEL ran, and the ADD of a new sandbox (a new CNI_CONTAINERID) passed on try {tried} of "
            f"{ADD_TRIES}, as the kubelet creates a pod's sandbox again after a FailedCreatePodSandBox (`netlab cni "
            f"log {pod}` has every call)")
