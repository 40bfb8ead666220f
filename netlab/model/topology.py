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
# Kubernetes label keys and values, simplified: no "prefix/" part. Keys are not empty.
LABEL_KEY = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_IPV4 = re.compile(r"^[0-9]{1,3}(\.[0-9]{1,3}){3}$")
_CIDR = re.compile(r"^[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}$")

LAB_NAME_MAX = 24
NAME_MAX = 63
LABEL_MAX = 63
# Namespace names are "<lab>-<name>"; keep them DNS labels too.
NETNS_NAME_MAX = 63
# Names of namespaces netlab makes besides nodes and pods.
RESERVED_NAMES = frozenset({"underlay", "gateway", "lb", "internet"})
BRIDGE_MAX_PORTS = 1023  # BR_MAX_PORTS is 1024 in the kernel, port 0 is unused
ECHO_DEFAULT_PORT = 8080  # a container without command and ports runs the echo server here
# Ranges no lab address may come from: the kernel refuses them on an interface or a route
# (0.0.0.0/8 "this network", 240.0.0.0/4 and the broadcast address), or gives them a meaning
# of their own (loopback, link-local, multicast).
SPECIAL_RANGES = tuple((IPv4Network(net), what) for net, what in (
    ("0.0.0.0/8", "'this network'"), ("127.0.0.0/8", "loopback"), ("169.254.0.0/16", "link-local"),
    ("224.0.0.0/4", "multicast"), ("240.0.0.0/4", "reserved, with the broadcast address")))

# Numeric ranges: (low, high, what), used by the fields and by error messages.
PORT_RANGE = (1, 65535, "ports")
NODE_PORT_RANGE = (30000, 32767, "nodePorts")
VNI_RANGE = (1, 16777215, "VXLAN VNIs (24 bits)")
MTU_RANGE = (1280, 9000, "underlay MTUs")
NODE_MASK_RANGE = (16, 28, "nodeMask prefix lengths")
RANGES: dict[str, tuple[int, int, str]] = {
    "port": PORT_RANGE, "containerPort": PORT_RANGE, "targetPort": PORT_RANGE,
    "nodePort": NODE_PORT_RANGE, "vni": VNI_RANGE, "mtu": MTU_RANGE, "nodeMask": NODE_MASK_RANGE,
}


def _show(value: str, limit: int = 30) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "...'"


