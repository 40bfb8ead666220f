"""IP address management: node IPs, node pod CIDRs, pod IPs, ClusterIPs.

Like Kubernetes' node IPAM and the ``host-local`` CNI plugin, but deterministic: explicit addresses first, the rest
handed out in file order from the lowest free address, so a topology always gets the same addresses.

A running lab's nodes, pods and Services keep what they hold (:class:`Held`, its last ``up``'s allocation), as
Kubernetes keeps them while the object exists: the node IPAM controller a node's podCIDR (spec.podCIDR never
changes), the node its InternalIP, host-local a pod's lease, the API server a Service's ClusterIP, its nodePorts and
healthCheckNodePort (model/nodeports.py), and the load balancer its external IP. A node or pod added to the file,
wherever, takes the lowest free block or address, and one removed frees its own. A pod that moved to another node,
or whose node's block changed, is a new pod (Kubernetes makes it anew): it gets a new address. An explicit address,
block or nodePort another asks for is taken from the one that held it, which then gets a new one
(:attr:`Addressing.displaced` names it). A pod removed from the file whose CNI DEL has not succeeded keeps its
address from new pods (:attr:`Held.cni_leases`): host-local still leases it.

    cluster podCIDR 10.244.0.0/16
      node minikube      10.244.0.0/24   .0 flannel.1 (/32), .1 cni0, .2.. pods
      node minikube-m02  10.244.1.0/24
    underlay 192.168.122.0/24            .1 the underlay's router (br0, or the internet gateway), nodes from .2
    serviceCIDR 10.96.0.0/12             .1 reserved (kubernetes), Services from .10
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Network
from typing import Any, Iterator, Mapping

from netlab.model import nodeports
from netlab.model.location import Loc
from netlab.model.nodeports import NamedKey, PortKey
from netlab.model.topology import Topology

BRIDGE_PORT_LIMIT = 1023  # BR_MAX_PORTS is 1024, port numbers start at 1


@dataclass
class Addressing:
    """Every address of a lab, keyed by node or pod name, or a Service's (namespace, name)."""

    node_ip: dict[str, IPv4Address] = field(default_factory=dict)
    node_pod_cidr: dict[str, IPv4Network] = field(default_factory=dict)
    pod_ip: dict[str, IPv4Address] = field(default_factory=dict)
    service_ip: dict[tuple[str, str], IPv4Address] = field(default_factory=dict)  # (namespace, name)
    gateway_underlay_ip: IPv4Address | None = None
    # External IP of every LoadBalancer Service, keyed (namespace, name).
    lb_ip: dict[tuple[str, str], IPv4Address] = field(default_factory=dict)
    # nodePort of every port of the NodePort and LoadBalancer Services, keyed (namespace, name, port, protocol),
    # and healthCheckNodePort of every LoadBalancer with externalTrafficPolicy Local (model/nodeports.py)
    node_port: dict[PortKey, int] = field(default_factory=dict)
    health_check_port: dict[tuple[str, str], int] = field(default_factory=dict)
    # What the running lab's nodes, pods and Services held and another's explicit address or port (ip:, podCIDR:,
    # clusterIP:, loadBalancerIP:, nodePort:, healthCheckNodePort:) took from them.
    displaced: list[Displaced] = field(default_factory=list)


@dataclass(frozen=True)
class Displaced:
    """An address (or block, or nodePort) a running node, pod or Service held that the file gives another: it gets
    a new one."""

    who: str  # "pod b", "node n2", "service default/web", "service default/web's port 80/TCP"
    what: str  # the Addressing field it was in, where its new one is: pod_ip, node_pod_cidr, lb_ip, node_port...
    key: str | tuple[str, str] | PortKey | NamedKey  # its key there (one it has no more: it has none now)
    held: IPv4Address | IPv4Network | int
    taker: str  # "pod d asks for (ip:)", or why else it lost it ("is now the lab's VXLAN port ...")


@dataclass(frozen=True)
class HeldPod:
    """A running pod's address, and where it runs: kept while the pod is the same one."""

    namespace: str
    node: str
    node_cidr: IPv4Network  # its node's block when it got the address
    ip: IPv4Address


