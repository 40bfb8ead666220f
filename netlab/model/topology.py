"""The topology: what a user writes, as typed, frozen pydantic models.

Field names follow Kubernetes spelling (``podCIDR``, ``containerPort``,
``clusterIP``) because users, docs and tests depend on them. Every model
forbids unknown keys. Scalars are strict: YAML's ``no`` is a boolean and is not
accepted where a name is expected, ``"8080"`` is not a port.

Cross-field rules (references, overlaps, duplicates, address ranges) live in
:func:`check_topology`, which returns located messages instead of raising, so
a user sees every problem at once.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Network
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictInt, StrictStr

# A DNS label (RFC 1123), as Kubernetes requires for most names.
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# Kubernetes label keys/values, simplified: no prefix/ with slash.
LABEL_TEXT = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")

LAB_NAME_MAX = 24
NAME_MAX = 63
# Namespace names are "<lab>-<name>"; keep them DNS labels too.
NETNS_NAME_MAX = 63
# Names of namespaces netlab makes besides nodes and pods.
RESERVED_NAMES = frozenset({"underlay", "gateway", "lb", "internet"})
BRIDGE_MAX_PORTS = 1023  # BR_MAX_PORTS is 1024 in the kernel, port 0 is unused


def _require_str(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError(f"must be a string like \"10.244.0.0/16\", not {type(value).__name__}")
    return value


def _dns_label(value: Any) -> Any:
    if not isinstance(value, str):
        return value  # StrictStr reports the type
    if len(value) > NAME_MAX:
        raise ValueError(f"{value[:20]!r}... is {len(value)} characters; names are at most {NAME_MAX}")
    if not DNS_LABEL.match(value):
        raise ValueError(
            f"{value!r} is not a DNS label (lower-case letters, digits and '-', starting and ending with a letter or digit)"
        )
    return value


def _label_text(value: Any) -> Any:
    if isinstance(value, str) and (len(value) > 63 or not LABEL_TEXT.match(value)):
        raise ValueError(f"{value!r} is not a valid label key or value (letters, digits, '-', '_', '.', at most 63)")
    return value


Name = Annotated[StrictStr, BeforeValidator(_dns_label)]
LabelText = Annotated[StrictStr, BeforeValidator(_label_text)]
Ip = Annotated[IPv4Address, BeforeValidator(_require_str)]
Cidr = Annotated[IPv4Network, BeforeValidator(_require_str)]
Port = Annotated[StrictInt, Field(ge=1, le=65535)]
Protocol = Literal["TCP", "UDP"]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Cluster(Model):
    pod_cidr: Cidr = Field(IPv4Network("10.244.0.0/16"), alias="podCIDR",
                           description="Cluster pod network, cut into one node-sized block per node.")
    service_cidr: Cidr = Field(IPv4Network("10.96.0.0/12"), alias="serviceCIDR",
                               description="Where Service ClusterIPs come from.")
    node_mask: StrictInt = Field(24, alias="nodeMask", ge=16, le=28,
                                 description="Prefix length of each node's pod CIDR.")


class VxlanSettings(Model):
    vni: StrictInt = Field(1, ge=1, le=16777215, description="VXLAN network identifier (Flannel uses 1).")
    port: Port = Field(8472, description="UDP destination port of the overlay (Flannel uses 8472, IANA 4789).")


class Underlay(Model):
    cidr: Cidr = Field(IPv4Network("192.168.122.0/24"),
                       description="The nodes' LAN. Its first address is kept for the lab's gateway.")
    mtu: StrictInt = Field(1500, ge=1280, le=9000, description="MTU of the nodes' eth0.")


class Network(Model):
    mode: Literal["vxlan", "host-gw"] = Field("vxlan", description="vxlan (Flannel-style overlay) or host-gw (static routes).")
    vxlan: VxlanSettings = VxlanSettings()
    underlay: Underlay = Underlay()


class Node(Model):
    name: Name
    ip: Ip | None = Field(None, description="Underlay address; allocated from network.underlay.cidr when absent.")
    pod_cidr: Cidr | None = Field(None, alias="podCIDR",
                                  description="This node's pod block; allocated from cluster.podCIDR when absent.")


class ContainerPort(Model):
    container_port: Port = Field(alias="containerPort")
    protocol: Protocol = "TCP"
    name: Name | None = None


class Container(Model):
    name: Name
    command: list[StrictStr] | None = Field(None, min_length=1,
                                            description="argv; without it the container runs netlab's echo server.")
    ports: list[ContainerPort] = []


class Pod(Model):
    name: Name
    node: Name
    ip: Ip | None = Field(None, description="Pod address; allocated from the node's pod CIDR when absent.")
    labels: dict[LabelText, LabelText] = {}
    containers: list[Container] = []


class ServicePort(Model):
    name: Name | None = None
    port: Port
    target_port: Port | None = Field(None, alias="targetPort", description="Defaults to port.")
    protocol: Protocol = "TCP"
    node_port: Annotated[StrictInt, Field(ge=30000, le=32767)] | None = Field(None, alias="nodePort")


class Service(Model):
    name: Name
    namespace: Name = "default"
    selector: dict[LabelText, LabelText] = {}
    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    cluster_ip: Ip | None = Field(None, alias="clusterIP")
    session_affinity: Literal["None", "ClientIP"] = Field("None", alias="sessionAffinity")
    load_balancer_ip: Ip | None = Field(None, alias="loadBalancerIP",
                                        description="External IP held by the lab's load balancer (type LoadBalancer).")
    ports: list[ServicePort] = Field(min_length=1)


class Gateway(Model):
    ip: Ip = IPv4Address("203.0.113.1")


class InternetHost(Model):
    name: Name
    ip: Ip


class Internet(Model):
    cidr: Cidr = Field(IPv4Network("203.0.113.0/24"), description="The simulated internet's network.")
    gateway: Gateway = Gateway()
    hosts: list[InternetHost] = []


class Expectation(Model):
    source: Name = Field(alias="from")
    to: Name
    proto: Literal["icmp", "tcp", "udp"] = "icmp"
    port: Port | None = None
    reach: StrictBool = True


class Topology(Model):
    """A whole lab."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True,
                              json_schema_extra={"title": "netlab topology"})

    name: Annotated[Name, Field(max_length=LAB_NAME_MAX)] = Field(
        description="Lab name: a DNS label that prefixes every namespace of the lab.")
    cluster: Cluster = Cluster()
    network: Network = Network()
    nodes: list[Node] = Field(min_length=1)
    pods: list[Pod] = []
    services: list[Service] = []
    internet: Internet | None = None
    expect: list[Expectation] = []


