"""IP address management: node IPs, node pod CIDRs, pod IPs, ClusterIPs.

Like Kubernetes' node IPAM and the ``host-local`` CNI plugin, but
deterministic: explicit addresses are honoured first, the rest are handed out
in file order from the lowest free address, so the same topology always gets
the same addresses.

    cluster podCIDR 10.244.0.0/16
      node minikube      10.244.0.0/24   .0 flannel.1 (/32), .1 cni0, .2.. pods
      node minikube-m02  10.244.1.0/24
    underlay 192.168.122.0/24            .1 the lab's gateway, nodes from .2
    serviceCIDR 10.96.0.0/12             .1 reserved (kubernetes), Services from .10
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import TYPE_CHECKING, Iterator

BRIDGE_PORT_LIMIT = 1023  # BR_MAX_PORTS is 1024, port numbers start at 1

if TYPE_CHECKING:
    from netlab.model.topology import Loc, Topology


@dataclass
class Addressing:
    """Every address of a lab, keyed by node, pod or service name."""

    node_ip: dict[str, IPv4Address] = field(default_factory=dict)
    node_pod_cidr: dict[str, IPv4Network] = field(default_factory=dict)
    pod_ip: dict[str, IPv4Address] = field(default_factory=dict)
    service_ip: dict[str, IPv4Address] = field(default_factory=dict)
    gateway_underlay_ip: IPv4Address | None = None


def underlay_gateway(cidr: IPv4Network) -> IPv4Address:
    """The first host address of the underlay, kept for the lab's gateway."""
    return cidr.network_address + 1


def pod_capacity(cidr: IPv4Network) -> int:
    """Pods that fit in a node's block: minus network (.0, flannel.1), cni0 (.1) and broadcast."""
    return cidr.num_addresses - 3


def _free_hosts(net: IPv4Network, first_offset: int, used: set[IPv4Address]) -> Iterator[IPv4Address]:
    last = int(net.broadcast_address) - 1
    for value in range(int(net.network_address) + first_offset, last + 1):
        addr = IPv4Address(value)
        if addr not in used:
            yield addr


