"""A node's own connection to a Service's ClusterIP, for :meth:`netlab.Lab.reach` (not a row of the matrix: a node's
Service probes there are its NodePort's).

A node reaches a ClusterIP as a pod does: kube-proxy's rules sit in nat OUTPUT too (``OUTPUT -j KUBE-SERVICES``).
The socket's source is the node's address on the route to the ClusterIP (eth0's, the default route), which is not
in the pod network, so the Service's chain marks it for masquerading (KUBE-SVC's ``! -s <clusterCIDR>`` rule, the
nftables mode's ``ip saddr != <clusterCIDR>``), and POSTROUTING gives it the address of the interface it leaves by
towards the endpoint: cni0's for a pod of the node's own, flannel.1's with VXLAN (eth0's with host-gw) for one on
another node. internalTrafficPolicy Local: the node's own endpoints only (none: dropped)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from netlab.probe.matrix import Endpoint, Probe, SeenRule, endpoints
from netlab.probe.policy import ServiceJudge
from netlab.probe.service_seen import node_address_towards
from netlab.probe.service_targets import ServicePlan, ServiceTarget, local_to, section

if TYPE_CHECKING:
    from netlab.model.lab import Lab
    from netlab.plan.services import ServicePortInfo


def node_clusterip_probes(lab: "Lab", plan: ServicePlan, sp: "ServicePortInfo",
                          eps_t: tuple[tuple[str, str, int], ...], cip: ServiceTarget, dst: Endpoint,
                          expect: tuple[bool, str], how: tuple[bool, object], policy: ServiceJudge | None) -> None:
    """The probe from every node to ``sp``'s ClusterIP (``cip``, ``dst``), in ``plan.node_clusterips``."""
    reach, reason = expect
    echo, q = how
    eps, pods = endpoints(lab), {p.name: p for p in lab.pods}
    server = {pod: f"{ip}:{port}" for pod, ip, port in eps_t}
    proto, port = sp.protocol, sp.port.port
    for m in lab.nodes:
        picked = local_to(sp, eps_t, m.name) if sp.internal_local else list(eps_t)
        rules = tuple(SeenRule(pod, (node_address_towards(lab, m, pods[pod]),),
                               f"a node's own connection to a ClusterIP is masqueraded by {m.name} (KUBE-SVC marks "
                               f"what does not come from the pod network) to its address towards {pod}",
                               server=server[pod]) for pod, _, _ in picked)
        expected, why = reach, reason
        if reach and not picked:
            expected, why = False, (f"internalTrafficPolicy Local and no endpoint on {m.name}: its kube-proxy drops "
                                    "it (has no local endpoints)")
        src = eps[m.name]
        if policy is not None and expected:
            judged, why = policy.nodeport(src, m, [(pod, p) for pod, _, p in picked], proto)
            if judged is None:
                plan.notes.append(f"{m.name} -> svc/{cip.service} {proto}/{port}: not probed: {why}")
                continue
            expected = judged
        plan.node_clusterips[(m.name, cip.service, proto, port)] = Probe(
            src, dst, proto, port, expected, reason=why, section=section(cip), rules=rules, echo=echo, question=q,
            svc=cip)
