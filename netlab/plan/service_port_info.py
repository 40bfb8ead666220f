"""The Service ports kube-proxy's rules are made from: each port of each Service, resolved.

:class:`ServicePortInfo` holds one port of one Service with all its rules need (ClusterIP, nodePort,
balancer IP, endpoints in kube-proxy's order and their nodes, traffic policies, the chain names); the
functions resolve them from the lab. The iptables rules made from them are :mod:`netlab.plan.services`'s
(which these stay importable from), the nftables ones :mod:`netlab.plan.nftables`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from netlab.model.lab import Lab, PodInfo
from netlab.model.topology import Service, ServicePort
from netlab.plan.kube_names import ext_chain, fw_chain, sep_chain, service_port_name, svc_chain, svl_chain


@dataclass(frozen=True)
class ServicePortInfo:
    """One port of one Service, with everything the rules need resolved."""

    svc: Service
    port: ServicePort
    name: str  # namespace/name[:port]
    protocol: str  # lower case, as in iptables
    cluster_ip: IPv4Address
    node_port: int | None
    lb_ip: IPv4Address | None
    endpoints: tuple[tuple[IPv4Address, int], ...]  # in kube-proxy's order (model.lab.endpoint_order)
    nodes: tuple[str, ...] = ()  # the node of each endpoint, in the same order (EndpointSlice's nodeName)
    health_check_node_port: int | None = None  # LoadBalancer with externalTrafficPolicy Local
    external_ips: tuple[IPv4Address, ...] = ()  # spec.externalIPs, in the file's order
    source_ranges: tuple[IPv4Network, ...] = ()  # spec.loadBalancerSourceRanges (type LoadBalancer)

    @property
    def uses_firewall(self) -> bool:
        """kube-proxy's usesFWChain: a balancer's IP with loadBalancerSourceRanges (and endpoints, which the
        callers check)."""
        return self.lb_ip is not None and bool(self.source_ranges)

    @property
    def fw_chain(self) -> str:
        return fw_chain(self.name, self.protocol)

    def firewall_sources(self, node_ip: IPv4Address | None) -> list[str]:
        """Who passes the firewall chain: the ranges, and the balancer's own IP when a range holds the node's
        address (a VIP-like balancer's traffic from the node loops back with the VIP as its source)."""
        out = [str(r) for r in self.source_ranges]
        if node_ip is not None and self.lb_ip is not None and any(node_ip in r for r in self.source_ranges):
            out.append(str(self.lb_ip))
        return out

    @property
    def external(self) -> bool:
        """kube-proxy's ExternallyAccessible: a node port, a balancer IP or externalIPs (the external chain)."""
        return self.node_port is not None or self.lb_ip is not None or bool(self.external_ips)

    @property
    def affinity(self) -> bool:
        return self.svc.session_affinity == "ClientIP"

    @property
    def affinity_seconds(self) -> int:
        """sessionAffinityConfig.clientIP.timeoutSeconds (kube-proxy's StickyMaxAgeSeconds)."""
        return self.svc.affinity_seconds

    @property
    def external_local(self) -> bool:
        """externalTrafficPolicy Local: outside traffic to a node goes to that node's endpoints only."""
        return self.svc.external_local

    @property
    def internal_local(self) -> bool:
        """internalTrafficPolicy Local: the ClusterIP goes to the client's node's endpoints only."""
        return self.svc.internal_traffic_policy == "Local"

    def local_endpoints(self, node: str) -> tuple[tuple[IPv4Address, int], ...]:
        """The endpoints on ``node`` (kube-proxy's localEndpoints: EndpointSlice nodeName == its own)."""
        return tuple(ep for ep, where in zip(self.endpoints, self.nodes) if where == node)

    def external_endpoints(self, node: str) -> tuple[tuple[IPv4Address, int], ...]:
        """Where outside traffic to ``node``'s nodePort or the balancer's IP may go (hasExternalEndpoints)."""
        return self.local_endpoints(node) if self.external_local else self.endpoints

    @property
    def svl_chain(self) -> str:
        return svl_chain(self.name, self.protocol)

    @property
    def svc_chain(self) -> str:
        return svc_chain(self.name, self.protocol)

    @property
    def ext_chain(self) -> str:
        return ext_chain(self.name, self.protocol)

    def sep_chain(self, ip: IPv4Address, port: int) -> str:
        return sep_chain(self.name, self.protocol, f"{ip}:{port}")


def cluster_ip(lab: Lab, svc: Service) -> IPv4Address:
    ip = lab.cluster_ip(svc)
    assert ip is not None, f"headless Service {svc.name} has no ClusterIP"
    return ip


def node_ports(lab: Lab) -> dict[tuple[str, str, int, str], int]:
    """nodePort of every port of NodePort/LoadBalancer Services, keyed (namespace, name, port, protocol).

    Explicit ``nodePort`` values first; the others get the one of the Service's port of the same number, else the
    one a running lab's Service holds, else the lowest free port of 30000-32767 in file order (Kubernetes picks at
    random; a lab must be reproducible): allocated with the lab's addresses, see model/nodeports.py.
    """
    return lab.addressing.node_port


def endpoint_index(lab: Lab) -> dict[tuple[str, str, int, str], list[tuple[PodInfo, int]]]:
    """``Lab.endpoints`` of every Service port, keyed (namespace, name, port, protocol): a pod of the Service's
    namespace whose labels match every selector label (declared port or not: the EndpointSlice controller's
    rule for a numeric targetPort; for a named one, the pods that declare it, each at its own number), in
    kube-proxy's order; an empty selector selects nothing. Found through the lab's pods filed by label
    (``Lab.selection``, model/selection.py), not by asking every pod."""
    return {(svc.namespace, svc.name, port.port, port.protocol): lab.endpoints(svc, port)
            for svc in lab.services for port in svc.ports}


def service_ports(lab: Lab) -> list[ServicePortInfo]:
    """Every Service port of the lab, in file order, resolved; a headless Service has none: kube-proxy skips a
    Service without a ClusterIP (its DNS name answers the endpoints' addresses instead)."""
    eps = endpoint_index(lab)
    nps = node_ports(lab)
    hcs = lab.addressing.health_check_port  # allocated with the nodePorts
    lbs = lab.addressing.lb_ip  # allocated with the lab's other addresses (see internet.py)
    out = []
    for svc in lab.services:
        for port in svc.ports if not svc.headless else ():
            key = (svc.namespace, svc.name, port.port, port.protocol)
            out.append(ServicePortInfo(
                svc=svc, port=port, name=service_port_name(svc, port), protocol=port.protocol.lower(),
                cluster_ip=cluster_ip(lab, svc), node_port=nps.get(key), lb_ip=lbs.get((svc.namespace, svc.name)),
                endpoints=tuple((pod.ip, target) for pod, target in eps[key]),
                nodes=tuple(pod.node for pod, _ in eps[key]),
                health_check_node_port=hcs.get((svc.namespace, svc.name)),
                external_ips=tuple(svc.external_ips),
                source_ranges=tuple(svc.load_balancer_source_ranges),
            ))
    return out