def allocate(topo: Topology) -> tuple[Addressing, list[tuple[Loc, str]]]:
    """Assign every address; returns the addressing and located problems."""
    out: list[tuple[Loc, str]] = []
    addr = Addressing()
    underlay = topo.network.underlay.cidr
    addr.gateway_underlay_ip = underlay_gateway(underlay)

    # Node IPs on the underlay.
    used: dict[IPv4Address, str] = {addr.gateway_underlay_ip: "the lab's gateway (first address of the underlay)"}
    for i, node in enumerate(topo.nodes):
        if node.ip is None:
            continue
        loc = ("nodes", i, "ip")
        if node.ip not in underlay or node.ip in (underlay.network_address, underlay.broadcast_address):
            out.append((loc, f"{node.ip} is not a host address of the underlay {underlay}"))
        elif node.ip in used:
            out.append((loc, f"{node.ip} is already used by {used[node.ip]}"))
        else:
            used[node.ip] = f"node {node.name!r}"
            addr.node_ip[node.name] = node.ip
    free = _free_hosts(underlay, 2, set(used))
    for i, node in enumerate(topo.nodes):
        if node.ip is None:
            ip = next(free, None)
            if ip is None:
                out.append((("nodes", i), f"no free address left in the underlay {underlay}"))
                continue
            addr.node_ip[node.name] = ip
    if len(topo.nodes) > 1023:
        out.append((("nodes",), f"{len(topo.nodes)} nodes; the underlay bridge takes at most 1023 ports"))

    # Node pod CIDRs: one /nodeMask block each, inside the cluster podCIDR.
    cluster = topo.cluster.pod_cidr
    mask = topo.cluster.node_mask
    taken: dict[IPv4Network, str] = {}
    for i, node in enumerate(topo.nodes):
        if node.pod_cidr is None:
            continue
        loc = ("nodes", i, "podCIDR")
        if not node.pod_cidr.subnet_of(cluster):
            out.append((loc, f"{node.pod_cidr} is not inside cluster.podCIDR {cluster}"))
        elif node.pod_cidr.prefixlen != mask:
            out.append((loc, f"{node.pod_cidr} is a /{node.pod_cidr.prefixlen}; node blocks are /{mask} (cluster.nodeMask)"))
        else:
            clash = next((who for net, who in taken.items() if net.overlaps(node.pod_cidr)), None)
            if clash:
                out.append((loc, f"{node.pod_cidr} overlaps the pod CIDR of {clash}"))
            else:
                taken[node.pod_cidr] = f"node {node.name!r}"
                addr.node_pod_cidr[node.name] = node.pod_cidr
    blocks = (b for b in cluster.subnets(new_prefix=mask) if b not in taken)
    for i, node in enumerate(topo.nodes):
        if node.pod_cidr is None:
            block = next(blocks, None)
            if block is None:
                out.append((("nodes", i), f"cluster.podCIDR {cluster} has no free /{mask} left for this node"))
                continue
            addr.node_pod_cidr[node.name] = block

    # Pod IPs inside their node's block (.0 is flannel.1's, .1 is cni0's).
    pod_used: dict[IPv4Address, str] = {}
    per_node: dict[str, int] = {}
    for i, pod in enumerate(topo.pods):
        per_node[pod.node] = per_node.get(pod.node, 0) + 1
        block = addr.node_pod_cidr.get(pod.node)
        if pod.ip is None or block is None:
            continue
        loc = ("pods", i, "ip")
        if pod.ip not in block:
            out.append((loc, f"{pod.ip} is not in node {pod.node!r}'s pod CIDR {block}"))
        elif pod.ip in (block.network_address, block.network_address + 1, block.broadcast_address):
            out.append((loc, f"{pod.ip} is reserved in {block} (.0 overlay, .1 cni0 gateway, broadcast); use .2 or above"))
        elif pod.ip in pod_used:
            out.append((loc, f"{pod.ip} is already used by {pod_used[pod.ip]}"))
        else:
            pod_used[pod.ip] = f"pod {pod.name!r}"
            addr.pod_ip[pod.name] = pod.ip
    for node_name, count in per_node.items():
        block = addr.node_pod_cidr.get(node_name)
        if block is None:
            continue
        limit = min(pod_capacity(block), BRIDGE_PORT_LIMIT)
        if count > limit:
            first = next(i for i, p in enumerate(topo.pods) if p.node == node_name)
            why = f"its pod CIDR {block} holds {pod_capacity(block)}" if limit == pod_capacity(block) \
                else f"a bridge takes at most {BRIDGE_PORT_LIMIT} ports"
            out.append((("pods", first, "node"), f"{count} pods on node {node_name!r}, but {why}"))
    free_by_node = {n: _free_hosts(b, 2, set(pod_used)) for n, b in addr.node_pod_cidr.items()}
    for i, pod in enumerate(topo.pods):
        if pod.ip is None and pod.node in free_by_node:
            ip = next(free_by_node[pod.node], None)
            if ip is not None:
                addr.pod_ip[pod.name] = ip

    # ClusterIPs: .1 is the "kubernetes" Service in a real cluster; start at .10.
    scidr = topo.cluster.service_cidr
    svc_used: dict[IPv4Address, str] = {}
    for i, svc in enumerate(topo.services):
        if svc.cluster_ip is None:
            continue
        loc = ("services", i, "clusterIP")
        if svc.cluster_ip not in scidr or svc.cluster_ip in (scidr.network_address, scidr.broadcast_address):
            out.append((loc, f"{svc.cluster_ip} is not a host address of cluster.serviceCIDR {scidr}"))
        elif svc.cluster_ip in svc_used:
            out.append((loc, f"{svc.cluster_ip} is already used by {svc_used[svc.cluster_ip]}"))
        else:
            svc_used[svc.cluster_ip] = f"service {svc.name!r}"
            addr.service_ip[svc.name] = svc.cluster_ip
    free_svc = _free_hosts(scidr, 10, set(svc_used))
    for i, svc in enumerate(topo.services):
        if svc.cluster_ip is None:
            ip = next(free_svc, None)
            if ip is None:
                out.append((("services", i), f"cluster.serviceCIDR {scidr} is full"))
                continue
            addr.service_ip[svc.name] = ip

    # The simulated internet.
    if topo.internet:
        inet = topo.internet.cidr
        seen: dict[IPv4Address, str] = {}
        hosts = [(("internet", "gateway", "ip"), "the gateway", topo.internet.gateway.ip)]
        hosts += [(("internet", "hosts", i, "ip"), f"host {h.name!r}", h.ip) for i, h in enumerate(topo.internet.hosts)]
        hosts += [(("services", i, "loadBalancerIP"), f"service {s.name!r}", s.load_balancer_ip)
                  for i, s in enumerate(topo.services) if s.load_balancer_ip is not None]
        for loc, who, ip in hosts:
            if ip not in inet or ip in (inet.network_address, inet.broadcast_address):
                out.append((loc, f"{ip} is not a host address of internet.cidr {inet}"))
            elif ip in seen:
                out.append((loc, f"{ip} is already used by {seen[ip]}"))
            else:
                seen[ip] = who
    return addr, out



