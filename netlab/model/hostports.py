"""A container port's ``hostPort``: a port on the pod's node that leads to the pod, as Kubernetes has it.

The kubelet hands a pod's host ports to the runtime, and containerd's CRI
plugin hands them to the CNI plugins that declare the ``portMappings``
capability (``toCNIPortMappings``): one entry per container port with a
hostPort, the protocol in lower case, and the hostIP as written ("" when none)::

    runtimeConfig.portMappings: [{"hostPort": 8081, "containerPort": 8080, "protocol": "tcp", "hostIP": ""}]

The portmap plugin then DNATs <node address>:hostPort to the pod (its
CNI-HOSTPORT-DNAT chain in the node's nat table). Nothing else maps them: a
node whose plugins do not declare the capability ignores hostPort (a known
Kubernetes surprise). netlab's builtin pod network plays the portmap of its
nodes' 10-flannel.conflist (plan/portmap_rules.py); it refuses hostPort where
no plugin would get it: the reference list (Debian's bridge as Flannel
delegates to it, without the portmap after it) and a conflist whose plugins do
not declare ``portMappings`` (netlab.model.load). Pure.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Any

from netlab.model.fields import KUBE_PROXY_HEALTHZ_PORT
from netlab.model.location import Loc
from netlab.model.topology import Pod, Topology

CAPABILITY = "portMappings"
ANY = IPv4Address("0.0.0.0")  # hostIP absent or 0.0.0.0: every address of the node
LOOPBACK = IPv4Network("127.0.0.0/8")  # every node's lo (the kernel's local route for all of it)


def port_mappings(pod: Pod) -> list[dict[str, Any]]:
    """``runtimeConfig.portMappings`` of a pod, in container and port order, as containerd builds it."""
    return [{"hostPort": p.host_port, "containerPort": p.container_port, "protocol": p.protocol.lower(),
             "hostIP": str(p.host_ip) if p.host_ip is not None else ""}
            for c in pod.containers for p in c.ports if p.host_port is not None]


def declares(plugins: Any) -> bool:
    """Whether a conflist's plugins (a list of objects) declare the portMappings capability."""
    return any(isinstance(p, dict) and isinstance(p.get("capabilities"), dict)
               and p["capabilities"].get(CAPABILITY) is True for p in plugins)


def first_host_port(topo: Topology) -> Loc | None:
    """Where the topology's first hostPort is, for a conflist that does not declare the capability."""
    return next((("pods", i, "containers", j, "ports", k, "hostPort") for i, pod in enumerate(topo.pods)
                 for j, c in enumerate(pod.containers) for k, p in enumerate(c.ports) if p.host_port is not None),
                None)


def check_host_ports(topo: Topology) -> list[tuple[Loc, str]]:
    """hostIP only with a hostPort, and only an address of the pod's node; hostPort only where a CNI plugin gets
    it; no two of one node's pods on one hostPort, protocol and address (the scheduler's NodePorts filter: 0.0.0.0
    overlaps every address)."""
    out: list[tuple[Loc, str]] = []
    taken: dict[tuple[str, int, str], list[tuple[IPv4Address, str]]] = {}
    cni = topo.network.cni
    for i, pod in enumerate(topo.pods):
        for j, c in enumerate(pod.containers):
            for k, p in enumerate(c.ports):
                loc: Loc = ("pods", i, "containers", j, "ports", k)
                if p.host_port is None:
                    if p.host_ip is not None:
                        out.append((loc + ("hostIP",), "hostIP names the node address of a hostPort; give "
                                                       "hostPort too, or remove hostIP"))
                    continue
                if p.host_port == KUBE_PROXY_HEALTHZ_PORT and p.protocol == "TCP":
                    out.append((loc + ("hostPort",),
                                f"hostPort {p.host_port}/TCP is kube-proxy's health port on every node "
                                f"(healthzBindAddress 0.0.0.0:{KUBE_PROXY_HEALTHZ_PORT}: /healthz, which load "
                                "balancers ask, and /livez); portmap would DNAT those checks to the pod: pick another"))
                    continue
                if topo.network.mode == "vxlan" and p.protocol == "UDP" and p.host_port == topo.network.vxlan.port:
                    out.append((loc + ("hostPort",),
                                f"hostPort {p.host_port}/UDP is the VXLAN port (network.vxlan.port) of node "
                                f"{pod.node!r}: portmap would DNAT the overlay's own packets to the pod; pick another"))
                    continue
                if cni == "reference":
                    out.append((loc + ("hostPort",),
                                "hostPort needs a CNI plugin with the portMappings capability (portmap), and "
                                "network.cni reference runs Debian's bridge alone; use network.cni builtin (which "
                                "writes portmap's rules) or {conflist: FILE} with portmap"))
                    continue
                not_its = _not_the_nodes(topo, pod, p.host_ip)
                if not_its:
                    out.append((loc + ("hostIP",), not_its))
                addr = p.host_ip if p.host_ip is not None else ANY
                key = (pod.node, p.host_port, p.protocol)
                other = next((who for a, who in taken.get(key, []) if ANY in (a, addr) or a == addr), None)
                if other is not None:
                    out.append((loc + ("hostPort",),
                                f"hostPort {p.host_port}/{p.protocol} on node {pod.node!r} is already taken by "
                                f"pod {other!r}; one node's pods cannot share a host port"))
                taken.setdefault(key, []).append((addr, pod.name))
    return out


def _not_the_nodes(topo: Topology, pod: Pod, host_ip: IPv4Address | None) -> str | None:
    """Why ``host_ip`` is not an address of the pod's node, or None. kubelet and portmap take any hostIP and DNAT
    <hostIP>:hostPort in the node's nat table; a packet for the node meets it only at one of the node's own
    addresses: its ip (the one it is sure to have only when pinned: an allocated one may move with the file and
    what a running lab holds) and loopback; 0.0.0.0 is every one of them."""
    node = next((n for n in topo.nodes if n.name == pod.node), None)
    if host_ip is None or host_ip == ANY or host_ip in LOOPBACK or node is None or host_ip == node.ip:
        return None
    way = "or use 0.0.0.0 (every address of the node) or remove hostIP"
    if node.ip is None:
        return (f"hostIP {host_ip} is not an address of node {node.name!r} (its ip is allocated, so no address is "
                f"sure to be its own but loopback); pin the node's ip: to the address, {way}")
    return (f"hostIP {host_ip} is not an address of node {node.name!r} ({node.ip}, loopback); portmap would DNAT "
            f"packets that never come: use {node.ip}, {way.removeprefix('or use ')}")


def served_by(topo: Topology, node: str, port: int | None, protocol: str, address: str) -> list[tuple[str, int]]:
    """(pod, container port) of ``node``'s pods whose hostPort ``port``/``protocol`` takes a packet for the node's
    ``address``: portmap DNATs it to that pod and port in the node's PREROUTING (OUTPUT for the node's own), as
    kube-proxy does a nodePort's, so it is the pod's ingress a NetworkPolicy judges there. A hostIP of 0.0.0.0 (or
    none) is every address of the node."""
    if port is None:
        return []
    return [(pod.name, p.container_port) for pod in topo.pods if pod.node == node for c in pod.containers
            for p in c.ports if p.host_port == port and p.protocol.upper() == protocol.upper()
            and (p.host_ip is None or p.host_ip == ANY or str(p.host_ip) == address)]
