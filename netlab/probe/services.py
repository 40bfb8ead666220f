"""Service probes: which ones a lab gets, what client address each must show, and the distribution check.

Pure: no sockets, no root. The runner sends these with the rest of the matrix
(same agent, same sockets, same bounded waits).

What is probed (the default expectation, derived from the rules in
plan/services.py and plan/internet.py):

- ClusterIP:port from every pod, TCP (a connect is proof, whoever serves it)
  and UDP only where every endpoint runs netlab's echo server on targetPort,
  or is the cluster DNS add-on's pod on 53/UDP; the cluster DNS's port 53 is
  asked a DNS question over both (dnsq.py);
- NodePort on every node's IP from every node and every internet host (a node's own connection to the
  ClusterIP is built too, for Lab.reach: :mod:`netlab.probe.service_node_clusterip`);
- the LoadBalancer IP:port from every internet host (one outside its loadBalancerSourceRanges: dropped);
- each externalIP:port from every pod, node and internet host (its node DNATs it as its nodePort);
- for every Service with n >= 2 endpoints that run the echo server, a
  distribution check: ``max(200, 40 n)`` connections from one client pod to the
  ClusterIP; each endpoint must serve at least half its fair share, or with
  ``sessionAffinity: ClientIP`` all of them must go to one endpoint.

A Service without endpoints must be unreachable (kube-proxy rejects it).

What each probe dials: :mod:`netlab.probe.service_targets`; the client address its endpoint must see:
:mod:`netlab.probe.service_seen`; the externalIPs' probes: :mod:`netlab.probe.service_external_ips`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from netlab.model.echo_ports import silent
from netlab.probe.echo_reasons import unmeasured
from netlab.probe.matrix import (PROTOS, Endpoint, Probe, SeenRule, asks_dns, dns_question, echo_ports, endpoints,
                                 lab_bridge)
from netlab.probe.policy import service_judge
from netlab.probe.service_external_ips import external_ip_probes
from netlab.probe.service_node_clusterip import node_clusterip_probes
from netlab.probe.service_seen import clusterip_rule, lb_local_rule, lb_rule, nodeport_rule
from netlab.probe.service_targets import Distribution, ServicePlan, ServiceTarget, local_to, section, targets

if TYPE_CHECKING:
    from netlab.model.lab import Lab
    from netlab.plan.services import ServicePortInfo

DIST_CONNECTIONS = 200  # connections per distribution check (at least)
DIST_PER_ENDPOINT = 40  # ... and at least this many per endpoint: 10 endpoints get 400


def build(lab: "Lab", protos: Iterable[str] = PROTOS, node_clusterips: bool = False) -> ServicePlan:
    """Every Service probe of a lab, its distribution checks and notes on what is not probed; with
    ``node_clusterips``, each node's own connection to each ClusterIP too (``plan.node_clusterips``: Lab.reach's)."""
    want = set(protos)
    plan = ServicePlan(bridge=lab_bridge(lab))
    if not lab.services:
        return plan
    eps = endpoints(lab)
    pods = [eps[p.name] for p in lab.pods]
    pod_info = {p.name: p for p in lab.pods}
    nodes = list(lab.nodes)
    hosts = [eps[h.name] for h in lab.topo.internet.hosts if h.name in eps] if lab.topo.internet else []
    gw_ns = dict(lab.internet_hosts).get("gateway", "")
    dist_done: set[str] = set()
    policy = service_judge(lab)  # NetworkPolicies judge Service traffic at the endpoints (probe/policy.py)
    question = dns_question(lab)
    bridge = plan.bridge  # the hairpin's masquerade address is on it
    plan.notes += [f"svc/{lab.service_ref(s)}: not probed: headless (clusterIP: None), so no ClusterIP and no "
                   "kube-proxy rule; its pods are probed as pods" for s in lab.services if s.headless]
    user = {(e.source, e.to, e.proto, e.port) for e in lab.topo.expect}  # a node's nodePort is the node's port
    for sp, eps_t, echo in targets(lab):
        svc, proto = sp.svc, sp.protocol
        name = lab.service_ref(svc)  # web, or x/web when another namespace has a web
        if proto not in want:
            continue
        # An endpoint whose pod runs only netlab's echo server, none of it on targetPort, refuses what
        # kube-proxy sends it (model/endpoints.py notes it): all of them, and the Service is refused as one
        # without endpoints is; some of them, and each connection's fate is kube-proxy's random pick.
        deaf = [pod for pod, _, port in eps_t if silent(pod_info[pod], port, proto.upper())]
        if deaf and len(deaf) < len(eps_t):
            which = f"endpoints {', '.join(deaf)}" if len(deaf) > 1 else f"endpoint {deaf[0]}"
            plan.notes.append(f"svc/{name} {proto}/{sp.port.port}: not probed: nothing listens on the targetPort "
                              f"of {which}, so each connection is answered or refused as kube-proxy picks an "
                              f"endpoint at random")
            continue
        reach = bool(eps_t) and not deaf
        # The cluster DNS Service's port 53: its endpoint (the add-on's dnsmasq) is asked a DNS question.
        q = question if eps_t and all(asks_dns(pod_info[pod], port, proto) for pod, _, port in eps_t) else None
        if proto == "udp" and eps_t and not echo and q is None:
            others = [pod for pod, _, port in eps_t if (port, "UDP") not in echo_ports(pod_info[pod])]
            who = "its endpoints answer" if len(others) == len(eps_t) else \
                f"endpoint {others[0]} answers" if len(others) == 1 else f"endpoints {', '.join(others)} answer"
            plan.notes.append(f"svc/{name} udp/{sp.port.port}: not probed: {who} it with no echo server of netlab's "
                              f"(a command of their own may, or nothing), and a silent UDP server cannot be told "
                              f"from a lost packet")
            continue
        reason = "service" if reach else "service whose endpoints listen on no targetPort" if deaf else \
            "service without endpoints"
        base = dict(service=name, namespace=svc.namespace, port_name=sp.name, type=svc.type,
                    service_port=sp.port.port, protocol=proto, endpoints=eps_t, echo=echo, affinity=sp.affinity,
                    silent=bool(deaf))
        server = {pod: f"{ip}:{port}" for pod, ip, port in eps_t}

        # ClusterIP from every pod.
        cip = ServiceTarget(kind="ClusterIP", address=str(sp.cluster_ip), port=sp.port.port, node=None, **base)
        dst = Endpoint(name, "service", "", sp.cluster_ip)
        title = section(cip)
        for src in pods:
            # internalTrafficPolicy Local: the client's node sends it to its own endpoints only, and drops it
            # without one (has no local endpoints)
            mine = local_to(sp, eps_t, pod_info[src.name].node) if sp.internal_local else list(eps_t)
            rules = tuple(clusterip_rule(lab, pod_info[src.name], pod, server[pod], bridge) for pod, _, _ in mine)
            expected, why = reach, reason
            if reach and not mine:
                expected, why = False, (f"internalTrafficPolicy Local and no endpoint on "
                                        f"{pod_info[src.name].node}: its kube-proxy drops it (has no local "
                                        "endpoints)")
            elif policy is not None and reach:
                judged, why = policy.clusterip(src.name, [(pod, port) for pod, _, port in mine], proto)
                if judged is None:
                    plan.notes.append(f"{src.name} -> svc/{name} {proto}/{sp.port.port}: not probed: {why}")
                    continue
                expected = judged
            p = Probe(src, dst, proto, sp.port.port, expected, reason=why, section=title, rules=rules,
                      echo=echo, question=q, svc=cip)
            plan.probes.append(p)
        if node_clusterips:
            node_clusterip_probes(lab, plan, sp, eps_t, cip, dst, (reach, reason), (echo, q), policy)
        isolated = policy is not None and policy.isolated([pod for pod, _, _ in eps_t])
        if isolated:
            # The distribution is one check of the Service, over all its ports: said once.
            dist_due = len(eps_t) >= 2 and name not in dist_done and not sp.internal_local
            note = isolated_note(sp, dist_due)
            if note:
                plan.notes.append(f"svc/{name} {proto}/{sp.port.port}: {note}")
            if dist_due:
                dist_done.add(name)

        # Distribution: from a pod that is not an endpoint, over the ClusterIP.
        if len(eps_t) >= 2 and name not in dist_done and sp.internal_local:
            dist_done.add(name)
            plan.notes.append(f"svc/{name}: distribution not checked: internalTrafficPolicy Local (each client's "
                              "node picks among its own endpoints only)")
        if len(eps_t) >= 2 and name not in dist_done and not isolated:
            members = {pod for pod, _, _ in eps_t}
            others = [s for s in pods if s.name not in members] or pods[:1]
            # the first pod that is no endpoint and that the policies let reach every endpoint
            client = next((s for s in others if policy is None
                           or policy.clusterip(s.name, [(p, n) for p, _, n in eps_t], proto)[0] is True), None)
            if client is None:  # nothing to count; the Service's other probes stay echo probes
                dist_done.add(name)
                plan.notes.append(f"svc/{name}: distribution not checked: the policies let no pod that is not one of "
                                  f"its endpoints ({', '.join(s.name for s in others)}) reach every endpoint")
            elif echo:
                dist_done.add(name)
                rules = tuple(clusterip_rule(lab, pod_info[client.name], pod, server[pod], bridge)
                              for pod, _, _ in eps_t)
                first = Probe(client, dst, proto, sp.port.port, True, reason="distribution", section=title,
                              rules=rules, echo=True, svc=cip)
                n = max(DIST_CONNECTIONS, DIST_PER_ENDPOINT * len(eps_t))
                plan.distributions.append(Distribution(first, n))

        # NodePort on every node, from every node and every internet host; under policies, each endpoint is
        # judged with the source its node's FORWARD sees (policy.nodeport_source).
        if sp.node_port is not None:
            for m in nodes:
                t = ServiceTarget(kind="NodePort", address=str(m.ip), port=sp.node_port, node=m.name, **base)
                title = section(t, sp.node_port)
                rules = tuple(nodeport_rule(lab, m, pod_info[pod], server[pod]) for pod, _, _ in eps_t)
                ndst = Endpoint(m.name, "service", m.netns, m.ip, node=m.name)
                plan.nodeports[(m.name, proto, sp.node_port)] = Probe(
                    ndst, ndst, proto, sp.node_port, reach, section=title, rules=rules, echo=echo, question=q,
                    svc=t)
                for src in [eps[n.name] for n in nodes] + hosts:
                    expected, why, src_rules, picked = reach, reason, rules, eps_t
                    if sp.external_local and src.name != m.name and reach:
                        # externalTrafficPolicy Local: from outside m (the node's own traffic is short-circuited
                        # to every endpoint, masqueraded), only m's endpoints, which see the client's address.
                        local = local_to(sp, eps_t, m.name)
                        src_rules = tuple(SeenRule(pod, (str(src.ip),), "externalTrafficPolicy Local: the node "
                                                   f"keeps the client's address (KUBE-SVL / local- chain of "
                                                   f"{m.name}'s own endpoints)", server=server[pod])
                                          for pod, _, _ in local)
                        plan.local_rules[(src.name, m.name, proto, sp.node_port)] = src_rules
                        picked = local  # m's own: each judged with the client's address (nodeport_source)
                        if not local:
                            expected, why = False, (f"externalTrafficPolicy Local and no endpoint on {m.name}: "
                                                    f"its kube-proxy drops outside traffic (has no local "
                                                    f"endpoints)")
                    if (src.name, m.name, proto, sp.node_port) in user:  # its expect: entry is that probe (matrix)
                        continue
                    if policy is not None and expected:
                        judged, why = policy.nodeport(src, m, [(pod, port) for pod, _, port in picked], proto)
                        if judged is None:
                            plan.notes.append(f"{src.name} -> svc/{name} {proto}/{sp.port.port} (NodePort "
                                              f"{sp.node_port} on {m.name}): not probed: {why}")
                            continue
                        expected = judged
                    plan.probes.append(Probe(src, ndst, proto, sp.node_port, expected, reason=why, section=title,
                                             rules=src_rules, echo=echo, question=q, svc=t))

        # The LoadBalancer IP from every internet host.
        # Under a policy that isolates the endpoints only externalTrafficPolicy Local's is told: it keeps the
        # host's address, where Cluster's node masquerades it to its own (the gateway's hash picks which node).
        if sp.lb_ip is not None and sp.node_port is not None and (not isolated or sp.external_local):
            t = ServiceTarget(kind="LoadBalancer", address=str(sp.lb_ip), port=sp.port.port, node=None, **base)
            ranges = ", ".join(str(r) for r in sp.source_ranges)
            title = section(t, note=f"; loadBalancerSourceRanges {ranges}: other sources dropped" if ranges else "")
            # The gateway routes the LoadBalancer IP to the nodes (plan/internet.py); externalTrafficPolicy Local:
            # only to those whose health check answers 200, ones with an endpoint of their own, which keep the
            # internet host's address; Cluster: the node masquerades it.
            ldst = Endpoint(name, "service", gw_ns, sp.lb_ip)
            for src in hosts:
                expected, why = reach, reason
                rules = tuple((lb_local_rule(lab, pod_info[pod], server[pod], src.addr) if sp.external_local
                               else lb_rule(lab, pod_info[pod], server[pod])) for pod, _, _ in eps_t)
                if ranges and not any(src.ip in r for r in sp.source_ranges):  # the node drops it (no reply)
                    expected, why = False, (f"{src.ip} is outside Service {name}'s loadBalancerSourceRanges "
                                            f"({ranges}): kube-proxy's firewall on the node drops it")
                if isolated and expected:
                    judged, why = policy.load_balancer_local(src, [(pod, port) for pod, _, port in eps_t], proto)
                    if judged is None:
                        plan.notes.append(f"{src.name} -> svc/{name} {proto}/{sp.port.port} (LoadBalancer "
                                          f"{sp.lb_ip}): not probed: {why}")
                        continue
                    expected = judged
                plan.probes.append(Probe(src, ldst, proto, sp.port.port, expected, reason=why, section=title,
                                         rules=rules, echo=echo, question=q, svc=t))
            if not hosts:
                plan.notes.append(f"svc/{name} LoadBalancer {sp.lb_ip}: not probed: the lab has no internet host "
                                  f"to probe from")

        # Each externalIP from every pod, node and internet host (the gateway routes it to the first node).
        if sp.external_ips:
            external_ip_probes(lab, plan, sp, eps_t, base, (reach, reason), hosts, (echo, q))
    for sp, eps_t, echo in targets(lab):
        name = lab.service_ref(sp.svc)
        if len(eps_t) >= 2 and name not in dist_done and not echo and sp.protocol in want:
            dist_done.add(name)
            plan.notes.append(f"svc/{name}: distribution not checked: {unmeasured(lab, sp, eps_t)}")
    return plan


def isolated_note(sp: "ServicePortInfo", dist: bool) -> str | None:
    """What a NetworkPolicy that isolates a Service port's endpoints keeps the probe from checking, in words: the
    distribution over its endpoints (``dist``: it has two or more, and nothing else says why it is not checked),
    and its LoadBalancer IP (when it has one, externalTrafficPolicy Cluster: its node masquerades what the
    gateway's hash gives it); None when neither applies (a ClusterIP of one endpoint)."""
    lb = sp.lb_ip is not None and sp.node_port is not None and not sp.external_local  # Local's is probed
    if not (dist or lb):
        return None
    what = "distribution and LoadBalancer" if dist and lb else "distribution" if dist else "LoadBalancer"
    balancer = (", and the gateway routes each connection to a node by its hash, whose NAT decides the address "
                "they see") if lb else ""
    return f"{what} not probed: a NetworkPolicy isolates its endpoints{balancer}"