def yaml_kind(value: Any) -> str:
    """What a YAML author wrote, in YAML words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _dns_label(value: Any) -> Any:
    if not isinstance(value, str):
        return value  # StrictStr reports the type
    if len(value) > NAME_MAX:
        raise ValueError(f"{_show(value)} is {len(value)} characters; names are at most {NAME_MAX}, shorten it")
    if not DNS_LABEL.fullmatch(value):
        raise ValueError(
            f"{_show(value)} is not a DNS label; use lower-case letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return value


def lab_name_problem(value: Any) -> str | None:
    """What is wrong with a lab name, or None: one rule for a topology's ``name:``
    and for every ``--lab`` value, which becomes a directory name under the state root."""
    if not isinstance(value, str):
        return f"must be a string, not {yaml_kind(value)}"
    if len(value) > LAB_NAME_MAX:
        return (f"{_show(value)} is {len(value)} characters; a lab name is at most {LAB_NAME_MAX} "
                "(it prefixes every namespace name), shorten it")
    try:
        _dns_label(value)
    except ValueError as exc:
        return str(exc)
    return None


def _lab_name(value: Any) -> Any:
    if isinstance(value, str):  # StrictStr reports other types
        problem = lab_name_problem(value)
        if problem:
            raise ValueError(problem)
    return value


def _label_key(value: Any) -> Any:
    if isinstance(value, str) and (len(value) > LABEL_MAX or not LABEL_KEY.fullmatch(value)):
        raise ValueError(f"label key {_show(value)} is not valid; use letters, digits, '-', '_' and '.', "
                         f"starting and ending with a letter or digit, at most {LABEL_MAX}")
    return value


def _label_value(value: Any) -> Any:
    if isinstance(value, str) and (len(value) > LABEL_MAX or not LABEL_VALUE.fullmatch(value)):
        raise ValueError(f"label value {_show(value)} is not valid; use letters, digits, '-', '_' and '.', "
                         f"starting and ending with a letter or digit, at most {LABEL_MAX}")
    return value


def _ip(value: Any) -> Any:
    if isinstance(value, IPv4Address):
        return value
    if not isinstance(value, str):
        raise ValueError(f"must be an IPv4 address written as a string like \"10.244.0.2\", not {yaml_kind(value)}")
    if "/" in value and _CIDR.fullmatch(value):
        raise ValueError(f"{_show(value)} is a CIDR; give the address alone, without /prefix")
    if not _IPV4.fullmatch(value):
        raise ValueError(f"{_show(value)} is not an IPv4 address like 10.244.0.2")
    try:
        return IPv4Address(value)
    except ValueError as exc:
        raise ValueError(f"{_show(value)} is not an IPv4 address like 10.244.0.2 ({exc})") from None


def _cidr(value: Any) -> Any:
    if isinstance(value, IPv4Network):
        return value
    if not isinstance(value, str):
        raise ValueError(f"must be an IPv4 CIDR written as a string like \"10.244.0.0/16\", not {yaml_kind(value)}")
    if _IPV4.fullmatch(value):
        raise ValueError(f"{_show(value)} has no prefix length; write it as a CIDR like {value}/24")
    if not _CIDR.fullmatch(value):
        raise ValueError(f"{_show(value)} is not an IPv4 CIDR like 10.244.0.0/16")
    try:
        return IPv4Network(value)
    except ValueError as exc:
        try:
            loose = IPv4Network(value, strict=False)
        except ValueError:
            raise ValueError(f"{_show(value)} is not an IPv4 CIDR like 10.244.0.0/16 ({exc})") from None
        raise ValueError(f"{value} has host bits set; did you mean {loose}?") from None


def _argv_item(value: Any) -> Any:
    if isinstance(value, str) and "\0" in value:
        raise ValueError("a command argument cannot contain a NUL character")
    return value


Name = Annotated[StrictStr, Field(max_length=NAME_MAX, pattern=DNS_LABEL.pattern), BeforeValidator(_dns_label)]
LabName = Annotated[StrictStr, Field(max_length=LAB_NAME_MAX, pattern=DNS_LABEL.pattern), BeforeValidator(_lab_name)]
LabelKey = Annotated[StrictStr, Field(max_length=LABEL_MAX, pattern=LABEL_KEY.pattern), BeforeValidator(_label_key)]
LabelValue = Annotated[StrictStr, Field(max_length=LABEL_MAX, pattern=LABEL_VALUE.pattern),
                       BeforeValidator(_label_value)]
LabelText = LabelValue  # kept for compatibility
Ip = Annotated[IPv4Address, BeforeValidator(_ip)]
Cidr = Annotated[IPv4Network, BeforeValidator(_cidr)]
Port = Annotated[StrictInt, Field(ge=PORT_RANGE[0], le=PORT_RANGE[1])]
NodePort = Annotated[StrictInt, Field(ge=NODE_PORT_RANGE[0], le=NODE_PORT_RANGE[1])]
Arg = Annotated[StrictStr, BeforeValidator(_argv_item)]
Protocol = Literal["TCP", "UDP"]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Cluster(Model):
    pod_cidr: Cidr = Field(IPv4Network("10.244.0.0/16"), alias="podCIDR",
                           description="Cluster pod network, cut into one node-sized block per node.")
    service_cidr: Cidr = Field(IPv4Network("10.96.0.0/12"), alias="serviceCIDR",
                               description="Where Service ClusterIPs come from.")
    node_mask: StrictInt = Field(24, alias="nodeMask", ge=NODE_MASK_RANGE[0], le=NODE_MASK_RANGE[1],
                                 description="Prefix length of each node's pod CIDR.")


class VxlanSettings(Model):
    vni: StrictInt = Field(1, ge=VNI_RANGE[0], le=VNI_RANGE[1],
                           description="VXLAN network identifier (Flannel uses 1); the device is flannel.<vni>, "
                                       "so at most 9999999 fits the kernel's 15-byte interface names.")
    port: Port = Field(8472, description="UDP destination port of the overlay (Flannel uses 8472, IANA 4789).")


class Underlay(Model):
    cidr: Cidr = Field(IPv4Network("192.168.122.0/24"),
                       description="The nodes' LAN. Its first address is kept for the lab's gateway.")
    mtu: StrictInt = Field(1500, ge=MTU_RANGE[0], le=MTU_RANGE[1], description="MTU of the nodes' eth0.")


class Network(Model):
    mode: Literal["vxlan", "host-gw"] = Field("vxlan", description="vxlan (Flannel-style overlay) or host-gw (static routes).")
    vxlan: VxlanSettings = VxlanSettings()
    underlay: Underlay = Underlay()


class Node(Model):
    name: Name = Field(description="Node name (a DNS label); its namespace is <lab>-<name>.")
    ip: Ip | None = Field(None, description="Underlay address; allocated from network.underlay.cidr when absent.")
    pod_cidr: Cidr | None = Field(None, alias="podCIDR",
                                  description="This node's pod block; allocated from cluster.podCIDR when absent.")


class ContainerPort(Model):
    container_port: Port = Field(alias="containerPort", description="Port the container listens on.")
    protocol: Protocol = "TCP"
    name: Name | None = Field(None, description="Optional port name.")


class Container(Model):
    name: Name = Field(description="Container name, unique within its pod.")
    command: list[Arg] | None = Field(None, min_length=1,
                                      description="argv; without it the container runs netlab's echo server.")
    ports: list[ContainerPort] = Field([], description="Ports the container serves (Services pick endpoints by them).")


class Pod(Model):
    name: Name = Field(description="Pod name (a DNS label); its namespace is <lab>-<name>.")
    node: Name = Field(description="Name of the node the pod runs on.")
    ip: Ip | None = Field(None, description="Pod address; allocated from the node's pod CIDR when absent.")
    labels: dict[LabelKey, LabelValue] = Field({}, description="Labels that Service selectors match.")
    containers: list[Container] = Field([], description="Processes sharing the pod's network namespace; "
                                                        "none means one echo server on 8080/TCP.")


class ServicePort(Model):
    name: Name | None = Field(None, description="Port name.")
    port: Port = Field(description="Port on the ClusterIP.")
    target_port: Port | None = Field(None, alias="targetPort", description="Defaults to port.")
    protocol: Protocol = "TCP"
    node_port: NodePort | None = Field(None, alias="nodePort")


class Service(Model):
    name: Name = Field(description="Service name, unique in the lab.")
    namespace: Name = Field("default", description="Kubernetes namespace, used in the DNS name "
                                                   "<name>.<namespace>.svc.cluster.local.")
    selector: dict[LabelKey, LabelValue] = Field({}, description="Pods whose labels match are the endpoints.")
    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    cluster_ip: Ip | None = Field(None, alias="clusterIP", description="Allocated from cluster.serviceCIDR when absent.")
    session_affinity: Literal["None", "ClientIP"] = Field("None", alias="sessionAffinity")
    load_balancer_ip: Ip | None = Field(None, alias="loadBalancerIP",
                                        description="External IP held by the lab's load balancer (type LoadBalancer).")
    ports: list[ServicePort] = Field(min_length=1)


class Gateway(Model):
    ip: Ip = Field(IPv4Address("203.0.113.1"), description="The lab gateway's public address, in internet.cidr.")


class InternetHost(Model):
    name: Name = Field(description="Host name; its namespace is <lab>-<name>.")
    ip: Ip = Field(description="Its address, in internet.cidr.")


class Internet(Model):
    cidr: Cidr = Field(IPv4Network("203.0.113.0/24"), description="The simulated internet's network.")
    gateway: Gateway = Gateway()
    hosts: list[InternetHost] = Field([], description="Hosts on the simulated internet.")


class Expectation(Model):
    source: Name = Field(alias="from", description="Pod, node or internet host the probe starts from.")
    to: Name = Field(description="Pod, node or internet host the probe goes to.")
    proto: Literal["icmp", "tcp", "udp"] = "icmp"
    port: Port | None = Field(None, description="Destination port (tcp and udp only).")
    reach: StrictBool = Field(True, description="Whether the probe must get through.")


class Topology(Model):
    """A whole lab."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True,
                              json_schema_extra={"title": "netlab topology"})

    name: LabName = Field(
        description="Lab name: a DNS label that prefixes every namespace of the lab.")
    cluster: Cluster = Cluster()
    network: Network = Network()
    nodes: list[Node] = Field(min_length=1, description="The cluster's nodes (at least one).")
    pods: list[Pod] = Field([], description="Pods, each on one node.")
    services: list[Service] = Field([], description="Kubernetes-style Services (kube-proxy iptables rules).")
    internet: Internet | None = Field(None, description="A simulated internet behind the lab's gateway.")
    expect: list[Expectation] = Field([], description="Probe expectations that override 'everything reaches "
                                                      "everything'.")


