"""Services the way kube-proxy (iptables mode) and Flannel program every node.

Per node, table ``nat``::

    PREROUTING ─┐                       (packets from pods and from the underlay)
    OUTPUT ─────┴─► KUBE-SERVICES
                     ├─ -d <ClusterIP>/32 -p tcp -m tcp --dport 80 ─► KUBE-SVC-<hash>
                     ├─ -d <LB IP>/32 ... (type LoadBalancer) ─────► KUBE-EXT-<hash>
                     └─ (last) -m addrtype --dst-type LOCAL ───────► KUBE-NODEPORTS
                                        -p tcp -m tcp --dport 30080 ► KUBE-EXT-<hash>
    KUBE-EXT-<hash>:  -j KUBE-MARK-MASQ, then -j KUBE-SVC-<hash>
    KUBE-SVC-<hash>:  ! -s <podCIDR> ... -j KUBE-MARK-MASQ (clients outside the pod network)
                      [ClientIP: -m recent --rcheck ... -j KUBE-SEP-x, one per endpoint]
                      -m statistic --mode random --probability 1/n     -j KUBE-SEP-1
                      -m statistic --mode random --probability 1/(n-1) -j KUBE-SEP-2
                      -j KUBE-SEP-n                              (random load balancing)
    KUBE-SEP-<hash>:  -s <endpoint>/32 -j KUBE-MARK-MASQ         (hairpin: a pod reaching itself)
                      -p tcp -m tcp -j DNAT --to-destination <pod IP>:<targetPort>
    POSTROUTING ─► KUBE-POSTROUTING: MASQUERADE what KUBE-MARK-MASQ marked 0x4000
                ─► FLANNEL-POSTRTG:  MASQUERADE pod traffic leaving the pod network (egress)

Table ``filter``: a Service port without endpoints REJECTs at once
(``icmp-port-unreachable``: the client gets "connection refused" instead of
a timeout), in ``KUBE-SERVICES`` (ClusterIP, from FORWARD and OUTPUT) and
``KUBE-EXTERNAL-SERVICES`` (NodePort, from INPUT and FORWARD), as kube-proxy
does. The nat table then has no rule for that port, so nothing is DNATed.

Chain names are kube-proxy's: ``KUBE-SVC-`` + the first 16 characters of
base32(sha256("<namespace>/<name>:<port name>" + "tcp")), ``KUBE-SEP-`` the same
over the service port, protocol and ``ip:port`` of the endpoint. The rules are
written in the exact form ``iptables-save`` prints them (``-p tcp -m tcp``,
``/32`` masks, ``--set-xmark``, probabilities with 11 decimals), so what status
reads back compares equal to the plan and any drift is a real difference.
The payload's form (canonical rules, ``#`` notes, jumps from built-in
chains kept out of it) is :mod:`netlab.plan.iptables`'s.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from netlab.model import naming
from netlab.model.lab import DEFAULT_ECHO_PORT, Lab, PodInfo
from netlab.model.topology import NODE_PORT_RANGE, Service, ServicePort
from netlab.plan.iptables import Ruleset, probability
from netlab.plan.resources import Resource, Route, Sysctl

# kube-proxy's constants.
MASQ_MARK = "0x4000"
AFFINITY_SECONDS = 10800  # v1.DefaultClientIPServiceAffinitySeconds (3 h)

KUBE_SERVICES = "KUBE-SERVICES"
KUBE_NODEPORTS = "KUBE-NODEPORTS"
KUBE_MARK_MASQ = "KUBE-MARK-MASQ"
KUBE_POSTROUTING = "KUBE-POSTROUTING"
KUBE_EXTERNAL_SERVICES = "KUBE-EXTERNAL-SERVICES"
FLANNEL_POSTRTG = "FLANNEL-POSTRTG"

MULTICAST = IPv4Network("224.0.0.0/4")

# Bridged frames (pod to pod on one cni0) must pass iptables, or a reply from a
# same-node endpoint bypasses conntrack and never gets its DNAT undone. The
# sysctl is per network namespace (Linux >= 5.3), so this sets it in the node
# only; it exists when br_netfilter is loaded (see netlab.services.lifecycle).
BRIDGE_NF_SYSCTL = ("net.bridge.bridge-nf-call-iptables", "1")


# --- names -------------------------------------------------------------------

def _b32_16(data: bytes) -> str:
    """First 16 characters of base32(data): the first 10 bytes are exactly 16 symbols."""
    value = int.from_bytes(data[:10], "big")
    return "".join(_B32[(value >> shift) & 31] for shift in range(75, -1, -5))


_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def port_proto_hash(service_port_name: str, protocol: str) -> str:
    """kube-proxy's portProtoHash: base32(sha256(name + protocol))[:16]."""
    return _b32_16(hashlib.sha256((service_port_name + protocol).encode()).digest())


