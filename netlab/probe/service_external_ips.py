"""The probes of a Service's externalIPs: from every pod, node and internet host, through the node that takes the
packet (kube-proxy's "external IP" rule in KUBE-SERVICES)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from netlab.model.endpoints import unreachable_external_ip
from netlab.probe.matrix import Endpoint, Probe, SeenRule, endpoints
from netlab.probe.policy import service_judge
from netlab.probe.service_seen import clusterip_rule, node_address_towards
from netlab.probe.service_targets import ServicePlan, ServiceTarget, local_to, section

if TYPE_CHECKING:
    from netlab.model.lab import Lab, NodeInfo
    from netlab.plan.services import ServicePortInfo


def external_ip_probes(lab: "Lab", plan: ServicePlan, sp: "ServicePortInfo", eps_t: tuple[tuple[str, str, int], ...],
                       base: dict, expect: tuple[bool, str], hosts: list[Endpoint], how: tuple[bool, object]) -> None:
    """Probes of each externalIP of ``sp``: the node that takes the packet DNATs it as it does its nodePort
    (KUBE-SERVICES' "external IP" rule to KUBE-EXT): a pod's and a node's own node, an internet host's the first
    node, where the lab's gateway routes it. externalTrafficPolicy Cluster: that node masquerades it to its
    address towards the endpoint. Local: a pod's is sent to every endpoint unmasqueraded (as to the ClusterIP), a
    node's own to every endpoint masqueraded, and an internet host's only to the first node's endpoints, keeping
    its address (none there: dropped)."""
    reach, reason = expect
    echo, q = how
    eps, pods = endpoints(lab), {p.name: p for p in lab.pods}
    server = {pod: f"{ip}:{port}" for pod, ip, port in eps_t}
    policy, name, proto, port = service_judge(lab), base["service"], sp.protocol, sp.port.port
    first = lab.nodes[0]

    def masq(m: "NodeInfo", who: str) -> tuple[SeenRule, ...]:
        return tuple(SeenRule(pod, (node_address_towards(lab, m, pods[pod]),), f"{who} connection to an externalIP "
                              f"is masqueraded by {m.name} (KUBE-EXT marks it) to its address towards {pod}",
                              server=server[pod]) for pod, _, _ in eps_t)

    for ip in sp.external_ips:
        if (unreachable := unreachable_external_ip(ip, proto)) is not None:  # validate's note says so too
            plan.notes.append(f"svc/{name} {proto}/{port} (externalIP {ip}): not probed: {unreachable}")
            continue
        t = ServiceTarget(kind="ExternalIP", address=str(ip), port=port, node=None, **base)
        title, dst = section(t), Endpoint(name, "service", "", ip)
        todo: list[tuple[Endpoint, "NodeInfo", list, tuple[SeenRule, ...], bool, str]] = []
        for p in lab.pods:  # the pod's own node DNATs it in PREROUTING
            node = lab.node(p.node)
            rules = tuple(clusterip_rule(lab, p, pod, server[pod], plan.bridge) for pod, _, _ in eps_t) \
                if sp.external_local else masq(node, "a pod's")
            todo.append((eps[p.name], node, list(eps_t), rules, reach, reason))
        for m in lab.nodes:  # the node's own, from OUTPUT; Local too (masquerade LOCAL traffic)
            todo.append((eps[m.name], m, list(eps_t), masq(m, f"{m.name}'s own"), reach, reason))
        for h in hosts:
            if not sp.external_local:
                todo.append((h, first, list(eps_t), masq(first, "an outside"), reach, reason))
                continue
            local = local_to(sp, eps_t, first.name)
            rules = tuple(SeenRule(pod, (str(h.ip),), f"externalTrafficPolicy Local: {first.name} keeps the "
                                   "client's address (its own endpoints only)", server=server[pod])
                          for pod, _, _ in local)
            why = reason if local or not reach else (f"externalTrafficPolicy Local and no endpoint on {first.name}, "
                                                     f"where the gateway routes {ip}: its kube-proxy drops outside "
                                                     "traffic (has no local endpoints)")
            todo.append((h, first, local, rules, reach and bool(local), why))
        for src, m, picked, rules, expected, why in todo:
            if policy is not None and expected:
                judged, why = policy.pod_nodeport(src.name, m, [(pod, n) for pod, _, n in picked], proto, port,
                                                  local=sp.external_local) if src.kind == "pod" else \
                    policy.nodeport(src, m, [(pod, n) for pod, _, n in picked], proto)
                if judged is None:
                    plan.notes.append(f"{src.name} -> svc/{name} {proto}/{port} (externalIP {ip}): not probed: {why}")
                    continue
                expected = judged
            plan.probes.append(Probe(src, dst, proto, port, expected, reason=why, section=title, rules=rules,
                                     echo=echo, question=q, svc=t))  # type: ignore[arg-type]
        if not hosts:
            plan.notes.append(f"svc/{name} externalIP {ip}: not probed from outside: the lab has no internet host")