@dataclass(frozen=True)
class HeldNode:
    """A running node's underlay IP (its InternalIP) and pod CIDR block (spec.podCIDR): kept for its life."""

    ip: IPv4Address
    pod_cidr: IPv4Network


@dataclass(frozen=True)
class Held:
    """What a running lab's pods (by name), Services (by (namespace, name): ClusterIP), nodes (by name),
    LoadBalancer Services (their external IP), Service ports (their nodePort, by (namespace, name, port name), as
    the API server carries it over) and health checks (a Service's healthCheckNodePort) hold: its last up's
    allocation. ``older_node_ports``: an older netlab's, by (namespace, name, port, protocol), until
    :meth:`migrated` names them by the ports of the topology that lab runs."""

    pods: Mapping[str, HeldPod] = field(default_factory=dict)
    services: Mapping[tuple[str, str], IPv4Address] = field(default_factory=dict)
    nodes: Mapping[str, HeldNode] = field(default_factory=dict)
    load_balancers: Mapping[tuple[str, str], IPv4Address] = field(default_factory=dict)
    node_ports: Mapping[NamedKey, int] = field(default_factory=dict)
    health_checks: Mapping[tuple[str, str], int] = field(default_factory=dict)
    older_node_ports: Mapping[PortKey, int] = field(default_factory=dict)
    # The nodes where portmap's shared chains were made (builtin: plan/portmap_rules.py), and those with cni0 (a pod
    # of theirs ran: Lab.bridge_nodes): kept, as portmap's DEL keeps them and the bridge plugin never deletes it
    portmap_nodes: frozenset[str] = frozenset()
    bridge_nodes: frozenset[str] = frozenset()
    cni_leases: Mapping[str, IPv4Address] = field(default_factory=dict)  # pod -> what its CNI record may lease

    def to_json(self) -> dict:
        """As the lab's state saves it (realize/state.py)."""
        return {"pods": {name: [p.namespace, p.node, str(p.node_cidr), str(p.ip)] for name, p in self.pods.items()},
                "services": [[ns, name, str(ip)] for (ns, name), ip in self.services.items()],
                "nodes": {name: [str(n.ip), str(n.pod_cidr)] for name, n in self.nodes.items()},
                "load_balancers": [[ns, name, str(ip)] for (ns, name), ip in self.load_balancers.items()],
                "node_ports": [[*key, np] for key, np in [*self.node_ports.items(), *self.older_node_ports.items()]],
                "health_checks": [[ns, name, hc] for (ns, name), hc in self.health_checks.items()],
                "portmap_nodes": sorted(self.portmap_nodes), "bridge_nodes": sorted(self.bridge_nodes)}

    @classmethod
    def from_json(cls, data: Mapping) -> "Held":
        """What :meth:`to_json` wrote (ValueError, TypeError or KeyError for anything else); an older netlab's
        record has no nodes, load_balancers, node_ports, health_checks, portmap_nodes nor bridge_nodes: none held
        (the state fills them in, realize/state.py), and its node_ports rows are [namespace, name, port, protocol,
        nodePort]:
        older_node_ports (the state names them, :meth:`migrated`)."""
        pods = {str(name): HeldPod(str(ns), str(node), IPv4Network(cidr), IPv4Address(ip))
                for name, (ns, node, cidr, ip) in data["pods"].items()}
        services = {(str(ns), str(name)): IPv4Address(ip) for ns, name, ip in data["services"]}
        nodes = {str(name): HeldNode(IPv4Address(ip), IPv4Network(cidr))
                 for name, (ip, cidr) in (data.get("nodes") or {}).items()}
        lbs = {(str(ns), str(name)): IPv4Address(ip) for ns, name, ip in data.get("load_balancers") or []}
        rows = data.get("node_ports") or []
        ports = {(str(ns), str(name), _name(port)): _port(np)
                 for ns, name, port, np in (r for r in rows if len(r) == 4)}
        older = {(str(ns), str(name), _port(port), str(proto)): _port(np)
                 for ns, name, port, proto, np in (r for r in rows if len(r) != 4)}
        checks = {(str(ns), str(name)): _port(hc) for ns, name, hc in data.get("health_checks") or []}
        portmap, bridges = (frozenset(str(n) for n in data.get(key) or []) for key in ("portmap_nodes", "bridge_nodes"))
        return cls(pods, services, nodes, lbs, ports, checks, older, portmap, bridges)

    def migrated(self, topo: Topology) -> "Held":
        """This, its older_node_ports (an older netlab's) held by the names ``topo`` (what that lab runs) gives
        their ports, as the next up keeps them."""
        if not self.older_node_ports:
            return self
        return replace(self, node_ports={**nodeports.named(topo, self.older_node_ports), **self.node_ports},
                       older_node_ports={})


