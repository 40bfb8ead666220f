"""A new sandbox's network namespace: each ADD tried again (cni/retry.py) runs in a fresh one, as on a node.

containerd removes a failed sandbox's network namespace (RunPodSandbox's cleanup, after the CNI DEL) and makes
the next sandbox a new one, so what a plugin left in the pod's namespace (an interface its DEL did not find, a
sysctl it wrote) is gone by the next try. Before a pod's next try, ``up`` deletes the namespace it made for the
pod, only that one, and makes it again with the same name and the lab's tag, as it made it before the first ADD:
``lo`` up and the namespace's own sysctls (kernel/netns.create_netns), then what the plan holds there while the
pod is not attached (its other sysctls; an impairment's loss table), through the kernel layer. Files kept by the
namespace's name (/etc/netns/<name>/: resolv.conf, hosts) do not change.

Kept as it is, said in a warning (the next try then meets what the failed one left): a namespace a process runs
in (a container of a re-attached pod in a running lab: deleting its mount would leave the process in the old
namespace, cut off from the new one), one the lab's state does not say the lab made, or one without the lab's tag.
A namespace that cannot be made again fails the pod (no further ADD); the next ``up`` makes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from netlab.kernel import processes
from netlab.kernel.base import Kernel, KernelError
from netlab.plan.build import build_plan
from netlab.plan.resources import Sysctl
from netlab.plan.sysctls import when_written
from netlab.realize.repair import create_ops, ordered, stages
from netlab.realize.tags import state_tag

if TYPE_CHECKING:
    from netlab.model.lab import Lab, PodInfo
    from netlab.realize.state import LabState

KERNEL_LINKS = "kernel_links"  # state.extra: lab/ownership.KERNEL_LINKS (the links the kernel put in a new namespace)


def renew(lab: Lab, state: LabState, pods: list[PodInfo],
          kernel: Kernel | None = None) -> tuple[list[str], dict[str, str]]:
    """Make each pod's namespace anew for its next ADD. Returns (warnings: namespaces kept, the reason said;
    failures by pod: a namespace deleted and not made again, whose pod is not ADDed again)."""
    own = kernel is None
    if kernel is None:
        from netlab.kernel.live import LiveKernel

        kernel = LiveKernel()
    warnings: list[str] = []
    failures: dict[str, str] = {}
    try:
        tag = state_tag(state.lab, state.run_id, state.extra)
        for pod in pods:
            why = _kept(kernel, state, pod.netns, tag)
            if why is not None:
                warnings.append(f"cni: pod {pod.name}'s next ADD runs in the network namespace its failed ADD ran in "
                                f"({why}): what the plugins left in {pod.netns} is still there")
                continue
            try:
                _remake(kernel, lab, state, pod, tag)
            except (KernelError, OSError) as exc:
                failures[pod.name] = (f"pod {pod.name}: its network namespace {pod.netns} could not be made anew for "
                                      f"its next ADD ({exc}), so it was not ADDed again (the next up makes it)")
    finally:
        if own:
            kernel.close()
    return warnings, failures


def _kept(kernel: Kernel, state: LabState, netns: str, tag: str) -> str | None:
    """Why namespace ``netns`` is not to be made anew; None when it is."""
    if state.netns.get(netns) != "created" or not kernel.netns_mounted(netns):
        return "the lab's state does not say the lab made it"
    if kernel.read_tag(netns) != tag:
        return "it does not carry the lab's tag"
    pids = processes.find_in_namespaces([netns])
    if pids:
        some = ", ".join(f"{pid} ({processes.comm(pid)})" for pid in sorted(pids)[:3])
        some += ", ..." if len(pids) > 3 else ""
        return (f"process{'es' if len(pids) > 1 else ''} {some} run{'' if len(pids) > 1 else 's'} in it, which the "
                "namespace's deletion would leave in the old one")
    return None


def _remake(kernel: Kernel, lab: Lab, state: LabState, pod: PodInfo, tag: str) -> None:
    """Delete the pod's namespace and make it again as ``up`` made it before the pod's first ADD."""
    ns = pod.netns
    plan = build_plan(lab.with_attachments({p: a for p, a in lab.attached.items() if p != pod.name}))
    mine = [r for r in plan.resources if r.netns == ns]
    sysctls = [(r.name, r.value) for r in mine if isinstance(r, Sysctl) and when_written(r.name) == "netns"]
    links = state.extra.get(KERNEL_LINKS)
    links = links if isinstance(links, dict) else {}
    state.netns[ns] = "intent"  # write-ahead: killed after the deletion, the next up makes it (or down forgets it)
    links.pop(ns, None)
    state.save()
    kernel.delete_netns(ns)
    try:
        extra = kernel.create_netns(ns, tag, sysctls)
    except FileExistsError:  # another process mounted a namespace at the name meanwhile: not the lab's
        state.netns.pop(ns, None)
        state.save(best_effort=True)
        raise OSError(f"another process made a namespace named {ns} meanwhile") from None
    state.netns[ns] = "created"
    if extra:
        state.extra[KERNEL_LINKS] = {**links, ns: extra}
    state.save()
    ops = ordered(create_ops(mine))
    for stage in stages(ops):
        kernel.apply(stage, plan.netns)  # type: ignore[call-arg]
