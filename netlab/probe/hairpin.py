"""Why a pod's probe of a Service it is an endpoint of failed in a lab of a user's conflist whose bridge plugin has
no hairpinMode (QA q57 #2): the probe's X! says it was lost, this hint says where and what puts it right.

With br_netfilter the node DNATs the pod's frame on the bridge; when kube-proxy picks the pod itself, the frame
must go back out of the port it came in by, which the bridge does only in hairpin mode, and the bridge plugin sets
that mode on its ports only with ``"hairpinMode": true``. The ports are the plugins': no `up` sets it; the pods
get it from an ADD with the edited conflist (`up --reconfigure`). Read from the conflist alone, only for the failed
probes: the kernel is asked by ``trace``, which the hint names.
"""

from __future__ import annotations

from typing import Sequence

from netlab.model.cniconf import ConflistError
from netlab.model.lab import Lab
from netlab.plan.cniadd import user_conflist
from netlab.probe.judge import Result


def hints(lab: Lab, results: Sequence[Result]) -> list[str]:
    """One line for the failed probes of pods to a Service they are endpoints of, when the lab's conflist's bridge
    plugin has no hairpinMode; none otherwise."""
    if lab.cni != "conflist":
        return []
    lost = [r.probe for r in results if r.problems and r.probe.expected and not r.obs.reached
            and r.probe.svc is not None and r.probe.source.kind == "pod"
            and any(pod == r.probe.source.name for pod, _, _ in r.probe.svc.endpoints)]
    if not lost:
        return []
    try:
        bridge = next((p for p in user_conflist(lab).plugins if p.get("type") == "bridge"), None)
    except ConflistError:
        return []
    if bridge is None or bridge.get("hairpinMode") is True:
        return []
    conflist = getattr(lab.topo.network.cni, "conflist", "")
    svc = next((p.svc for p in lost if p.svc is not None and p.svc.kind == "ClusterIP"), None)
    first = next(p for p in lost if p.svc is svc) if svc is not None else None
    follow = (f"; `netlab trace --lab {lab.name} {first.source.name} svc/{svc.namespace}/{svc.service} --port "
              f"{svc.service_port}` follows the packet" if first is not None and svc is not None else "")
    return [f"{', '.join(dict.fromkeys(p.label for p in lost))}: each pod is an endpoint of that Service, and the "
            f"bridge plugin of {conflist} has no \"hairpinMode\": true, so its bridge does not send the DNATed frame "
            f"back out of the port it came in by when kube-proxy picks the pod itself (`up` does not set the "
            f"plugins' ports: \"hairpinMode\": true in that plugin, then `up --reconfigure`, which attaches the pods "
            f"again){follow}"]
