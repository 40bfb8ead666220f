"""What ``probe`` must show after a break, and where ``trace`` must blame it: pure functions of the lab.

:func:`expect` answers, for one probe row (``netlab probe -o json``'s
``probes`` entries), "fail", "pass" or "any". "any" is for a Service flow whose
endpoint kube-proxy picks at random (``statistic --probability``): it fails
only when the pick lands on the broken side. A test checks every row against
it, so "exactly these flows fail" is checked flow by flow.

:func:`trace_check` names the trace that proves a scenario: source,
destination, protocol and port, the namespace whose hop must be blamed, and
a pattern its reason must match.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Callable, Iterable

from netlab.breaks.catalogue import Scenario, clients, dns_askers, dns_pods, meets_dns, policy_split
from netlab.breaks.changes import STALE_SPORT, peer_end, peer_node
from netlab.breaks.flows import NODE_PATH_SCENARIOS, Path, _path_fails, _Where, paths  # noqa: F401
from netlab.model.clusterdns import DNS_NAME, DNS_NAMESPACE, dns_service, is_dns_service
from netlab.model.lab import Lab, NodeInfo, PodInfo
from netlab.model.netpol import Peer, lab_destination, lab_peer, policy_set
from netlab.probe.matrix import probe_ports

Verdict = str  # "fail" | "pass" | "any"


@dataclass(frozen=True)
class TraceCheck:
    src: str
    dst: str
    proto: str | None
    port: int | None
    blamed_netns: str  # the namespace of the hop trace must blame
    fact: str  # a regular expression the blamed hop's reason must match
    reply: bool = False  # the request arrives; its reply is what is lost
    size: int = 0  # trace --size: a full-size ICMP echo (payload bytes)
    sport: int = 0  # trace --sport: the source port the client keeps
    policy: bool = False  # the fact is in trace's NetworkPolicy verdict: a denied flow that was not stopped
    refused: bool = False  # the request arrives and the destination refuses it: the fact is in trace's REFUSED


def _pods(lab: Lab, node: str) -> set[str]:
    return {p.name for p in lab.pods_on(node)}


def expect(s: Scenario, lab: Lab, target: NodeInfo | PodInfo) -> Callable[[dict], Verdict]:
    """The verdict each probe row must have after scenario ``s`` broke ``target``."""
    name = s.name
    all_pods = {p.name for p in lab.pods}
    if isinstance(target, NodeInfo):
        here = _pods(lab, target.name)
        elsewhere = all_pods - here
        other_nodes = {n.name for n in lab.nodes} - {target.name}
    where = _Where(lab)

    def rule(row: dict) -> Verdict:
        src, dst, svc = row["source"], row["destination"], row.get("service")
        if row.get("expected") == "unreachable":  # a flow a NetworkPolicy (or an expect: entry) denies
            # A fault stops flows, it opens none: such a flow stays as expected, however it is stopped. But one:
            # the policies' rules are in the node's FORWARD chain, which a frame its bridge switches from pod to
            # pod passes only with bridge-nf-call-iptables = 1; without it the denied flow connects.
            opened = name == "bridge-nf-call-off" and svc is None and src != dst and {src, dst} <= here
            return "fail" if opened else "pass"
        if name in NODE_PATH_SCENARIOS:
            failing = [_path_fails(name, p, where, target, row) for p in paths(row, lab)]
            if not failing:  # a Service without endpoints: refused on every node, as before the fault
                return "pass"
            return "fail" if all(failing) else "any" if any(failing) else "pass"
        if name == "pod-mtu-too-big":  # only full-size echoes (probe --mtu) across the node's port fail
            bad = row["protocol"] == "mtu" and ((src in here | {target.name} and dst in elsewhere) or
                                                (src in elsewhere | other_nodes and dst in here))
        elif name == "kube-services-jump-missing":
            if svc is None:
                return "pass"
            via = svc.get("via")
            if via == "ClusterIP":
                return "fail" if src in here else "pass"
            if via == "NodePort" and svc.get("node") == target.name and src != target.name:
                return "fail"
            return "any" if via not in ("ClusterIP", "NodePort") else "pass"
        elif name == "endpoint-pod-down":
            if svc is not None:
                return "any" if any(e["pod"] == target.name for e in svc.get("endpoints", [])) else "pass"
            bad = dst == target.name and row["protocol"] != "icmp"  # the pod's network is up: pings pass
        elif name == "dns-pod-stopped":
            bad = (dst == target.name and row["protocol"] != "icmp") or \
                (svc is not None and svc.get("namespace") == DNS_NAMESPACE
                 and str(svc.get("name")).rpartition("/")[2] == DNS_NAME)  # kube-system's, not a user's kube-dns
        elif name == "conntrack-stale-entry":
            bad = False  # every probe uses a new source port: the stale entry catches none of them
        elif name == "bridge-nf-call-off":
            if svc is None or src not in here:
                return "pass"
            local = [e for e in svc.get("endpoints", []) if e["pod"] in here and e["pod"] != src]
            if not local:
                return "pass"
            return "fail" if len(local) == len(svc.get("endpoints", [])) else "any"
        else:
            raise ValueError(name)
        return "fail" if bad else "pass"

    return rule


def dns_target(lab: Lab) -> str:
    """``svc/kube-system/kube-dns``, the cluster DNS Service: a bare name is the client's own namespace's, as its
    DNS search path resolves it."""
    svc = dns_service(lab.topo)
    return f"svc/{svc.namespace}/{svc.name}" if svc is not None else f"svc/{DNS_NAMESPACE}/{DNS_NAME}"


def trace_check(s: Scenario, lab: Lab, target: NodeInfo | PodInfo) -> TraceCheck:
    """The trace that proves scenario ``s``, and the hop and fact it must name."""
    name = s.name
    if isinstance(target, NodeInfo):
        # Across the pod network between the node and its peer, as a pod on one to a pod on the other: a node
        # without pods stands in for them at its end (a node's own packets to pods take the same routes), an
        # address of its pod CIDR at the receiving end (changes.peer_end: its cni0's, or flannel.1's before its
        # first pod). Node to node goes by the underlay, which no scenario breaks.
        here = lab.pods_on(target.name)
        peer = peer_node(lab, target)
        ends = ([p.name for p in here] or [target.name], peer_end(lab, target) or [])
        src, dst, proto, port = allowed_flow(lab, *ends)
    facts = {
        "vxlan-arp-missing": (target.netns if isinstance(target, NodeInfo) else "", r"no ARP entry for .* on flannel"),
        "vxlan-fdb-wrong-vtep": (getattr(target, "netns", ""), r"FDB entry sends the frame to remote VTEP .* no node"),
        "vxlan-wrong-vni": ("", r"carries VNI \d+ but flannel\.\d+ in .* is VNI"),
        "pod-cidr-route-missing": (getattr(target, "netns", ""), r"no route to .*pod CIDR.*default route"),
        "ip-forward-off": (getattr(target, "netns", ""), r"net\.ipv4\.ip_forward = 0"),
        "rp-filter-strict": (getattr(target, "netns", ""), r"strict rp_filter"),
        "forward-policy-drop": (getattr(target, "netns", ""), r"FORWARD chain's policy is DROP"),
    }
    if name in facts:
        ns, fact = facts[name]
        if name == "vxlan-wrong-vni":
            ns = peer.netns  # the receiving node drops a VNI it has no device for
        if name == "pod-cidr-route-missing":
            # out of the node's eth0 by the default route (its row names the missing route), the packet is lost at
            # the nodes' gateway: the underlay's, which routes nothing on, or in a lab with an internet: section
            # the internet's, which has no route to pods; that hop's reason names the route and its fix
            ns = dict(lab.internet_hosts).get("gateway", lab.underlay_netns)
        # rp-filter-strict: the reply is lost where strict rp_filter drops it, at the node's eth0, which the peer's
        # direct route (not the plan's) took it to (the result names that route too, as the asymmetry's cause)
        return TraceCheck(src, dst, proto, port, ns, fact, reply=name == "rp-filter-strict")
    if name == "pod-mtu-too-big":  # a full-size echo, as ping -M do -s (MTU - 28)
        src, dst, _, _ = allowed_flow(lab, *ends, only=("icmp", None))
        return TraceCheck(src, dst, None, None, target.netns, r"bigger than its MTU", size=lab.pod_mtu - 28)
    if name in ("bridge-port-down", "bridge-port-disabled"):  # to the pod from across its bridge: from a pod on
        pod = target  # another node, else (a lab of one node) from the node itself; the node's bridge stops it
        assert isinstance(pod, PodInfo)
        # (its own node reaches it whatever the policies say: kubelet's probes come from there)
        src, dst, proto, port = allowed_flow(lab, [p.name for p in lab.pods if p.node != pod.node] + [pod.node],
                                             [pod.name])
        fact = r"bridge port .* is down" if name == "bridge-port-down" else \
            r"bridge port \S+ of cni0 in \S+ .*is in state disabled, not forwarding"  # trace/l2steps.py
        return TraceCheck(src, dst, proto, port, lab.node(pod.node).netns, fact)
    if name == "kube-services-jump-missing":
        pod = clients(lab, target.name)[0]  # there is one: catalogue.target_problem
        # A Service with endpoints, an application's before the cluster DNS (which every lab with Services has)
        served = [(sv, sp) for sv in lab.services for sp in sv.ports
                  if sp.protocol == "TCP" and not sv.headless and lab.endpoints(sv, sp)]
        svc, sp = next((x for x in served if not is_dns_service(x[0])), served[0])
        # svc/NAME is the client's own namespace's (its DNS search path): another namespace's is svc/NS/NAME
        ref = svc.name if svc.namespace == pod.spec.namespace else f"{svc.namespace}/{svc.name}"
        return TraceCheck(pod.name, f"svc/{ref}", "tcp", sp.port, target.netns, r"did not DNAT.*KUBE-SERVICES")
    if name == "endpoint-pod-down":
        assert isinstance(target, PodInfo)
        dns = dns_pods(lab)
        others = [p.name for p in lab.pods if p.name != target.name and p not in dns]
        port = target.ports[0][0]
        # no other pod: its node dials it
        client, *_ = allowed_flow(lab, others + [target.node], [target.name], only=("tcp", port))
        return TraceCheck(client, target.name, "tcp", port, target.netns, rf"no socket listens on tcp port {port}",
                          refused=True)
    if name == "dns-pod-stopped":
        assert isinstance(target, PodInfo)
        client, *_ = allowed_flow(lab, [p.name for p in lab.pods if p.name != target.name], [target.name],
                                  only=("udp", 53))
        return TraceCheck(client, dns_target(lab), "udp", 53, target.netns, r"no socket is bound to udp port 53",
                          refused=True)
    if name == "conntrack-stale-entry":  # the client's own flow, from the port it keeps
        assert isinstance(target, PodInfo)
        return TraceCheck(target.name, dns_target(lab), "udp", 53, lab.node(target.node).netns,
                          r"conntrack already holds this flow.*no endpoint", sport=STALE_SPORT)
    if name == "bridge-nf-call-off":
        if meets_dns(lab, target.name):  # to the DNS pod on the client's own node: the reply is bridged
            client = dns_askers(lab, clients(lab, target.name), "TCP")[0].name
            return TraceCheck(client, dns_target(lab), "tcp", 53, target.netns, r"bridge-nf-call-iptables = 0",
                              reply=True)
        # else two pods a policy keeps apart (catalogue.target_problem): the flow gets through
        split = policy_split(lab, target.name)
        assert split is not None
        return TraceCheck(*split, "", rf"NOT STOPPED: net\.bridge\.bridge-nf-call-iptables = 0 in {target.netns}",
                          policy=True)
    raise ValueError(name)


def allowed_flow(lab: Lab, sources: list[str], destinations: list[str],
                 only: tuple[str, int | None] | None = None) -> tuple[str, str, str | None, int | None]:
    """A flow from one of ``sources`` to one of ``destinations`` (pods, nodes, or an address) that the lab's
    NetworkPolicies allow, so that its trace shows the fault and not a policy's REJECT: (source, destination,
    protocol, port): ``only`` that flow, or a ping (None, None) where one is allowed, else TCP or UDP to a port
    the destination serves. The first pair (pinged, or ``only``) when nothing is allowed, or without policies."""
    first = (sources[0], destinations[0], *_traced(only or ("icmp", None)))
    if not lab.topo.network_policies:
        return first
    ps = policy_set(lab)
    for src in sources:
        for dst in destinations:
            s, d = lab_peer(lab, ps, src), lab_destination(lab, ps, dst)  # a node by name: its own IP
            if s is None:
                continue
            server = lab.pod(dst) if d is not None and d.pod is not None else None
            for proto, port in [only] if only else _flows(server):
                if ps.flow(s, d or Peer(IPv4Address(dst)), proto.upper(), port).allowed:
                    return (src, dst, *_traced((proto, port)))
    return first


def _flows(server: PodInfo | None) -> Iterable[tuple[str, int | None]]:
    yield "icmp", None
    for port, proto, _ in probe_ports(server) if server is not None else []:
        yield proto, port


def _traced(flow: tuple[str, int | None]) -> tuple[str | None, int | None]:
    """A flow as trace's --proto and --port take it: a ping is trace's default (no --proto)."""
    return (None, None) if flow[0] == "icmp" else flow


def matches(check: TraceCheck, reason: str | None) -> bool:
    return bool(reason) and re.search(check.fact, reason or "") is not None


def shows(check: TraceCheck, trace: dict) -> bool:
    """Whether a trace (its JSON, TraceResult.to_json) shows the fault as ``check`` names it: the hop it blames and
    the fact there, the refusal, the policy verdict or the DNS reply. A lab repaired by hand in part since the
    break (the route put back with a metric of its own) is not as planned, yet its trace may pass: no proof."""
    if check.policy:  # a flow a policy denies that got through: delivered, its policy verdict says why
        return bool(trace.get("delivered")) and any(matches(check, e.get("text")) for e in trace.get("policy") or [])
    if check.refused:  # delivered, and refused there: the reason names the namespace and its sockets
        refused = trace.get("refused")
        return bool(trace.get("delivered")) and f" in {check.blamed_netns};" in (refused or "") \
            and matches(check, refused)
    if check.blamed_netns:
        hop = trace.get("lost") or trace.get("reply_lost")
        return hop is not None and hop.get("netns") == check.blamed_netns and matches(check, hop.get("reason")) \
            and (trace.get("lost") is None) == check.reply
    return matches(check, json.dumps(trace.get("reply")))  # the fact is in what it says of the reply (no answer)
