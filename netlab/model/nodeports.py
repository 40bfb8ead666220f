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
A running lab's Service keeps the ones it was given, as the API server carries
them over an update (patchAllocatedValues): a port that declares none takes the
one its Service's port of the same *name* held ("" for the one unnamed port of a
single-port Service), whatever its number and protocol now, unless the Service
declares that one for a port; its healthCheckNodePort while it stays a Local
LoadBalancer. So a Service added anywhere in the file moves none, a port
renumbered keeps its own, and a port renamed gets a new one. One that another
Service now declares goes to that one (the file is what the lab must be, where
the API server would refuse the newcomer: "provided port is already
allocated"), and the holder gets a new one; one the lab's VXLAN port now is
goes too, and so does one the Service no longer has (its type ClusterIP, no
longer Local, no port of that name): ``up`` says each (Lab.displaced). A port
an update gave up is not handed out again in that update, as the API server
releases them after it allocates; and a port added to a running Service gets one
of its own, as the update's updateNodePorts gives it, where a Service made with
both ports shares one among its ports of one number (svcPortToNodePort); so does
every port of a running ClusterIP Service turned NodePort or LoadBalancer, which
is an update too (txnUpdateNodePorts), not a creation.

A LoadBalancer Service with externalTrafficPolicy Local also gets a
healthCheckNodePort from the same allocator, after its nodePorts (the API
server's allocHealthCheckNodePort): the port where a load balancer asks each
node whether it has an endpoint of the Service.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Collection, Mapping

from netlab.model.location import Loc, format_path
from netlab.model.fields import NODE_PORT_RANGE
from netlab.model.topology import Service, ServicePort, Topology

# (namespace, name, port, protocol) of a Service port
PortKey = tuple[str, str, int, str]
# (namespace, name, port name) of a Service port: what a running one keeps its nodePort by ("": the one unnamed port
# of a single-port Service)
NamedKey = tuple[str, str, str]


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


def named(topo: Topology, by_number: Mapping[PortKey, int]) -> dict[NamedKey, int]:
    """An older netlab's held nodePorts (keyed by port number and protocol) keyed by the name of ``topo``'s port of
    that number and protocol; one ``topo`` has no such port of is none held."""
    names = {(s.namespace, s.name, p.port, p.protocol): p.name or "" for s in topo.services for p in s.ports}
    return {(key[0], key[1], names[key]): np for key, np in by_number.items() if key in names}


@dataclass
class NodePorts:
    """Every nodePort and healthCheckNodePort of a lab, and what a running Service gave up."""

    ports: dict[PortKey, int] = field(default_factory=dict)
    checks: dict[tuple[str, str], int] = field(default_factory=dict)  # healthCheckNodePort, keyed (namespace, name)
    # (who, "node_port" or "health_check_port", its key, the port it held, why it lost it: "service x asks for
    # (nodePort:)", "is now the lab's VXLAN port ..."): it gets a new one (its key's), or none (a key it has no more)
    taken: list[tuple[str, str, PortKey | NamedKey | tuple[str, str], int, str]] = field(default_factory=list)


def port_words(p: ServicePort) -> str:
    """A Service port as a line names it: ``port 80/TCP``, ``port http (80/TCP)``."""
    return f"port {p.port}/{p.protocol}" if p.name is None else f"port {p.name} ({p.port}/{p.protocol})"


def allocate(topo: Topology, held_ports: Mapping[NamedKey, int] | None = None,
             held_checks: Mapping[tuple[str, str], int] | None = None,
             older_ports: Mapping[PortKey, int] | None = None,
             running: Collection[tuple[str, str]] = ()) -> NodePorts:
    """nodePort of every port of the NodePort/LoadBalancer Services, keyed (namespace, name, port, protocol), and
    healthCheckNodePort of every LoadBalancer with externalTrafficPolicy Local. Declared ones first; then a
    running Service's (``held_*``: its last up's) it keeps, as the API server keeps an allocated port over an update
    (patchAllocatedValues): a port that declares none takes the one its Service's port of the same name held,
    whatever its number and protocol now, unless a Service declares it (then it is ``taken`` and the port gets a new
    one) or the file no longer allows it; then the rest, lowest free first, in file order. ``older_ports``: an
    older netlab's held ones, by port number and protocol (:func:`named` by this file's ports). ``running``: the
    Services (namespace, name) the running lab has, whatever their type: an update of one, not a creation."""
    held_ports = {**named(topo, older_ports or {}), **(held_ports or {})}
    held_checks = held_checks or {}
    declared = reserved(topo)
    pinned = {p.node_port: f"service {_ref(s)} asks for (nodePort:)" for s in topo.services if has_node_ports(s)
              for p in s.ports if p.node_port is not None}
    pinned.update({s.health_check_node_port: f"service {_ref(s)} asks for (healthCheckNodePort:)"
                   for s in topo.services if s.needs_health_check and s.health_check_node_port is not None})
    out = NodePorts()
    owner: dict[int, tuple[str, str]] = {}  # kept port -> its Service
    kept: dict[tuple[str, str, str | None], int] = {}  # (namespace, name, port name; None: its check) -> kept port
    for svc in topo.services:
        if not has_node_ports(svc):
            continue
        ref, mine = (svc.namespace, svc.name), f"service {_ref(svc)}"
        protos: dict[tuple[int, str], str] = {}  # (kept port, protocol) -> the port of this Service that has it
        for p in svc.ports:
            was = held_ports.get((*ref, p.name or "")) if p.node_port is None else None
            if was is None:
                continue
            why = _lost(was, pinned, declared, owner, ref) or protos.get((was, p.protocol))
            if why is None:
                owner[was], kept[(*ref, p.name or "")] = ref, was
                protos[(was, p.protocol)] = f"its {port_words(p)} keeps for {p.protocol}"
            else:
                out.taken.append((f"{mine}'s {port_words(p)}", "node_port", (*ref, p.port, p.protocol), was, why))
        was = held_checks.get(ref)
        if svc.needs_health_check and svc.health_check_node_port is None and was is not None:
            why = _lost(was, pinned, declared, owner, ref, check=True)
            if why is None:
                owner[was], kept[(*ref, None)] = ref, was
            else:
                out.taken.append((mine, "health_check_port", ref, was, why))
    out.taken += _given_up(topo, held_ports, held_checks)
    # A Service's update allocates its new ports before it releases its old ones: none gets one it gave up now
    updated = {(s.namespace, s.name) for s in topo.services}
    avoid = {np for k, np in [*held_ports.items(), *held_checks.items()] if (k[0], k[1]) in updated}
    running = {(k[0], k[1]) for k in [*held_ports, *held_checks]} | set(running)
    free = (n for n in range(NODE_PORT_RANGE[0], NODE_PORT_RANGE[1] + 1)
            if n not in declared and n not in owner and n not in avoid)
    for svc in topo.services:
        if not has_node_ports(svc):
            continue
        # the API server's svcPortToNodePort: a Service's ports of one number share one as it is made; an update of
        # a running one gives each port without one a new one (updateNodePorts), a ClusterIP one turned NodePort too
        sharing = (svc.namespace, svc.name) not in running
        by_number: dict[int, int] = {}
        used = {(np, p.protocol) for p in svc.ports
                for np in [p.node_port or kept.get((svc.namespace, svc.name, p.name or ""))] if np}
        for port in svc.ports:
            np = port.node_port or kept.get((svc.namespace, svc.name, port.name or ""))
            if np is None:
                shared = (by_number.get(port.port) or _requested(svc, port.port)) if sharing else None
                np = shared if shared is not None and (shared, port.protocol) not in used else next(free, None)
            if np is None:  # the range is used up: check_topology says so
                continue
            by_number.setdefault(port.port, np)
            used.add((np, port.protocol))
            out.ports[(svc.namespace, svc.name, port.port, port.protocol)] = np
        if svc.needs_health_check:
            hc = svc.health_check_node_port or kept.get((svc.namespace, svc.name, None)) or next(free, None)
            if hc is not None:
                out.checks[(svc.namespace, svc.name)] = hc
    return out


def _lost(was: int, pinned: Mapping[int, str], declared: set[int], owner: Mapping[int, tuple[str, str]],
          ref: tuple[str, str], check: bool = False) -> str | None:
    """Why a held port of Service ``ref`` cannot be kept (None: it can): a Service declares it, it is the VXLAN
    port, it is out of the range, or another Service keeps it (or one of its own ports, for its ``check``)."""
    if was in pinned:
        return pinned[was]
    if not _in_range(was):
        return f"is outside the nodePort range {NODE_PORT_RANGE[0]}-{NODE_PORT_RANGE[1]}"
    if was in declared:  # not a Service's: the VXLAN port
        return "is now the lab's VXLAN port (network.vxlan.port)"
    if was in owner and (check or owner[was] != ref):
        return "a port of it keeps" if owner[was] == ref else f"service {'/'.join(owner[was])} keeps"
    return None


def _given_up(topo: Topology, held_ports: Mapping[NamedKey, int], held_checks: Mapping[tuple[str, str], int]) \
        -> list[tuple[str, str, NamedKey | tuple[str, str], int, str]]:
    """The held ports a Service still in the file has no more: its type is ClusterIP now, it is no longer a Local
    LoadBalancer (its healthCheckNodePort), or no port of it has the name now (renamed, or removed)."""
    out: list[tuple[str, str, NamedKey | tuple[str, str], int, str]] = []
    services = {(s.namespace, s.name): s for s in topo.services}
    for (ns, name, port_name), was in held_ports.items():
        svc = services.get((ns, name))
        port = next((p for p in svc.ports if (p.name or "") == port_name), None) if svc is not None else None
        who = f"service {ns}/{name}'s " + (port_words(port) if port is not None
                                           else f"port {port_name}" if port_name else "unnamed port")
        if svc is not None and not has_node_ports(svc):
            out.append((who, "node_port", (ns, name, port_name), was, f"it gives up as its type is now {svc.type}"))
        elif svc is not None and port is None:
            out.append((who, "node_port", (ns, name, port_name), was,
                        f"it gives up as no port of it is {f'named {port_name}' if port_name else 'unnamed'} now "
                        "(a nodePort stays with its port's name)"))
    for (ns, name), was in held_checks.items():
        svc = services.get((ns, name))
        if svc is not None and not svc.needs_health_check:
            why = (f"its type is now {svc.type}" if not has_node_ports(svc)
                   else "it is no longer a LoadBalancer with externalTrafficPolicy Local")
            out.append((f"service {ns}/{name}", "health_check_port", (ns, name), was, f"it gives up as {why}"))
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