def service_port_name(svc: Service, port: ServicePort) -> str:
    """``ServicePortName.String()``: ``namespace/name`` plus ``:portname`` when named."""
    return f"{svc.namespace}/{svc.name}" + (f":{port.name}" if port.name else "")


def svc_chain(spn: str, protocol: str) -> str:
    return naming.check_chain("KUBE-SVC-" + port_proto_hash(spn, protocol))


def ext_chain(spn: str, protocol: str) -> str:
    return naming.check_chain("KUBE-EXT-" + port_proto_hash(spn, protocol))


def sep_chain(spn: str, protocol: str, endpoint: str) -> str:
    """kube-proxy's servicePortEndpointChainName; ``endpoint`` is ``ip:port``."""
    digest = hashlib.sha256((spn + protocol + endpoint).encode()).digest()
    return naming.check_chain("KUBE-SEP-" + _b32_16(digest))




# --- what the rules are made from ---------------------------------------------

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
    endpoints: tuple[tuple[IPv4Address, int], ...]  # sorted by pod IP

    @property
    def affinity(self) -> bool:
        return self.svc.session_affinity == "ClientIP"

    @property
    def svc_chain(self) -> str:
        return svc_chain(self.name, self.protocol)

    @property
    def ext_chain(self) -> str:
        return ext_chain(self.name, self.protocol)

    def sep_chain(self, ip: IPv4Address, port: int) -> str:
        return sep_chain(self.name, self.protocol, f"{ip}:{port}")


def cluster_ip(lab: Lab, svc: Service) -> IPv4Address:
    return lab.addressing.service_ip[svc.name]


def node_ports(lab: Lab) -> dict[tuple[str, str, int, str], int]:
    """nodePort of every port of NodePort/LoadBalancer Services, keyed (namespace, name, port, protocol).

    Explicit ``nodePort`` values first; the others get the lowest free port of
    30000-32767 in file order (Kubernetes picks at random; a lab must be
    reproducible).
    """
    out: dict[tuple[str, str, int, str], int] = {}
    used = {p.node_port for s in lab.services for p in s.ports if p.node_port is not None}
    free = (n for n in range(NODE_PORT_RANGE[0], NODE_PORT_RANGE[1] + 1) if n not in used)
    for svc in lab.services:
        if svc.type == "ClusterIP":
            continue
        for port in svc.ports:
            key = (svc.namespace, svc.name, port.port, port.protocol)
            out[key] = port.node_port if port.node_port is not None else next(free)
    return out


def endpoint_index(lab: Lab) -> dict[tuple[str, str, int, str], list[tuple[PodInfo, int]]]:
    """``Lab.endpoints`` for every Service port at once, without an O(services x pods) scan.

    Same rule: every selector label matches, the pod serves targetPort/protocol,
    sorted by pod IP; an empty selector selects nothing.
    """
    by_label: dict[tuple[str, str], list[int]] = {}
    pods = lab.pods
    for i, pod in enumerate(pods):
        for item in pod.spec.labels.items():
            by_label.setdefault(item, []).append(i)
    port_cache: dict[int, set[tuple[int, str]]] = {}

    def ports(i: int) -> set[tuple[int, str]]:
        if i not in port_cache:
            port_cache[i] = _pod_ports(pods[i])
        return port_cache[i]

    out: dict[tuple[str, str, int, str], list[tuple[PodInfo, int]]] = {}
    for svc in lab.services:
        chosen: set[int] = set()
        if svc.selector:
            sets = [set(by_label.get(item, ())) for item in svc.selector.items()]
            chosen = set.intersection(*sets)
        for port in svc.ports:
            target = port.target_port or port.port
            eps = [(pods[i], target) for i in chosen if (target, port.protocol) in ports(i)]
            eps.sort(key=lambda item: item[0].ip)
            out[(svc.namespace, svc.name, port.port, port.protocol)] = eps
    return out