def _port(value: Any) -> int:
    """A port number as :meth:`Held.to_json` wrote it: an integer (ValueError for anything else)."""
    if type(value) is not int:
        raise ValueError(f"not a port number: {value!r}")
    return value


def _name(value: Any) -> str:
    """A Service port's name as :meth:`Held.to_json` wrote it ("": unnamed; ValueError for anything else)."""
    if type(value) is not str:
        raise ValueError(f"not a port name: {value!r}")
    return value


def held_of(addr: Addressing, pods: Mapping[str, tuple[str, str]], port_names: Mapping[PortKey, str],
            portmap_nodes: frozenset[str] = frozenset(), bridge_nodes: frozenset[str] = frozenset()) -> Held:
    """What a lab allocated with ``addr`` holds; ``pods``: each pod's (namespace, node); ``port_names``: each Service
    port's name ("": unnamed); ``portmap_nodes``, ``bridge_nodes``: the nodes with portmap's shared chains, cni0."""
    return Held({name: HeldPod(ns, node, addr.node_pod_cidr[node], addr.pod_ip[name])
                 for name, (ns, node) in pods.items() if name in addr.pod_ip and node in addr.node_pod_cidr},
                dict(addr.service_ip),
                {name: HeldNode(ip, addr.node_pod_cidr[name]) for name, ip in addr.node_ip.items()
                 if name in addr.node_pod_cidr},
                dict(addr.lb_ip), {(k[0], k[1], port_names[k]): np for k, np in addr.node_port.items()},
                dict(addr.health_check_port), portmap_nodes=portmap_nodes, bridge_nodes=bridge_nodes)


def _keep_held(addr: Addressing, into: dict, used: dict, pinned: dict, who: str, what: str, key: Any, was: Any,
               usable: bool, label: str) -> None:
    """A running node, pod or Service keeps what it held (``was``: an address or a block), as Kubernetes keeps a
    pod's lease, a Service's ClusterIP and a node's podCIDR, and it goes ``into[key]``, ``used`` by ``label``;
    unless the file gives it to another (``pinned``: then it is :class:`Displaced` and gets a new one), the file
    no longer allows it (``usable`` false), or another took it first (``used``): then it gets a new one too."""
    if was in pinned:
        addr.displaced.append(Displaced(who, what, key, was, pinned[was]))
    elif usable and was not in used:
        used[was] = label
        into[key] = was


def underlay_gateway(cidr: IPv4Network) -> IPv4Address:
    """The first host address of the underlay: its router, every node's default gateway (plan/build.py)."""
    return cidr.network_address + 1


def pod_capacity(cidr: IPv4Network) -> int:
    """Pods that fit in a node's block: minus network (.0, flannel.1), cni0 (.1) and broadcast."""
    return cidr.num_addresses - 3


def _free_hosts(net: IPv4Network, first_offset: int, used: set[int]) -> Iterator[IPv4Address]:
    """Host addresses of ``net`` from ``first_offset`` up, skipping ``used`` (addresses as integers)."""
    last = int(net.broadcast_address) - 1
    for value in range(int(net.network_address) + first_offset, last + 1):
        if value not in used:
            yield IPv4Address(value)


def _ints(addresses) -> set[int]:
    return {int(a) for a in addresses}


def allocate(topo: Topology, held: Held | None = None) -> tuple[Addressing, list[tuple[Loc, str]]]:
    """Assign every address; returns the addressing and located problems.

    Explicit addresses (and nodePorts) are checked and taken first, then what a running lab's
    nodes, pods and Services hold (``held``), then the rest are handed out in
    file order from the lowest free one, so adding an explicit address never
    moves another explicit one. ``held`` never adds a problem: a topology is
    valid or not whether its lab runs or not.
    """
    out: list[tuple[Loc, str]] = []
    addr = Addressing()
    held = held or Held()
    _node_ips(topo, addr, out, held)
    _node_pod_cidrs(topo, addr, out, held)
    _pod_ips(topo, addr, out, held)
    _service_ips(topo, addr, out, held)
    _internet_ips(topo, addr, out, held)
    _node_ports(topo, addr, held)
    return addr, out