Loc = tuple[str | int, ...]


def check_topology(topo: Topology) -> list[tuple[Loc, str]]:
    """Cross-field rules; returns (location, message) pairs, empty when valid."""
    from netlab.model.addressing import allocate

    out: list[tuple[Loc, str]] = []
    out += _check_names(topo)
    out += _check_cidrs(topo)
    if out:
        return out  # allocation needs sane names and CIDRs
    _, problems = allocate(topo)
    out += problems
    out += _check_services(topo)
    out += _check_expectations(topo)
    return out


def _check_names(topo: Topology) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    seen: dict[str, Loc] = {}
    things: list[tuple[Loc, str]] = [(("nodes", i, "name"), n.name) for i, n in enumerate(topo.nodes)]
    things += [(("pods", i, "name"), p.name) for i, p in enumerate(topo.pods)]
    if topo.internet:
        things += [(("internet", "hosts", i, "name"), h.name) for i, h in enumerate(topo.internet.hosts)]
    for loc, name in things:
        if name in RESERVED_NAMES:
            out.append((loc, f"{name!r} is reserved for the lab's own {name} namespace; pick another name"))
        elif name in seen:
            out.append((loc, f"{name!r} is already used by {_fmt(seen[name])} (nodes, pods and hosts share namespace names)"))
        else:
            seen[name] = loc
        netns = f"{topo.name}-{name}"
        if len(netns) > NETNS_NAME_MAX:
            out.append((loc, f"namespace name {netns[:30]!r}... would be {len(netns)} characters; "
                             f"lab name + name must stay within {NETNS_NAME_MAX - 1}"))
    node_names = {n.name for n in topo.nodes}
    for i, pod in enumerate(topo.pods):
        if pod.node not in node_names:
            out.append((("pods", i, "node"), f"unknown node {pod.node!r} (nodes: {', '.join(sorted(node_names))})"))
        cnames: set[str] = set()
        for j, c in enumerate(pod.containers):
            if c.name in cnames:
                out.append((("pods", i, "containers", j, "name"), f"duplicate container name {c.name!r} in pod {pod.name!r}"))
            cnames.add(c.name)
            ports: set[tuple[int, str]] = set()
            for k, p in enumerate(c.ports):
                if (p.container_port, p.protocol) in ports:
                    out.append((("pods", i, "containers", j, "ports", k), f"duplicate port {p.container_port}/{p.protocol}"))
                ports.add((p.container_port, p.protocol))
    svc_names: set[tuple[str, str]] = set()
    for i, svc in enumerate(topo.services):
        key = (svc.namespace, svc.name)
        if key in svc_names:
            out.append((("services", i, "name"), f"duplicate service {svc.name!r}"))
        svc_names.add(key)
    return out


