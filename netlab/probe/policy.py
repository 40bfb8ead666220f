"""What the probe matrix expects once NetworkPolicies exist: the evaluator's verdict.

Pure (model only). Without policies every pod and node reaches every pod (the
Kubernetes network model); with them, :mod:`netlab.model.netpol` says which
flows are allowed, from the policies' meaning alone, and the prober checks
the kernel agrees. ``expect:`` entries still override (matrix.py applies them
after this).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from netlab.model.netpol import Peer, PodView, Verdict, lab_peer, nodeport_source, policy_set

if TYPE_CHECKING:
    from netlab.model.lab import Lab, NodeInfo
    from netlab.probe.matrix import Endpoint

Judge = Callable[["Endpoint", "Endpoint", str, "int | None"], "tuple[bool, str]"]


def policy_judge(lab: "Lab") -> Judge | None:
    """(source, destination, proto, port) -> (expected reachable, reason); None without policies."""
    if not lab.topo.network_policies:
        return None
    ps = policy_set(lab)
    peers: dict[str, Peer | None] = {}

    def peer(name: str) -> Peer | None:
        if name not in peers:
            peers[name] = lab_peer(lab, ps, name)
        return peers[name]

    def judge(src: "Endpoint", dst: "Endpoint", proto: str, port: int | None) -> tuple[bool, str]:
        s, d = peer(src.name), peer(dst.name)
        if dst.kind == "node":  # the address the probe sends to (eth0's node IP), not flannel.1's it sends from
            d = Peer(dst.ip, None, dst.name)
        if d is None and dst.kind == "host":  # an internet host: a pod's egress rules see its address
            d = Peer(dst.ip)
        if s is None or d is None:
            return True, "default"
        verdict = ps.flow(s, d, "ICMP" if proto == "icmp" else proto.upper(), port)
        return verdict.allowed, "policy: " + verdict.describe()

    return judge


class ServiceJudge:
    """Service probes under NetworkPolicies: judged against the endpoint pods, after DNAT.

    A ClusterIP probe reaches one endpoint, picked at random by kube-proxy: it is
    expected to reach when the policies allow every endpoint, to be refused when
    they allow none, and is not probed when they allow some only (its result
    would depend on the pick). A nodePort probe is judged the same way, each
    endpoint against the source its node's FORWARD sees (:meth:`nodeport_source`).
    LoadBalancer traffic reaches a node the gateway's multipath hash picks: probes to
    a Service whose endpoints a policy isolates for ingress are left out, with a note,
    but with externalTrafficPolicy Local, where every endpoint sees the host's own
    address (:meth:`load_balancer_local`).
    """

    def __init__(self, lab: "Lab"):
        self.lab = lab
        self.ps = policy_set(lab)

    def clusterip(self, src: str, endpoints: list[tuple[str, int]], proto: str) -> tuple[bool | None, str]:
        """(expected, reason) for a ClusterIP probe from pod ``src``; expected None: do not probe."""
        s = lab_peer(self.lab, self.ps, src)
        if s is None:
            return True, "service"
        verdicts = []
        for pod, port in endpoints:
            d = lab_peer(self.lab, self.ps, pod)
            if d is not None:
                verdicts.append((pod, self.ps.flow(s, d, proto.upper(), port, via_service=True)))
        return self._one_for_all(verdicts)

    def nodeport_source(self, src: "Endpoint", node: "NodeInfo", pod: PodView) -> Peer:
        """The source the endpoint's ingress is judged against when ``src`` (a node or an internet host) dials
        ``node``'s nodePort and kube-proxy picks ``pod`` (:func:`netlab.model.netpol.nodeport_source`, which
        trace/nodeport.py uses too): the packet reaches ``node`` with the client's own address (a host's, another
        node's eth0), or is ``node``'s own."""
        if src.kind == "node" and src.name == node.name:
            return nodeport_source(self.lab, node.name, pod, None)
        arrival = Peer(src.ip, None, src.name) if src.kind == "node" else Peer(src.ip)
        return nodeport_source(self.lab, node.name, pod, arrival)

    def nodeport(self, src: "Endpoint", node: "NodeInfo", endpoints: list[tuple[str, int]],
                 proto: str) -> tuple[bool | None, str]:
        """(expected, reason) for a probe from a node or an internet host to ``node``'s nodePort; expected None:
        do not probe. No egress policy applies: the client is not a pod."""
        return self._each_endpoint(lambda pod: self.nodeport_source(src, node, pod), endpoints, proto)

    def load_balancer_local(self, src: "Endpoint", endpoints: list[tuple[str, int]],
                            proto: str) -> tuple[bool | None, str]:
        """(expected, reason) for an internet host's probe of a LoadBalancer IP with externalTrafficPolicy Local;
        expected None: do not probe. The gateway routes it only to nodes with endpoints of their own, and each
        sends it to one of those unmasqueraded (:func:`nodeport_source`'s ``arrival``): every endpoint is judged
        with the host's own address, whichever node the gateway's hash picks."""
        return self._each_endpoint(lambda pod: Peer(src.ip), endpoints, proto)

    def _each_endpoint(self, source: Callable[[PodView], Peer], endpoints: list[tuple[str, int]],
                       proto: str) -> tuple[bool | None, str]:
        """:meth:`_one_for_all` of the endpoints kube-proxy picks from, each judged (its ingress, after the DNAT)
        with the source ``source`` says it sees."""
        views = {p.name: p for p in self.ps.pods}
        return self._one_for_all([(pod, self.ps.flow(source(views[pod]), Peer(views[pod].ip, views[pod]), proto.upper(),
                                                     port, via_service=True))
                                  for pod, port in endpoints if pod in views])

    def pod_nodeport(self, src: str, node: "NodeInfo", endpoints: list[tuple[str, int]], proto: str,
                     node_port: int, local: bool = False) -> tuple[bool | None, str]:
        """(expected, reason) for pod ``src`` dialling ``node``'s nodePort, ``endpoints`` the ones kube-proxy
        picks from (:func:`netlab.probe.nodeport_pods.probe`); expected None: do not probe.

        On the pod's own node, kube-proxy DNATs it in PREROUTING, before FORWARD: its egress is judged against
        the endpoint, and the endpoint's ingress with what the packet has there (the pod's address; one of
        another node sees the node's masquerade, externalTrafficPolicy Cluster; a pod reaching itself is not
        judged). To another node, its own node's FORWARD judges its egress against that node's address and the
        nodePort, and Flannel masquerades it to its node's eth0 address (it leaves the pod network): that is the
        source the receiving node sees, and hands on masqueraded again (KUBE-EXT) to an endpoint elsewhere, the
        client pod itself included (a hairpin through another node): that endpoint judges the receiver's
        address."""
        views = {p.name: p for p in self.ps.pods}
        client = views.get(src)
        if client is None:
            return True, "service"
        me = Peer(client.ip, client)
        verdicts = []
        for pod, port in endpoints:
            ep = views.get(pod)
            if ep is None:
                continue
            to = Peer(ep.ip, ep)
            if client.node == node.name:
                seen = me if local else nodeport_source(self.lab, node.name, ep, me)
                if seen is me:
                    verdicts.append((pod, self.ps.flow(me, to, proto.upper(), port, via_service=True)))
                    continue
                egress = self.ps.decide(client, "egress", to, proto.upper(), port, ep)
            else:
                arrival = Peer(self.lab.node(client.node).ip)  # after Flannel's masquerade on the pod's node
                seen = nodeport_source(self.lab, node.name, ep, arrival)
                egress = self.ps.decide(client, "egress", Peer(node.ip, None, node.name), proto.upper(), node_port,
                                        None)
            ingress = self.ps.flow(seen, to, proto.upper(), port, via_service=True).ingress
            verdicts.append((pod, Verdict(egress.allowed and ingress.allowed, egress, ingress)))
        return self._one_for_all(verdicts)

    @staticmethod
    def _one_for_all(verdicts: list[tuple[str, Verdict]]) -> tuple[bool | None, str]:
        """One expectation for the endpoints kube-proxy picks from at random: all allowed or none, else None."""
        if not verdicts:
            return True, "service"
        allowed = [pod for pod, v in verdicts if v.allowed]
        if len(allowed) == len(verdicts):
            return True, "service; policy: " + verdicts[0][1].describe()
        if not allowed:
            return False, "service; policy: " + verdicts[0][1].describe()
        return None, (f"policies allow {', '.join(allowed)} but not every endpoint: the result depends on the "
                      "endpoint kube-proxy picks")

    def isolated(self, endpoints: list[str]) -> bool:
        """Some endpoint is isolated for ingress by a policy."""
        views = {p.name: p for p in self.ps.pods}
        return any(self.ps.isolating(views[pod], "ingress") for pod in endpoints if pod in views)


def service_judge(lab: "Lab") -> ServiceJudge | None:
    return ServiceJudge(lab) if lab.topo.network_policies else None