def _pod_ports(pod: PodInfo) -> set[tuple[int, str]]:
    """``PodInfo.ports`` without building a default Container model per pod (3,000 pods: 30 ms)."""
    if pod.spec.containers:
        return set(pod.ports)
    return {DEFAULT_ECHO_PORT}


def service_ports(lab: Lab) -> list[ServicePortInfo]:
    """Every Service port of the lab, in file order, resolved."""
    eps = endpoint_index(lab)
    nps = node_ports(lab)
    lbs = lab.addressing.lb_ip  # allocated with the lab's other addresses (see internet.py)
    out = []
    for svc in lab.services:
        for port in svc.ports:
            key = (svc.namespace, svc.name, port.port, port.protocol)
            out.append(ServicePortInfo(
                svc=svc, port=port, name=service_port_name(svc, port), protocol=port.protocol.lower(),
                cluster_ip=cluster_ip(lab, svc), node_port=nps.get(key), lb_ip=lbs.get((svc.namespace, svc.name)),
                endpoints=tuple((pod.ip, target) for pod, target in eps[key]),
            ))
    return out



# --- the node's tables --------------------------------------------------------

def node_nat(lab: Lab, sps: list[ServicePortInfo]) -> Ruleset:
    """kube-proxy's and Flannel's nat chains (the same on every node)."""
    rs = Ruleset("nat")
    for name in (KUBE_SERVICES, KUBE_NODEPORTS, KUBE_MARK_MASQ, KUBE_POSTROUTING, FLANNEL_POSTRTG):
        rs.chain(name)
    rs.jump("PREROUTING", f"-j {KUBE_SERVICES}")
    rs.jump("OUTPUT", f"-j {KUBE_SERVICES}")
    rs.jump("POSTROUTING", f"-j {KUBE_POSTROUTING}")
    rs.jump("POSTROUTING", f"-j {FLANNEL_POSTRTG}")
    pod_cidr = lab.topo.cluster.pod_cidr

    rs.note("Mark a connection for masquerading on its way out (KUBE-POSTROUTING).")
    rs.add(KUBE_MARK_MASQ, f"-j MARK --set-xmark {MASQ_MARK}/{MASQ_MARK}")
    rs.note("Masquerade marked connections; clear the mark so it does not leak into the VXLAN packet.")
    rs.add(KUBE_POSTROUTING, f"-m mark ! --mark {MASQ_MARK}/{MASQ_MARK} -j RETURN")
    rs.add(KUBE_POSTROUTING, f"-j MARK --set-xmark {MASQ_MARK}/0x0")
    rs.add(KUBE_POSTROUTING, "-j MASQUERADE --random-fully")
    rs.note(f"Flannel: pod traffic that leaves the pod network {pod_cidr} goes out with the node's address;")
    rs.note("pod to pod (also after a Service's DNAT) keeps its source: rule 1 of the network model.")
    rs.add(FLANNEL_POSTRTG, f"-m mark --mark {MASQ_MARK}/{MASQ_MARK} -j RETURN")
    rs.add(FLANNEL_POSTRTG, f"-s {pod_cidr} -d {pod_cidr} -j RETURN")
    rs.add(FLANNEL_POSTRTG, f"-s {pod_cidr} ! -d {MULTICAST} -j MASQUERADE --random-fully")

    for sp in sps:
        if not sp.endpoints:
            rs.note(f"{sp.name} has no endpoints: rejected in the filter table")
            continue
        proto, match = sp.protocol, f"-p {sp.protocol} -m {sp.protocol}"
        cip = str(sp.cluster_ip)
        svc, ext = rs.chain(sp.svc_chain), None
        eps = ", ".join(f"{ip}:{port}" for ip, port in sp.endpoints)
        rs.note(f"{sp.name} cluster IP {sp.cluster_ip}:{sp.port.port}/{proto} -> {eps}")
        rs.add(KUBE_SERVICES, f"-d {cip}/32 {match} --dport {sp.port.port} -j {svc}")
        if sp.node_port is not None:
            ext = rs.chain(sp.ext_chain)
            rs.note(f"{sp.name} node port {sp.node_port}/{proto}")
            rs.add(KUBE_NODEPORTS, f"{match} --dport {sp.node_port} -j {ext}")
            rs.add(ext, f"-j {KUBE_MARK_MASQ}")
            rs.add(ext, f"-j {svc}")
        if sp.lb_ip is not None and ext is not None:
            rs.note(f"{sp.name} load balancer IP {sp.lb_ip}: in-cluster clients skip the trip to the balancer")
            rs.add(KUBE_SERVICES, f"-d {sp.lb_ip}/32 {match} --dport {sp.port.port} -j {ext}")
        rs.add(svc, f"! -s {pod_cidr} -d {cip}/32 {match} --dport {sp.port.port} -j {KUBE_MARK_MASQ}")
        seps = [(sp.sep_chain(ip, port), ip, port) for ip, port in ((str(ip), port) for ip, port in sp.endpoints)]
        if sp.affinity:
            for sep, _, _ in seps:
                rs.add(svc, f"-m recent --rcheck --seconds {AFFINITY_SECONDS} --reap --name {sep} "
                            f"--mask 255.255.255.255 --rsource -j {sep}")
        n = len(seps)
        for i, (sep, _, _) in enumerate(seps):
            if i < n - 1:
                rs.add(svc, f"-m statistic --mode random --probability {probability(n - i)} -j {sep}")
            else:
                rs.add(svc, f"-j {sep}")
        for sep, ip, port in seps:
            rs.chain(sep)
            rs.add(sep, f"-s {ip}/32 -j {KUBE_MARK_MASQ}")
            recent = f" -m recent --set --name {sep} --mask 255.255.255.255 --rsource" if sp.affinity else ""
            rs.add(sep, f"{match}{recent} -j DNAT --to-destination {ip}:{port}")

    rs.note("Node ports: any local address of the node; must stay the last rule of KUBE-SERVICES.")
    rs.add(KUBE_SERVICES, f"-m addrtype --dst-type LOCAL -j {KUBE_NODEPORTS}")
    return rs