def _check_cidrs(topo: Topology) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    nets: list[tuple[Loc, str, IPv4Network]] = [
        (("cluster", "podCIDR"), "cluster.podCIDR", topo.cluster.pod_cidr),
        (("cluster", "serviceCIDR"), "cluster.serviceCIDR", topo.cluster.service_cidr),
        (("network", "underlay", "cidr"), "network.underlay.cidr", topo.network.underlay.cidr),
    ]
    if topo.internet:
        nets.append((("internet", "cidr"), "internet.cidr", topo.internet.cidr))
    for i, (loc_a, name_a, a) in enumerate(nets):
        for loc_b, name_b, b in nets[:i]:
            if a.overlaps(b):
                out.append((loc_a, f"{a} overlaps {name_b} {b}"))
    for loc, name, net in nets:
        if net.is_loopback or net.is_multicast or net.is_link_local or net.is_unspecified:
            out.append((loc, f"{net} is a loopback, link-local, multicast or unspecified range"))
    if topo.cluster.pod_cidr.prefixlen > topo.cluster.node_mask:
        out.append((("cluster", "nodeMask"), f"nodeMask /{topo.cluster.node_mask} is wider than podCIDR {topo.cluster.pod_cidr}"))
    if topo.network.underlay.cidr.prefixlen > 29:
        out.append((("network", "underlay", "cidr"), "the underlay needs at least a /29"))
    return out


def _check_services(topo: Topology) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    node_ports: dict[tuple[int, str], Loc] = {}
    for i, svc in enumerate(topo.services):
        seen_ports: set[tuple[int, str]] = set()
        for j, port in enumerate(svc.ports):
            loc = ("services", i, "ports", j)
            if (port.port, port.protocol) in seen_ports:
                out.append((loc + ("port",), f"duplicate port {port.port}/{port.protocol}"))
            seen_ports.add((port.port, port.protocol))
            if port.node_port is not None:
                if svc.type == "ClusterIP":
                    out.append((loc + ("nodePort",), "nodePort needs type NodePort or LoadBalancer"))
                key = (port.node_port, port.protocol)
                if key in node_ports:
                    out.append((loc + ("nodePort",), f"nodePort {port.node_port} already used by {_fmt(node_ports[key])}"))
                node_ports[key] = loc
        if svc.type == "LoadBalancer" and topo.internet is None:
            out.append((("services", i, "type"), "type LoadBalancer needs an internet: section (the load balancer lives there)"))
        if svc.load_balancer_ip is not None and svc.type != "LoadBalancer":
            out.append((("services", i, "loadBalancerIP"), "loadBalancerIP needs type LoadBalancer"))
    return out


def _check_expectations(topo: Topology) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    names = {n.name for n in topo.nodes} | {p.name for p in topo.pods}
    if topo.internet:
        names |= {h.name for h in topo.internet.hosts}
    for i, exp in enumerate(topo.expect):
        for field, value in (("from", exp.source), ("to", exp.to)):
            if value not in names:
                out.append((("expect", i, field), f"unknown pod, node or host {value!r}"))
        if exp.proto == "icmp" and exp.port is not None:
            out.append((("expect", i, "port"), "icmp has no port"))
        if exp.proto != "icmp" and exp.port is None:
            out.append((("expect", i, "port"), f"{exp.proto} needs a port"))
    return out


def _fmt(loc: Loc) -> str:
    from netlab.model.load import format_path

    return format_path(loc)