def _node_ports(topo: Topology, addr: Addressing, held: Held) -> None:
    """nodePorts and healthCheckNodePorts (model/nodeports.py): a running Service keeps its own, as the API server
    keeps an allocated port for the Service's life (a port's by its name), unless another Service now declares it."""
    ports = nodeports.allocate(topo, held.node_ports, held.health_checks, held.older_node_ports,
                               running=held.services.keys())
    addr.node_port, addr.health_check_port = ports.ports, ports.checks
    addr.displaced += [Displaced(*taken) for taken in ports.taken]


def _node_ips(topo: Topology, addr: Addressing, out: list, held: Held) -> None:
    """Node IPs on the underlay; its first address is its router (see underlay_gateway). A running node keeps
    its own (a node's InternalIP does not change)."""
    underlay = topo.network.underlay.cidr
    addr.gateway_underlay_ip = underlay_gateway(underlay)
    used: dict[IPv4Address, str] = {addr.gateway_underlay_ip: "the lab's gateway (first address of the underlay)"}
    for i, node in enumerate(topo.nodes):
        if node.ip is None:
            continue
        loc = ("nodes", i, "ip")
        if node.ip not in underlay or node.ip in (underlay.network_address, underlay.broadcast_address):
            out.append((loc, f"{node.ip} is not a host address of the underlay {underlay} "
                             "(network.underlay.cidr); pick one inside it or leave ip: out"))
        elif node.ip in used:
            out.append((loc, f"{node.ip} is already used by {used[node.ip]}; pick another or leave ip: out"))
        else:
            used[node.ip] = f"node {node.name!r}"
            addr.node_ip[node.name] = node.ip
    # Every node's eth0 is a port of the underlay bridge, and so is the internet gateway's.
    limit = BRIDGE_PORT_LIMIT - (1 if topo.internet else 0)
    if len(topo.nodes) > limit:
        out.append((("nodes",), f"{len(topo.nodes)} nodes, but the underlay bridge has room for {limit} "
                                f"(it takes {BRIDGE_PORT_LIMIT} ports); use fewer nodes"))
        return
    pinned = {n.ip: f"node {n.name} asks for (ip:)" for n in topo.nodes
              if n.ip is not None and addr.node_ip.get(n.name) == n.ip}
    for node in topo.nodes:
        was = held.nodes.get(node.name)
        if node.ip is not None or was is None:
            continue
        usable = was.ip in underlay and was.ip != underlay.broadcast_address  # network and gateway are in used
        _keep_held(addr, addr.node_ip, used, pinned, f"node {node.name}", "node_ip", node.name, was.ip, usable,
                   f"node {node.name!r}")
    free = _free_hosts(underlay, 2, _ints(used))
    for i, node in enumerate(topo.nodes):
        if node.ip is None and node.name not in addr.node_ip:
            ip = next(free, None)
            if ip is None:
                out.append((("nodes", i), f"no free address left in the underlay {underlay}; "
                                          "widen network.underlay.cidr"))
                break
            addr.node_ip[node.name] = ip