def node_filter(lab: Lab, sps: list[ServicePortInfo]) -> Ruleset:
    """kube-proxy's filter chains: reject connections to Service ports without endpoints."""
    rs = Ruleset("filter")
    rs.chain(KUBE_SERVICES)
    rs.chain(KUBE_EXTERNAL_SERVICES)
    rs.jump("INPUT", f"-m conntrack --ctstate NEW -j {KUBE_EXTERNAL_SERVICES}")
    rs.jump("FORWARD", f"-m conntrack --ctstate NEW -j {KUBE_SERVICES}")
    rs.jump("FORWARD", f"-m conntrack --ctstate NEW -j {KUBE_EXTERNAL_SERVICES}")
    rs.jump("OUTPUT", f"-m conntrack --ctstate NEW -j {KUBE_SERVICES}")
    for sp in sps:
        if sp.endpoints:
            continue
        match = f"-p {sp.protocol} -m {sp.protocol}"
        rs.note(f"{sp.name} has no endpoints: refuse at once instead of letting the client time out")
        rs.add(KUBE_SERVICES, f"-d {sp.cluster_ip}/32 {match} --dport {sp.port.port} "
                              "-j REJECT --reject-with icmp-port-unreachable")
        if sp.node_port is not None:
            rs.add(KUBE_EXTERNAL_SERVICES, f"-p {sp.protocol} -m addrtype --dst-type LOCAL -m {sp.protocol} "
                                           f"--dport {sp.node_port} -j REJECT --reject-with icmp-port-unreachable")
    return rs


def resources(lab: Lab) -> list[Resource]:
    """Per node: the bridge-netfilter sysctl, a route for the service CIDR when
    the node has no default route, and the nat and filter rules."""
    sps = service_ports(lab)
    nat, filt = node_nat(lab, sps), node_filter(lab, sps)
    nat_title = f"netlab {lab.name}: kube-proxy and Flannel nat rules (the same on every node)"
    filter_title = f"netlab {lab.name}: kube-proxy filter rules (the same on every node)"
    out: list[Resource] = []
    for node in lab.nodes:
        out.append(Sysctl(netns=node.netns, name=BRIDGE_NF_SYSCTL[0], value=BRIDGE_NF_SYSCTL[1]))
        if lab.topo.internet is None:
            # A node's own connections to a ClusterIP need a route before OUTPUT's
            # DNAT runs (real nodes use their default route; this lab has none
            # without an internet: section). Packets that are not DNATed (a
            # Service without endpoints) then meet the filter table's REJECT.
            out.append(Route(netns=node.netns, dst=lab.topo.cluster.service_cidr, gateway=None, dev=naming.NODE_IF))
        out.append(nat.resource(node.netns, nat_title))
        out.append(filt.resource(node.netns, filter_title))
    return out
