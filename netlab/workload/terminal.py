"""Which pods of a running lab are terminal: every container exited for good, so the pod is no Service's endpoint.

A pod's phase is Succeeded when all its containers exited 0 and none will be
restarted, Failed when all exited, one of them otherwise, and none will be
restarted: with ``restartPolicy: Never`` whatever the codes, with ``OnFailure``
only after exit 0 (a non-zero exit is restarted), never with ``Always``. The
EndpointSlice controller leaves such a pod out of every EndpointSlice
(ShouldPodBeInEndpoints), so kube-proxy sends it nothing and CoreDNS does not
name it; ``get pods`` says Completed or Error. The lab learns it from the
containers' records and how they exited (exits.py); the model takes the set
(``Lab.with_terminal``: :func:`served`), and ``up``, ``status``, ``get svc``, ``trace``,
``probe``, ``reach``, ``break``, ``quiz`` and ``graph`` work from it.

A container that exited but whose command changed, or that could not start,
is not terminal: ``up`` starts it. A pod of which one container still runs
(a Job's sidecar) is not terminal either; Kubernetes marks it not ready, which
the lab does not model (its endpoints stay).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Mapping

# What only a lab with a pod that can terminate (restartPolicy Never or OnFailure), or status's comparison, needs is
# loaded there: probe, trace and get load this module for served(), and most labs' pods all restart (Always). The
# Flannel plan alone (for the name of its CNI network) was ~10 ms of a probe's CPU, beside its agent's.
if TYPE_CHECKING:
    from netlab.model.lab import Lab
    from netlab.realize.state import LabState

RECORD = "workload"  # state.extra key of the containers' records (lifecycle.RECORD)


def terminal_pods(lab: Lab, state: LabState | None) -> frozenset[str]:
    """The pods of ``lab`` whose every container, as ``state`` records it, exited and stays down by its pod's
    restartPolicy; the lab's echo server says how they exited (asked once, for OnFailure pods only)."""
    rec = state.extra.get(RECORD) if state is not None else None
    pods: Mapping[str, Any] = rec.get("pods", {}) if isinstance(rec, dict) else {}
    done: list[str] = []
    ask: dict[str, dict] = {}  # OnFailure: a pod is done only when every container exited 0
    for pod in lab.pods:
        if pod.spec.restart_policy not in ("Never", "OnFailure"):
            continue
        prec = pods.get(pod.name)
        records = prec.get("containers", {}) if isinstance(prec, dict) else {}
        crecs = [(c, records.get(c.name)) for c in pod.containers]
        if not all(isinstance(crec, dict) and _exited(pod, c, crec, lab.name) for c, crec in crecs):
            continue
        done.append(pod.name)
        if pod.spec.restart_policy == "OnFailure":
            ask.update({f"{pod.name}/{c.name}": crec for c, crec in crecs})
    codes: dict[str, int] = {}
    if ask:
        from netlab.workload import exits

        codes = exits.exit_codes(lab.name, ask)
    return frozenset(name for name in done
                     if lab.pod(name).spec.restart_policy == "Never"
                     or all(codes.get(f"{name}/{c.name}") == 0 for c in lab.pod(name).containers))


def served(lab: Lab, state: LabState | None) -> Lab:
    """``lab`` as ``up`` serves it: its terminal pods (as ``state`` records their containers) out of every
    Service's endpoints. What ``up``, ``status``, ``get``, ``trace``, ``probe``, ``reach``, ``break``, ``quiz``
    and ``graph`` all work from, so that none expects an endpoint another leaves out."""
    return lab.with_terminal(terminal_pods(lab, state))


def _exited(pod: Any, c: Any, crec: dict, lab_name: str) -> bool:
    """The container's recorded run, of its current command, is gone: up would only restart it (policy.gone)."""
    from netlab.workload import policy
    from netlab.workload.containers import container_argv
    from netlab.workload.tasks import EXITED, alive, why_replace
    from netlab.workload.uts import uts_path

    why = why_replace(crec, container_argv(pod, c), pod.netns, uts_path(lab_name, pod.name))
    return why == EXITED and policy.gone(why, alive(crec))


def still_endpoints(lab: Lab, differences: list[str]) -> list[str]:
    """``status``'s line for each terminal pod of ``lab`` that is still an endpoint where the lab serves its
    Services: in a rule of kube-proxy's the plan comparison found (``differences``: each one whole, an extra rule
    naming its address) or in the cluster DNS's records file; ``up`` takes it out of both."""
    from netlab.workload import dns_records

    hosts = dns_records.read(lab.name) or ""
    rules = [line for line in differences if "KUBE-" in line or "kube-proxy" in line]
    out = []
    for name in sorted(lab.terminal):
        ip = re.escape(str(lab.pod(name).ip))
        where = (["kube-proxy's rules"] if any(re.search(rf"(?<![\d.]){ip}(?![\d])", line) for line in rules)
                 else []) + (["the cluster DNS"] if re.search(rf"^{ip} ", hosts, re.M) else [])
        if where:
            out.append(f"services: pod {name} has terminated (its containers exited for good: Completed or Error) "
                       f"and is still a Service endpoint in {' and '.join(where)}; up takes it out")
    return out


def still_mapped(lab: Lab, differences: list[str]) -> list[str]:
    """``status``'s line for each terminal pod of a builtin ``lab`` whose hostPorts portmap's rules still DNAT to it
    (its ``CNI-DN-`` chain in a difference the plan comparison found: ``differences``, each one whole): the kubelet
    stops a terminal pod's sandbox, whose CNI DEL takes them out (plan/portmap_rules.py); up does."""
    if lab.cni != "builtin":
        return []
    from netlab.model.hostports import port_mappings
    from netlab.plan.flannel import CNI_NETWORK_NAME
    from netlab.plan.portmap_rules import container_id, pod_chain

    out = []
    for name in sorted(lab.terminal):
        pod = lab.pod(name)
        maps = port_mappings(pod.spec)
        chain = pod_chain(CNI_NETWORK_NAME, container_id(lab.name, name))
        if maps and any(chain in line for line in differences):
            ports = ", ".join(f"{m['hostPort']}/{m['protocol']}" for m in maps)
            out.append(f"hostport: pod {name} has terminated (its containers exited for good: Completed or Error) "
                       f"and portmap's rules still DNAT its hostPort{'s' if len(maps) > 1 else ''} {ports} on node "
                       f"{pod.node} to it; up takes them out, as the CNI DEL of the sandbox a kubelet stops does")
    return out