def _node_pod_cidrs(topo: Topology, addr: Addressing, out: list, held: Held) -> None:
    """One /nodeMask block per node, inside the cluster podCIDR. A running node keeps its own, as the node IPAM
    controller's range allocator does (a node's spec.podCIDR never changes)."""
    cluster = topo.cluster.pod_cidr
    mask = topo.cluster.node_mask
    taken: dict[IPv4Network, str] = {}
    for i, node in enumerate(topo.nodes):
        if node.pod_cidr is None:
            continue
        loc = ("nodes", i, "podCIDR")
        if not node.pod_cidr.subnet_of(cluster):
            out.append((loc, f"{node.pod_cidr} is not inside cluster.podCIDR {cluster}; "
                             "pick a block inside it or leave podCIDR out"))
        elif node.pod_cidr.prefixlen != mask:
            out.append((loc, f"{node.pod_cidr} is a /{node.pod_cidr.prefixlen}; node blocks are "
                             f"/{mask} (cluster.nodeMask), so change one of them"))
        elif node.pod_cidr in taken:  # same prefix length: overlapping means equal
            out.append((loc, f"{node.pod_cidr} is already the pod CIDR of {taken[node.pod_cidr]}; "
                             "pick another or leave podCIDR out"))
        else:
            taken[node.pod_cidr] = f"node {node.name!r}"
            addr.node_pod_cidr[node.name] = node.pod_cidr
    pinned = {n.pod_cidr: f"node {n.name} asks for (podCIDR:)" for n in topo.nodes
              if n.pod_cidr is not None and addr.node_pod_cidr.get(n.name) == n.pod_cidr}
    for node in topo.nodes:
        was = held.nodes.get(node.name)
        if node.pod_cidr is not None or was is None:
            continue
        usable = was.pod_cidr.prefixlen == mask and was.pod_cidr.subnet_of(cluster)
        _keep_held(addr, addr.node_pod_cidr, taken, pinned, f"node {node.name}", "node_pod_cidr", node.name,
                   was.pod_cidr, usable, f"node {node.name!r}")
    blocks = (b for b in cluster.subnets(new_prefix=mask) if b not in taken)
    for i, node in enumerate(topo.nodes):
        if node.pod_cidr is None and node.name not in addr.node_pod_cidr:
            block = next(blocks, None)
            if block is None:
                out.append((("nodes", i), f"cluster.podCIDR {cluster} has no free /{mask} left for this node; "
                                          "widen cluster.podCIDR or raise cluster.nodeMask"))
                break
            addr.node_pod_cidr[node.name] = block


def _pod_ips(topo: Topology, addr: Addressing, out: list, held: Held) -> None:
    """Pod IPs inside their node's block: .0 is flannel.1's, .1 is cni0's, like host-local from .2."""
    pod_used: dict[IPv4Address, str] = {}
    for i, pod in enumerate(topo.pods):
        block = addr.node_pod_cidr.get(pod.node)
        if pod.ip is None:
            continue
        loc = ("pods", i, "ip")
        if block is None:
            # Its node has no block (its podCIDR is wrong, said there; or no such node): whether the address
            # fits is judged once it has one, but two pods asking for one address clash in any block.
            if pod.ip in pod_used:
                out.append((loc, f"{pod.ip} is already used by {pod_used[pod.ip]}; pick another or leave ip: out"))
            else:
                pod_used[pod.ip] = f"pod {pod.name!r}"
        elif pod.ip not in block:
            out.append((loc, f"{pod.ip} is not in the pod CIDR of node {pod.node!r} ({block}); "
                             "pick an address inside it or leave ip: out"))
        elif pod.ip in (block.network_address, block.network_address + 1, block.broadcast_address):
            out.append((loc, f"{pod.ip} is reserved in {block} (.0 overlay, .1 cni0 gateway, broadcast); "
                             "use .2 or above"))
        elif pod.ip in pod_used:
            out.append((loc, f"{pod.ip} is already used by {pod_used[pod.ip]}; pick another or leave ip: out"))
        else:
            pod_used[pod.ip] = f"pod {pod.name!r}"
            addr.pod_ip[pod.name] = pod.ip
    counts: dict[str, int] = {}
    totals: dict[str, int] = {}
    for pod in topo.pods:
        totals[pod.node] = totals.get(pod.node, 0) + 1
    limits = {n: min(pod_capacity(b), BRIDGE_PORT_LIMIT) for n, b in addr.node_pod_cidr.items()}
    full: set[str] = set()
    for i, pod in enumerate(topo.pods):
        block = addr.node_pod_cidr.get(pod.node)
        if block is None:
            continue
        counts[pod.node] = counts.get(pod.node, 0) + 1
        limit = limits[pod.node]
        if counts[pod.node] == limit + 1:  # report once, at the first pod that does not fit
            total = totals[pod.node]
            if limit == pod_capacity(block):
                why = (f"its pod CIDR {block} holds {limit}; lower cluster.nodeMask or spread the pods "
                       "over more nodes")
            else:
                why = f"its cni0 bridge takes at most {BRIDGE_PORT_LIMIT} ports; spread the pods over more nodes"
            out.append((("pods", i, "node"), f"{total} pods on node {pod.node!r}, but {why}"))
            full.add(pod.node)
    pinned = {p.ip: f"pod {p.name} asks for (ip:)" for p in topo.pods
              if p.ip is not None and addr.pod_ip.get(p.name) == p.ip}
    for name, ip in held.cni_leases.items():  # a removed pod whose CNI DEL failed: host-local keeps its lease
        if name not in {p.name for p in topo.pods}:
            pod_used.setdefault(ip, f"removed pod {name!r} (its CNI DEL has not succeeded: its lease is kept)")
    for pod in topo.pods:  # a running pod keeps its lease, as host-local does, while it is the same pod
        was = held.pods.get(pod.name)
        block = addr.node_pod_cidr.get(pod.node)
        if pod.ip is not None or was is None or block is None or pod.node in full:
            continue
        if (was.namespace, was.node, was.node_cidr) != (pod.namespace, pod.node, block) or was.ip not in block:
            continue  # another pod of that name, or one Kubernetes makes anew: moved, or its node's block changed
        _keep_held(addr, addr.pod_ip, pod_used, pinned, f"pod {pod.name}", "pod_ip", pod.name, was.ip, True,
                   f"pod {pod.name!r}")
    used = _ints(pod_used)
    free_by_node = {n: _free_hosts(b, 2, used) for n, b in addr.node_pod_cidr.items() if n not in full}
    for pod in topo.pods:
        if pod.ip is None and pod.name not in addr.pod_ip and pod.node in free_by_node:
            ip = next(free_by_node[pod.node], None)
            if ip is not None:
                addr.pod_ip[pod.name] = ip


