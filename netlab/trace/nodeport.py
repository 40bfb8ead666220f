"""The NetworkPolicy verdict of a packet to a nodePort (or a LoadBalancer IP, which the internet's gateway routes to
a node, where kube-proxy DNATs it as it does a nodePort's): from where the endpoint's node sees it come.

kube-proxy DNATs a packet to a nodePort in the receiving node R's PREROUTING and marks it for masquerade
(KUBE-EXT, externalTrafficPolicy Cluster); MASQUERADE happens in R's POSTROUTING, after R's FORWARD. The
policies' rules hang off FORWARD (plan/policy.py), so the endpoint's ingress is judged
(:func:`netlab.model.netpol.nodeport_source`, which probe judges its nodePort probes with too)

- on R itself, when the endpoint runs there: before the masquerade, with the source the packet had when it
  reached R (an internet host's own address, also to a LoadBalancer IP: no NAT on the way, another node's eth0
  address, a pod of R's own, a pod of another node as that node's eth0 address after
  Flannel's masquerade); but R's own packet to its own pod never passes FORWARD (OUTPUT, then cni0): the "own
  node" rule lets it through;
- on the endpoint's node N otherwise, with the address R masqueraded it to: R's address towards the pod
  (flannel.1's with VXLAN, eth0's with host-gw).

A pod client's egress is judged on its own node: against the endpoint when that node DNATs (its own nodePort),
else against R's address and the nodePort, where the packet is still going.
"""

from __future__ import annotations


from netlab.model.lab import Lab
from netlab.model.netpol import Decision, Peer, PodView, PolicySet, Verdict, nodeport_source
from netlab.trace.targets import Endpoint


def _arrival(lab: Lab, src: Endpoint, source: Peer, node: str) -> tuple[Peer | None, str]:
    """The source of the packet as it reaches ``node``'s IP layer (None: ``node``'s own packet), and in words. An
    internet host's keeps its address, also to a LoadBalancer IP, which the gateway routes to the node untranslated
    (plan/internet.py)."""
    if src.kind == "node" and src.name == node:  # its own packet: OUTPUT, never FORWARD ("own node")
        return None, f"{node} itself"
    if src.kind == "internet":
        return source, f"{source.ip}, {src.name}'s own address"
    if source.pod is not None:
        if source.pod.node == node:
            return source, f"pod {source.label} itself"
        other = lab.node(source.pod.node)
        return Peer(other.ip, None, None), f"{other.ip}, {other.name}'s eth0 address after Flannel's masquerade"
    other = lab.node(src.name)
    return Peer(other.ip, None, other.name), f"{other.ip}, {other.name}'s eth0 address"


def judge(lab: Lab, ps: PolicySet, src: Endpoint, source: Peer, dst: Endpoint, pod: PodView, protocol: str,
          port: int | None, dnat_node: str | None) -> tuple[Verdict, str] | None:
    """(the verdict, the source the endpoint's node judges, in words) for the endpoint ``pod``; None when which
    node DNATs the packet is not known (a LoadBalancer's packet whose node nothing names).
    ``dnat_node``: the node the trace saw DNAT it (or the gateway route it to); else a nodePort's own node."""
    node = dnat_node or (dst.name if dst.kind == "node" else None)
    if node is None:
        return None
    r = lab.node(node)
    endpoint = Peer(pod.ip, pod)
    arrival, words = _arrival(lab, src, source, node)
    seen = nodeport_source(lab, node, pod, arrival)  # probe judges its nodePort probes with the same
    if pod.node != node:
        words = f"{seen.ip}, {node}'s address after its masquerade"
    ingress = ps.flow(seen, endpoint, protocol, port, via_service=True).ingress
    if source.pod is None:
        egress = Decision("egress", source.label, True, note=f"{source.label} is not a pod: no egress policy applies")
    elif source.pod.node == node:  # its own node DNATs it: its egress is judged against the endpoint
        egress = ps.decide(source.pod, "egress", endpoint, protocol, port, pod)
    else:  # judged on its own node, on its way to the nodePort
        egress = ps.decide(source.pod, "egress", Peer(r.ip, None, node), protocol, dst.port, None)
    return Verdict(egress.allowed and ingress.allowed, egress, ingress), words
