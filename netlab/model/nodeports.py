"""nodePorts: which ones a topology may declare, and which the others get.

A nodePort is a port number on every node (kube-proxy DNATs it to the Service's
endpoints, matching the protocol too). The API server hands them out from one
allocator of port *numbers* for the whole cluster (--service-node-port-range,
30000-32767), so the rules are the API server's:

- validation refuses one nodePort twice for one protocol within a Service
  (``spec.ports[1].nodePort: Duplicate value``);
- the allocator lets one nodePort serve only the ports of one Service that share
  a port number (its TCP and its UDP port 53, say: kube-proxy tells them apart by
  protocol), and refuses it anywhere else, whatever the protocols, in that
  Service or any other (``provided port is already allocated``);
- a port left without a nodePort takes the one of its Service's port of the same
  number if that one has one (TCP and UDP 53 then share it), else a free one.

A lab is declarative, so the free ones are the lowest not declared anywhere (the
API server picks at random, and a later Service that declares one already handed
out is refused; a lab has no "later"), in file order, and never the VXLAN port:
kube-proxy's DNAT of that UDP port would take the overlay's own packets.
A running lab's Service keeps the ones it was given (its ports' by port number
and protocol, its health check's), as the API server keeps them for the
Service's life, so a Service added anywhere in the file moves none; one that
another Service now declares goes to that one (the file is what the lab must
be, where the API server would refuse the newcomer: "provided port is already
allocated"), and the holder gets a new one, which ``up`` says (Lab.displaced).

A LoadBalancer Service with externalTrafficPolicy Local also gets a
healthCheckNodePort from the same allocator, after its nodePorts (the API
server's allocHealthCheckNodePort): the port where a load balancer asks each
node whether it has an endpoint of the Service.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from netlab.model.location import Loc, format_path
from netlab.model.fields import NODE_PORT_RANGE
from netlab.model.topology import Service, Topology

# (namespace, name, port, protocol) of a Service port
PortKey = tuple[str, str, int, str]


def has_node_ports(svc: Service) -> bool:
    """NodePort and LoadBalancer Services get nodePorts (a lab's LoadBalancers always allocate them)."""
    return svc.type != "ClusterIP"


def reserved(topo: Topology) -> set[int]:
    """Port numbers the auto-allocation must skip: every declared nodePort and the VXLAN port."""
    out = {p.node_port for s in topo.services for p in s.ports if p.node_port is not None}
    out |= {s.health_check_node_port for s in topo.services if s.health_check_node_port is not None}
    if topo.network.mode == "vxlan":
        out.add(topo.network.vxlan.port)
    return out


def _requested(svc: Service, port: int) -> int | None:
    """The first nodePort declared for this port number in the Service (the API server's findRequestedNodePort)."""
    return next((p.node_port for p in svc.ports if p.port == port and p.node_port is not None), None)


@dataclass
class NodePorts:
    """Every nodePort and healthCheckNodePort of a lab, and what a running Service gave up to the file."""

    ports: dict[PortKey, int] = field(default_factory=dict)
    checks: dict[tuple[str, str], int] = field(default_factory=dict)  # healthCheckNodePort, keyed (namespace, name)
    # (who, "node_port" or "health_check_port", its key, the port it held, who asks for it): it gets a new one
    taken: list[tuple[str, str, PortKey | tuple[str, str], int, str]] = field(default_factory=list)


def allocate(topo: Topology, held_ports: Mapping[PortKey, int] | None = None,
             held_checks: Mapping[tuple[str, str], int] | None = None) -> NodePorts:
    """nodePort of every port of the NodePort/LoadBalancer Services, keyed (namespace, name, port, protocol), and
    healthCheckNodePort of every LoadBalancer with externalTrafficPolicy Local. Declared ones first; then a
    running Service's (``held_*``: its last up's) it keeps, as the API server keeps an allocated port for the
    Service's life, unless another Service declares it (then it is ``taken`` and the holder gets a new one) or
    the file no longer allows it; then the rest, lowest free first, in file order."""
    held_ports, held_checks = held_ports or {}, held_checks or {}
    declared = reserved(topo)
    pinned = {p.node_port: f"service {_ref(s)} asks for (nodePort:)" for s in topo.services if has_node_ports(s)
              for p in s.ports if p.node_port is not None}
    pinned.update({s.health_check_node_port: f"service {_ref(s)} asks for (healthCheckNodePort:)"
                   for s in topo.services if s.needs_health_check and s.health_check_node_port is not None})
    out = NodePorts()
    owner: dict[int, tuple[str, str, int | None]] = {}  # kept port -> (namespace, name, port number; None: check)
    kept: dict[tuple[str, str, int | None], int] = {}
    decided: set[tuple[str, str, int | None]] = set()
    for svc in topo.services:
        if not has_node_ports(svc):
            continue
        wants: list[tuple[int | None, PortKey | tuple[str, str], int | None]] = [
            (p.port, k, held_ports.get(k)) for p in svc.ports if _requested(svc, p.port) is None
            for k in [(svc.namespace, svc.name, p.port, p.protocol)]]
        if svc.needs_health_check and svc.health_check_node_port is None:
            wants.append((None, (svc.namespace, svc.name), held_checks.get((svc.namespace, svc.name))))
        for number, key, was in wants:  # the ports of one number share one nodePort: the first held one
            mine = (svc.namespace, svc.name, number)
            if was is None or mine in decided:
                continue
            decided.add(mine)
            if was in pinned:
                who, what = ((f"service {_ref(svc)}", "health_check_port") if number is None
                             else (f"service {_ref(svc)}'s port {number}/{key[-1]}", "node_port"))
                out.taken.append((who, what, key, was, pinned[was]))
            elif _in_range(was) and was not in declared and was not in owner:
                owner[was] = mine
                kept[mine] = was
    free = (n for n in range(NODE_PORT_RANGE[0], NODE_PORT_RANGE[1] + 1) if n not in declared and n not in owner)
    for svc in topo.services:
        if not has_node_ports(svc):
            continue
        by_number: dict[int, int] = {}  # the API server's svcPortToNodePort
        for port in svc.ports:
            np = port.node_port or by_number.get(port.port) or _requested(svc, port.port) \
                or kept.get((svc.namespace, svc.name, port.port)) or next(free, None)
            if np is None:  # the range is used up: check_topology says so
                continue
            by_number.setdefault(port.port, np)
            out.ports[(svc.namespace, svc.name, port.port, port.protocol)] = np
        if svc.needs_health_check:
            hc = svc.health_check_node_port or kept.get((svc.namespace, svc.name, None)) or next(free, None)
            if hc is not None:
                out.checks[(svc.namespace, svc.name)] = hc
    return out


def wanted(topo: Topology) -> int:
    """How many nodePorts the allocation must find: one per port number of a Service that declares none for it."""
    return sum(1 for s in topo.services if has_node_ports(s)
               for n in {p.port for p in s.ports} if _requested(s, n) is None) \
        + sum(1 for s in topo.services if s.needs_health_check and s.health_check_node_port is None)


def problems(topo: Topology) -> list[tuple[Loc, str]]:
    """The API server's refusals of declared nodePorts, each at the port that declares the second one."""
    out: list[tuple[Loc, str]] = []
    owner: dict[int, tuple[int, int]] = {}  # nodePort -> (service index, port index) that first allocated it
    for i, svc in enumerate(topo.services):
        if not has_node_ports(svc):  # a ClusterIP Service's nodePort is refused as such (checks.py)
            continue
        same_proto: dict[tuple[int, str], int] = {}
        for j, port in enumerate(svc.ports):
            if port.node_port is None:
                continue
            np, loc = port.node_port, ("services", i, "ports", j, "nodePort")
            if (np, port.protocol) in same_proto:  # validation: spec.ports[j].nodePort: Duplicate value
                out.append((loc, f"nodePort {np}/{port.protocol} is already used by "
                                 f"{_where(i, same_proto[(np, port.protocol)])}; pick another"))
                continue
            same_proto[(np, port.protocol)] = j
            # The allocator: the first port of a number allocates the nodePort requested for that number; a later
            # port of the number shares it, or allocates its own if it declares another.
            if np in owner and owner[np][0] == i and np == _requested(svc, port.port) \
                    and svc.ports[owner[np][1]].port == port.port:
                continue
            if np in owner:
                si, sj = owner[np]
                whose = "another port of this service" if si == i else f"service {_ref(topo.services[si])}"
                out.append((loc, f"nodePort {np} is already allocated to {whose} ({_where(si, sj)}); a nodePort "
                                 "belongs to one Service, where only its TCP and UDP ports of one number may share "
                                 "it; pick another"))
                continue
            owner[np] = (i, j)
            if topo.network.mode == "vxlan" and port.protocol == "UDP" and np == topo.network.vxlan.port:
                out.append((loc, f"nodePort {np}/UDP is the VXLAN port (network.vxlan.port) on every node; "
                                 "pick another"))
    for i, svc in enumerate(topo.services):
        hc, loc = svc.health_check_node_port, ("services", i, "healthCheckNodePort")
        if hc is None:
            continue
        if not svc.needs_health_check:  # the API server's validation of spec.healthCheckNodePort
            out.append((loc, "healthCheckNodePort needs type LoadBalancer and externalTrafficPolicy Local; "
                             "set them or remove healthCheckNodePort"))
        elif hc in owner:
            si, sj = owner[hc]
            out.append((loc, f"healthCheckNodePort {hc} is already allocated to service "
                             f"{_ref(topo.services[si])} ({_where(si, sj)}); pick another"))
        elif hc in {s.health_check_node_port for s in topo.services[:i]}:
            out.append((loc, f"healthCheckNodePort {hc} is already allocated to another service's health check; "
                             "pick another"))
    need = wanted(topo)
    free = NODE_PORT_RANGE[1] - NODE_PORT_RANGE[0] + 1 - len({n for n in reserved(topo) if _in_range(n)})
    if need > free:
        out.append((("services",), f"{need} Service ports need a nodePort, but only {free} of "
                                   f"{NODE_PORT_RANGE[0]}-{NODE_PORT_RANGE[1]} are free; use fewer NodePort or "
                                   "LoadBalancer Services"))
    return out


def _where(i: int, j: int) -> str:
    return format_path(("services", i, "ports", j))


def _in_range(n: int) -> bool:
    return NODE_PORT_RANGE[0] <= n <= NODE_PORT_RANGE[1]


def _ref(svc: Service) -> str:
    return f"{svc.namespace}/{svc.name}"