Loc = tuple[str | int, ...]


def check_topology(topo: Topology) -> list[tuple[Loc, str]]:
    """Cross-field rules; returns (location, message) pairs, empty when valid."""
    from netlab.model.addressing import allocate

    out: list[tuple[Loc, str]] = []
    names = _check_names(topo)
    cidrs = _check_cidrs(topo)
    out += names + cidrs
    out += _check_services(topo)
    out += _check_expectations(topo)
    out += _check_kernel_names(topo)
    if not names and not cidrs:  # allocation needs sane names and CIDRs
        addressing, problems = allocate(topo)
        out += problems
        if not out:  # the cluster DNS add-on must fit too: it is part of the lab
            from netlab.model import clusterdns

            out += clusterdns.problems(topo, addressing)
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
            out.append((loc, f"{name!r} is already used by {_fmt(seen[name])} "
                             "(nodes, pods and internet hosts share namespace names); rename one"))
        else:
            seen[name] = loc
        netns = f"{topo.name}-{name}"
        if len(netns) > NETNS_NAME_MAX:
            out.append((loc, f"namespace name {netns[:30]!r}... would be {len(netns)} characters; "
                             f"lab name + name must stay within {NETNS_NAME_MAX - 1}, shorten one"))
    node_names = {n.name for n in topo.nodes}
    for i, pod in enumerate(topo.pods):
        if pod.node not in node_names:
            known = ", ".join(sorted(node_names)[:10]) + (", ..." if len(node_names) > 10 else "")
            out.append((("pods", i, "node"), f"unknown node {pod.node!r}; use one of the nodes: {known}"))
        cnames: set[str] = set()
        for j, c in enumerate(pod.containers):
            if c.name in cnames:
                out.append((("pods", i, "containers", j, "name"),
                            f"duplicate container name {c.name!r} in pod {pod.name!r}; rename one"))
            cnames.add(c.name)
        ports: dict[tuple[int, str], str] = {}
        for j, c in enumerate(pod.containers):  # containers share the pod's network namespace
            if c.command is None and not c.ports:  # netlab's echo server on its default port
                key = (ECHO_DEFAULT_PORT, "TCP")
                if key in ports:
                    out.append((("pods", i, "containers", j),
                                f"container {c.name!r} runs netlab's echo server on its default port "
                                f"{ECHO_DEFAULT_PORT}/TCP, which container {ports[key]!r} of this pod already "
                                "takes (they share one network namespace); give one of them ports: "
                                "[{containerPort: N}]"))
                else:
                    ports[key] = c.name
            for k, p in enumerate(c.ports):
                key = (p.container_port, p.protocol)
                if key in ports:
                    out.append((("pods", i, "containers", j, "ports", k),
                                f"port {p.container_port}/{p.protocol} is already declared by container "
                                f"{ports[key]!r} of this pod (they share one network namespace); remove one"))
                else:
                    ports[key] = c.name
    svc_names: dict[str, Loc] = {}
    for i, svc in enumerate(topo.services):
        # Addresses and kube-proxy chains are keyed by the service name, so it is unique across namespaces.
        if svc.name in svc_names:
            out.append((("services", i, "name"), f"service {svc.name!r} is already defined by "
                                                 f"{_fmt(svc_names[svc.name])}; rename one"))
        else:
            svc_names[svc.name] = ("services", i)
    return out