def _service_ips(topo: Topology, addr: Addressing, out: list, held: Held) -> None:
    """ClusterIPs: .1 is the "kubernetes" Service in a real cluster; allocation starts at .10."""
    scidr = topo.cluster.service_cidr
    api_ip = scidr.network_address + 1
    svc_used: dict[IPv4Address, str] = {}
    for i, svc in enumerate(topo.services):
        if not isinstance(svc.cluster_ip, IPv4Address):  # allocated below, or headless (none)
            continue
        loc = ("services", i, "clusterIP")
        if svc.cluster_ip not in scidr or svc.cluster_ip in (scidr.network_address, scidr.broadcast_address):
            out.append((loc, f"{svc.cluster_ip} is not a host address of cluster.serviceCIDR {scidr}; "
                             "pick one inside it or leave clusterIP out"))
        elif svc.cluster_ip == api_ip and (svc.namespace, svc.name) != ("default", "kubernetes"):
            # The API server's own Service holds it in every cluster, from the start: asked for later, the
            # allocator refuses it ("provided IP is already allocated").
            out.append((loc, f"{svc.cluster_ip} is allocated to the API server's Service default/kubernetes, "
                             "which every cluster gives the first address of cluster.serviceCIDR (a cluster refuses "
                             "it: provided IP is already allocated); pick another or leave clusterIP out"))
        elif svc.cluster_ip in svc_used:
            out.append((loc, f"{svc.cluster_ip} is already used by {svc_used[svc.cluster_ip]}; "
                             "pick another or leave clusterIP out"))
        else:
            svc_used[svc.cluster_ip] = f"service {svc.name!r}"
            addr.service_ip[(svc.namespace, svc.name)] = svc.cluster_ip
    pinned = {s.cluster_ip: f"service {s.namespace}/{s.name} asks for (clusterIP:)" for s in topo.services
              if isinstance(s.cluster_ip, IPv4Address) and addr.service_ip.get((s.namespace, s.name)) == s.cluster_ip}
    for svc in topo.services:  # the API server keeps a Service's ClusterIP while the Service exists
        key = (svc.namespace, svc.name)
        was = held.services.get(key)
        if svc.cluster_ip is not None or was is None:
            continue
        usable = was in scidr and was not in (scidr.network_address, scidr.broadcast_address, api_ip)
        _keep_held(addr, addr.service_ip, svc_used, pinned, f"service {svc.namespace}/{svc.name}", "service_ip", key,
                   was, usable, f"service {svc.name!r}")
    free_svc = _free_hosts(scidr, 10, _ints(svc_used))
    for i, svc in enumerate(topo.services):
        if svc.cluster_ip is None and (svc.namespace, svc.name) not in addr.service_ip:
            ip = next(free_svc, None)
            if ip is None:
                out.append((("services", i), f"cluster.serviceCIDR {scidr} has no free address left; widen it"))
                break
            addr.service_ip[(svc.namespace, svc.name)] = ip


