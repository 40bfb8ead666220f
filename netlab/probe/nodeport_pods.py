"""A pod dialling a node's nodePort: which endpoints kube-proxy picks from, and which client address each sees.

Pure. ``netlab probe`` dials nodePorts from nodes and internet hosts only (services.py); a pod's connection to
one is a user's ``expect:`` entry (runner.as_nodeport) or ``lab.reach(POD, NODE, port=NODEPORT)``, judged here.
All verified against the kernel (tests/integration/test_nodeport_hairpin.py):

- to its own node N's nodePort: N DNATs it in PREROUTING. externalTrafficPolicy Cluster: KUBE-EXT marks it and
  N masquerades it to its address towards the endpoint (cni0's for its own pods: the client pod itself, a
  hairpin, included). Local: KUBE-EXT sends pod traffic (``-s <cluster CIDR>``) to KUBE-SVC, every endpoint,
  unmasqueraded, as its ClusterIP: the pod's own address (a hairpin: KUBE-SEP's ``-s`` masquerades it to cni0);
- to another node M's nodePort: the packet leaves the pod network, so Flannel masquerades it on N to N's eth0
  address (FLANNEL-POSTRTG); M takes it for outside traffic. Cluster: KUBE-EXT marks it (0x4000) and M
  masquerades it again to its address towards the endpoint (flannel.1's with VXLAN, eth0's with host-gw),
  back to N for an endpoint there: the client pod itself too, when it is an endpoint (a hairpin through
  another node: it reaches itself from M's address, and policies judge that address, not the pod: it is no
  hairpin to them). Local: M's own endpoints only, which see N's eth0 address; none: M drops it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from netlab.model import naming
from netlab.probe.matrix import Probe, SeenRule, endpoints, lab_bridge
from netlab.probe.policy import service_judge
from netlab.probe.service_seen import clusterip_rule, node_address_towards, nodeport_rule
from netlab.probe.service_targets import ServicePlan, local_to, targets

if TYPE_CHECKING:
    from netlab.model.lab import Lab, NodeInfo, PodInfo
    from netlab.plan.services import ServicePortInfo

Eps = list[tuple[str, str, int]]  # (pod, ip, targetPort)


def pick(lab: "Lab", sp: "ServicePortInfo", eps: Eps, client: "PodInfo", node: "NodeInfo",
         bridge: str | None = naming.BRIDGE) -> tuple[Eps, tuple[SeenRule, ...], str | None]:
    """(the endpoints kube-proxy picks from, the client address each sees, why it is dropped when none)."""
    pods = {p.name: p for p in lab.pods}
    server = {pod: f"{ip}:{port}" for pod, ip, port in eps}
    if client.node == node.name:
        if sp.external_local:  # pod traffic for external destinations: as to the ClusterIP
            return eps, tuple(clusterip_rule(lab, client, pod, server[pod], bridge) for pod, _, _ in eps), None
        rules = []
        for pod, _, _ in eps:
            rule = nodeport_rule(lab, node, pods[pod], server[pod])
            if pod == client.name:
                rule = SeenRule(pod, rule.allowed, f"hairpin: {pod}'s connection to its own node's nodePort is "
                                                     f"DNATed back to it and masqueraded by {node.name} (KUBE-EXT "
                                                     f"marks it) to its {bridge or 'pod gateway'} address",
                                server=server[pod])
            rules.append(rule)
        return eps, tuple(rules), None
    home = lab.node(client.node)
    if sp.external_local:
        local = local_to(sp, eps, node.name)
        if not local:
            return [], (), (f"externalTrafficPolicy Local and no endpoint on {node.name}: Flannel masquerades "
                            f"{client.name}'s packet to {home.name}'s address, so {node.name} takes it for outside "
                            "traffic and drops it (has no local endpoints)")
        return local, tuple(SeenRule(pod, (str(home.ip),), f"externalTrafficPolicy Local: Flannel masquerades "
                                     f"{client.name}'s packet to {home.name}'s eth0 address, which {node.name} "
                                     f"keeps (outside traffic to its own endpoints)", server=server[pod])
                            for pod, _, _ in local), None
    rules = []
    for pod, _, _ in eps:
        rule = nodeport_rule(lab, node, pods[pod], server[pod])
        if pod == client.name:
            addr = node_address_towards(lab, node, client)
            rule = SeenRule(pod, (addr,), f"hairpin through {node.name}: Flannel masquerades {pod}'s packet to "
                                          f"{home.name}'s eth0 address, {node.name} DNATs it back to {pod} and "
                                          f"masquerades it (KUBE-EXT marks it) to its address towards {pod}, "
                                          f"{addr}", server=server[pod])
        rules.append(rule)
    return eps, tuple(rules), None


def reason(lab: "Lab", client: "PodInfo", node: "NodeInfo", eps: Eps, base: str) -> str:
    """``base`` (service, ...), with the hairpin through another node said: the pod is one of the endpoints."""
    if client.node == node.name or not any(pod == client.name for pod, _, _ in eps):
        return base
    addr = node_address_towards(lab, node, client)
    return (f"{base}; {client.name} is an endpoint: when {node.name} picks it, a hairpin through {node.name}, "
            f"which masquerades it back to {client.name} from {addr}")


def probe(lab: "Lab", plan: ServicePlan, src: str, node: str, proto: str, port: int) -> Probe | str | None:
    """Pod ``src``'s connection to ``node``'s nodePort ``port`` as the Service probe it is, judged as probe judges
    its own (a Service without endpoints, the NetworkPolicies); a text: why it cannot be probed (the policies
    allow some of the endpoints only); None: ``src`` is no pod, or no Service has that nodePort."""
    base = plan.nodeports.get((node, proto, port))
    client = next((p for p in lab.pods if p.name == src), None)
    if base is None or base.svc is None or client is None:
        return None
    t = base.svc
    sp = next(sp for sp, _, _ in targets(lab) if sp.name == t.port_name and sp.protocol == proto)
    reach = base.expected
    why = "service" if reach else "service whose endpoints listen on no targetPort" if t.silent else \
        "service without endpoints"
    m = lab.node(node)
    picked, rules, dropped = pick(lab, sp, list(t.endpoints), client, m, lab_bridge(lab))
    p = Probe(endpoints(lab)[src], base.destination, proto, port, reach, section=base.section, echo=base.echo,
              question=base.question, svc=t)
    if reach and dropped:
        return replace(p, expected=False, reason=dropped, rules=rules)
    policy = service_judge(lab)
    if reach and policy is not None:
        judged, why = policy.pod_nodeport(src, m, [(pod, n) for pod, _, n in picked], proto, port,
                                          local=sp.external_local)
        if judged is None:
            return why
        reach = judged
    return replace(p, expected=reach, reason=reason(lab, client, m, picked, why), rules=rules)