def _check_kernel_names(topo: Topology) -> list[tuple[Loc, str]]:
    """Generated kernel names must fit and must not collide (hashes are short)."""
    from netlab.model import naming

    out: list[tuple[Loc, str]] = []
    if topo.network.mode == "vxlan":
        try:
            naming.vxlan_name(topo.network.vxlan.vni)
        except ValueError:
            out.append((("network", "vxlan", "vni"),
                        f"VNI {topo.network.vxlan.vni} would name the VXLAN device "
                        f"'flannel.{topo.network.vxlan.vni}', over the kernel's {naming.IFNAMSIZ}-byte limit; "
                        "use a VNI of at most 9999999"))
    veths: dict[str, Loc] = {}
    owners = [(("nodes", i, "name"), "node/" + n.name) for i, n in enumerate(topo.nodes)]
    owners += [(("pods", i, "name"), "pod/" + p.name) for i, p in enumerate(topo.pods)]
    for loc, owner in owners:
        veth = naming.veth_name(topo.name, owner)
        if veth in veths and veths[veth] != loc:
            out.append((loc, f"its veth name {veth} collides with the one of {_fmt(veths[veth])} "
                             "(an 8-digit hash); rename one of them"))
        veths.setdefault(veth, loc)
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
    for i, (loc_a, _, a) in enumerate(nets):
        for _, name_b, b in nets[:i]:
            if a.overlaps(b):
                out.append((loc_a, f"{a} overlaps {name_b} {b}; the pod, service, underlay and internet "
                                   "ranges must be disjoint"))
    for loc, _, net in nets:
        special = next((s for s in SPECIAL_RANGES if net.overlaps(s[0])), None)
        if net.prefixlen == 0 or special is None and (net.is_loopback or net.is_multicast or net.is_link_local
                                                      or net.is_unspecified or net.is_reserved):
            out.append((loc, f"{net} is a loopback, link-local, multicast, reserved or unspecified range; "
                             "use a private range such as 10.0.0.0/8 or 192.168.0.0/16"))
        elif special is not None:
            out.append((loc, f"{net} overlaps {special[0]} ({special[1]}), where the kernel refuses or treats "
                             "addresses specially; use a private range such as 10.0.0.0/8 or 192.168.0.0/16"))
    if topo.cluster.pod_cidr.prefixlen > topo.cluster.node_mask:
        out.append((("cluster", "nodeMask"), f"nodeMask /{topo.cluster.node_mask} is larger than podCIDR "
                                             f"{topo.cluster.pod_cidr}; use a nodeMask of at least "
                                             f"/{topo.cluster.pod_cidr.prefixlen} or a wider podCIDR"))
    if topo.network.underlay.cidr.prefixlen > 29:
        out.append((("network", "underlay", "cidr"), f"{topo.network.underlay.cidr} is too small; "
                                                     "the underlay needs at least a /29"))
    return out