def _internet_ips(topo: Topology, addr: Addressing, out: list, held: Held) -> None:
    """The simulated internet: gateway and hosts explicit; load balancer IPs explicit or allocated.

    A LoadBalancer without ``loadBalancerIP`` keeps the one it holds in a running lab (as a cloud's load
    balancer keeps its IP while the Service exists), else gets the highest free host address of internet.cidr,
    in file order (hosts are usually numbered from the bottom, so pools from the top rarely move when hosts are
    added).
    """
    if not topo.internet:
        return
    inet = topo.internet.cidr
    seen: dict[IPv4Address, str] = {}
    hosts = [(("internet", "gateway", "ip"), "the internet gateway", topo.internet.gateway.ip)]
    hosts += [(("internet", "hosts", i, "ip"), f"host {h.name!r}", h.ip) for i, h in enumerate(topo.internet.hosts)]
    hosts += [(("services", i, "loadBalancerIP"), f"service {s.name!r}", s.load_balancer_ip)
              for i, s in enumerate(topo.services) if s.load_balancer_ip is not None]
    takers = {hosts[0][0]: "the internet gateway has (internet.gateway.ip)"}
    takers.update({("internet", "hosts", i, "ip"): f"host {h.name} asks for (ip:)"
                   for i, h in enumerate(topo.internet.hosts)})
    takers.update({("services", i, "loadBalancerIP"): f"service {s.namespace}/{s.name} asks for (loadBalancerIP:)"
                   for i, s in enumerate(topo.services)})
    pinned: dict[IPv4Address, str] = {}
    for loc, who, ip in hosts:
        if ip not in inet or ip in (inet.network_address, inet.broadcast_address):
            if loc == hosts[0][0] and not topo.internet.written("gateway", "ip"):  # said at what was written
                out.append((("internet", "cidr"), f"{inet} does not hold the gateway's default address {ip}; "
                                                  "set internet.gateway.ip to a host address of it"))
            else:
                out.append((loc, f"{ip} is not a host address of internet.cidr {inet}; pick one inside it"))
        elif ip in seen:
            out.append((loc, f"{ip} is already used by {seen[ip]}; pick another"))
        else:
            seen[ip] = who
            pinned[ip] = takers[loc]
    lbs = [(i, s) for i, s in enumerate(topo.services) if s.type == "LoadBalancer"]
    kept: dict[tuple[str, str], IPv4Address] = {}
    for _, svc in lbs:
        key = (svc.namespace, svc.name)
        was = held.load_balancers.get(key)
        if svc.load_balancer_ip is not None or was is None:
            continue
        usable = was in inet and was not in (inet.network_address, inet.broadcast_address)
        _keep_held(addr, kept, seen, pinned, f"service {svc.namespace}/{svc.name}'s load balancer", "lb_ip", key, was,
                   usable, f"service {svc.name!r}")
    # The internet's switch (a bridge in the gateway) has a port per host.
    if len(topo.internet.hosts) > BRIDGE_PORT_LIMIT:
        out.append((("internet", "hosts"), f"{len(topo.internet.hosts)} internet hosts, but the internet's bridge "
                                           f"takes at most {BRIDGE_PORT_LIMIT} ports; use fewer hosts"))
    free = (IPv4Address(v) for v in range(int(inet.broadcast_address) - 1, int(inet.network_address), -1)
            if IPv4Address(v) not in seen)
    for i, svc in lbs:
        ip = svc.load_balancer_ip or kept.get((svc.namespace, svc.name)) or next(free, None)
        if ip is None:
            out.append((("services", i), f"internet.cidr {inet} has no free address left for this LoadBalancer "
                                         "(the gateway, the hosts and the other load balancer IPs take them all); "
                                         "widen internet.cidr or give loadBalancerIP"))
            break
        addr.lb_ip[(svc.namespace, svc.name)] = ip