def _check_services(topo: Topology) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    node_ports: dict[tuple[int, str], Loc] = {}
    for i, svc in enumerate(topo.services):
        seen_ports: set[tuple[int, str]] = set()
        seen_names: set[str] = set()
        for j, port in enumerate(svc.ports):
            loc = ("services", i, "ports", j)
            if (port.port, port.protocol) in seen_ports:
                out.append((loc + ("port",), f"port {port.port}/{port.protocol} is listed twice in this service; "
                                             "remove one"))
            seen_ports.add((port.port, port.protocol))
            if port.name is not None:
                if port.name in seen_names:
                    out.append((loc + ("name",), f"port name {port.name!r} is used twice in this service; rename one"))
                seen_names.add(port.name)
            if port.node_port is not None:
                if svc.type == "ClusterIP":
                    out.append((loc + ("nodePort",), "nodePort needs type NodePort or LoadBalancer; "
                                                     "set the service's type or remove nodePort"))
                key = (port.node_port, port.protocol)
                if key in node_ports:
                    out.append((loc + ("nodePort",), f"nodePort {port.node_port}/{port.protocol} is already used by "
                                                     f"{_fmt(node_ports[key])}; pick another"))
                else:
                    node_ports[key] = loc
                if (topo.network.mode == "vxlan" and port.protocol == "UDP"
                        and port.node_port == topo.network.vxlan.port):
                    out.append((loc + ("nodePort",), f"nodePort {port.node_port}/UDP is the VXLAN port "
                                                     "(network.vxlan.port) on every node; pick another"))
        if svc.type == "LoadBalancer" and topo.internet is None:
            out.append((("services", i, "type"), "type LoadBalancer needs an internet: section "
                                                 "(the load balancer lives there); add one"))
        if svc.load_balancer_ip is not None and svc.type != "LoadBalancer":
            out.append((("services", i, "loadBalancerIP"), "loadBalancerIP needs type LoadBalancer; "
                                                           "set the type or remove loadBalancerIP"))
    return out


def _check_expectations(topo: Topology) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    names = {n.name for n in topo.nodes} | {p.name for p in topo.pods}
    if topo.internet:
        names |= {h.name for h in topo.internet.hosts}
    for i, exp in enumerate(topo.expect):
        for field, value in (("from", exp.source), ("to", exp.to)):
            if value not in names:
                out.append((("expect", i, field), f"unknown pod, node or internet host {value!r}; "
                                                  "use a name defined in this topology"))
        if exp.proto == "icmp" and exp.port is not None:
            out.append((("expect", i, "port"), "icmp has no port; remove port: or set proto: tcp or udp"))
        if exp.proto != "icmp" and exp.port is None:
            out.append((("expect", i, "port"), f"{exp.proto} needs a port; add port:"))
    return out


def _fmt(loc: Loc) -> str:
    from netlab.model.load import format_path

    return format_path(loc)
