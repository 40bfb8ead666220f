"""The topology: what a user writes, as typed, frozen pydantic models.

Field names follow Kubernetes spelling (``podCIDR``, ``containerPort``,
``clusterIP``) because users, docs and tests depend on them. Every model
forbids unknown keys. Scalars are strict: YAML's ``no`` is a boolean and is not
accepted where a name is expected, ``"8080"`` is not a port.

Cross-field rules (references, overlaps, duplicates, address ranges) live in
:func:`netlab.model.checks.check_topology`, which returns located messages instead of raising, so
a user sees every problem at once.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Network, IPv6Network
from typing import Annotated, Any, Literal, Mapping

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictInt, StrictStr, field_validator,
                      model_validator)

from netlab.model.echo_ports import ECHO_DEFAULT_PORT as ECHO_DEFAULT_PORT  # the echo server's, where none is declared
from netlab.model.impair import IfName, Impairment
from netlab.model.location import show
from netlab.model.naming import DNS_LABEL, LAB_NAME_MAX, NAME_MAX
from netlab.model.values import (LABEL_KEY, LABEL_MAX, LABEL_PREFIX_MAX, LABEL_VALUE, as_argv_item, as_block_cidr,
                                 as_cidr, as_dns_label, as_ip, as_label_key, as_label_value, as_lab_name)

# Namespace names are "<lab>-<name>"; keep them DNS labels too.
NETNS_NAME_MAX = 63
# Names of namespaces netlab makes besides nodes and pods.
RESERVED_NAMES = frozenset({"underlay", "gateway", "lb", "internet"})
# Numeric ranges: (low, high, what), used by the fields and by error messages.
PORT_RANGE = (1, 65535, "ports")
NODE_PORT_RANGE = (30000, 32767, "nodePorts")
VNI_RANGE = (1, 16777215, "VXLAN VNIs (24 bits)")
MTU_RANGE = (1280, 9000, "underlay MTUs")
NODE_MASK_RANGE = (16, 28, "nodeMask prefix lengths")
RANGES: dict[str, tuple[int, int, str]] = {
    "port": PORT_RANGE, "containerPort": PORT_RANGE,
    "nodePort": NODE_PORT_RANGE, "vni": VNI_RANGE, "mtu": MTU_RANGE, "nodeMask": NODE_MASK_RANGE,
}


Name = Annotated[StrictStr, Field(max_length=NAME_MAX, pattern=DNS_LABEL.pattern), BeforeValidator(as_dns_label)]
LabName = Annotated[StrictStr, Field(max_length=LAB_NAME_MAX, pattern=DNS_LABEL.pattern), BeforeValidator(as_lab_name)]
LabelKey = Annotated[StrictStr, Field(max_length=LABEL_PREFIX_MAX + 1 + LABEL_MAX, pattern=LABEL_KEY.pattern),
                     BeforeValidator(as_label_key)]
LabelValue = Annotated[StrictStr, Field(max_length=LABEL_MAX, pattern=LABEL_VALUE.pattern),
                       BeforeValidator(as_label_value)]
Ip = Annotated[IPv4Address, BeforeValidator(as_ip)]


def _cluster_ip(value: Any) -> Any:
    if value == "None":
        return value
    try:
        return as_ip(value)
    except ValueError as exc:
        raise ValueError(f"{exc}, or None for a headless Service") from None


# A Service's clusterIP: an address, or the word None (a headless Service), as the API takes it.
ClusterIp = Annotated[IPv4Address | Literal["None"], BeforeValidator(_cluster_ip)]
Cidr = Annotated[IPv4Network, BeforeValidator(as_cidr)]
BlockCidr = Annotated[IPv4Network | IPv6Network, BeforeValidator(as_block_cidr)]
Port = Annotated[StrictInt, Field(ge=PORT_RANGE[0], le=PORT_RANGE[1])]
NodePort = Annotated[StrictInt, Field(ge=NODE_PORT_RANGE[0], le=NODE_PORT_RANGE[1])]
Arg = Annotated[StrictStr, BeforeValidator(as_argv_item)]
Protocol = Literal["TCP", "UDP"]

# IANA_SVC_NAME: what a named containerPort, a Service's named targetPort and a policy's named port are (the API
# server's IsValidPortName: 1-15 lower-case letters, digits and '-', at least one letter, no '-' at either end or
# twice in a row).
PORT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
PORT_NAME_MAX = 15


def is_port_name(value: str) -> bool:
    return (len(value) <= PORT_NAME_MAX and bool(PORT_NAME.fullmatch(value)) and "--" not in value
            and re.search("[a-z]", value) is not None)


def _port_name(value: Any) -> Any:
    if isinstance(value, str) and not is_port_name(value):
        raise ValueError(f"{show(value, 30)} is not a port name: lower-case letters, digits and '-', at most "
                         f"{PORT_NAME_MAX}, at least one letter, no '-' at either end or twice in a row (the name "
                         "a Service's targetPort or a policy's port refers to)")
    return value


PortName = Annotated[StrictStr, BeforeValidator(_port_name)]


class Model(BaseModel):
    # defer_build: a model's validator and serializer are built when it is first used, not when its class is
    # defined. Validating a Topology builds one validator that holds every nested model's schema; the nested
    # models' own, which pydantic would otherwise build for each of them at import, are built only if used
    # alone (every command that reads a lab's state starts ~25 ms sooner on the 2-core VM).
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)


class Cluster(Model):
    pod_cidr: Cidr = Field(IPv4Network("10.244.0.0/16"), alias="podCIDR",
                           description="Cluster pod network, cut into one node-sized block per node.")
    service_cidr: Cidr = Field(IPv4Network("10.96.0.0/12"), alias="serviceCIDR",
                               description="Where Service ClusterIPs come from.")
    node_mask: StrictInt = Field(24, alias="nodeMask", ge=NODE_MASK_RANGE[0], le=NODE_MASK_RANGE[1],
                                 description="Prefix length of each node's pod CIDR.")
    kube_proxy_mode: Literal["iptables", "nftables"] = Field(
        "iptables", alias="kubeProxyMode",
        description="kube-proxy's mode on every node (kind's name for it): iptables (KUBE-* chains in the nat and "
                    "filter tables) or nftables (the table ip kube-proxy). Flannel's rules are iptables in both.")


class VxlanSettings(Model):
    vni: StrictInt = Field(1, ge=VNI_RANGE[0], le=VNI_RANGE[1],
                           description="VXLAN network identifier (Flannel uses 1); the device is flannel.<vni>, "
                                       "so at most 9999999 fits the kernel's 15-byte interface names.")
    port: Port = Field(8472, description="UDP destination port of the overlay (Flannel uses 8472, IANA 4789).")


class Underlay(Model):
    cidr: Cidr = Field(IPv4Network("192.168.122.0/24"),
                       description="The nodes' LAN. Its first address is kept for the lab's gateway.")
    mtu: StrictInt = Field(1500, ge=MTU_RANGE[0], le=MTU_RANGE[1], description="MTU of the nodes' eth0.")


CNI_BIN_DIR = "/usr/lib/cni"  # Debian's containernetworking-plugins


def _path(value: Any) -> Any:
    if isinstance(value, str) and ("\0" in value or not value.strip()):
        raise ValueError("must be a path to a file")
    return value


class CniConflist(Model):
    """The user's own plugin chain: a CNI network configuration list and where its plugins live."""

    conflist: Annotated[StrictStr, BeforeValidator(_path)] = Field(
        description="A .conflist file (JSON); a relative path is resolved from the topology file's folder.")
    bin_dir: Annotated[StrictStr, BeforeValidator(_path)] = Field(
        CNI_BIN_DIR, alias="binDir", description="Where the plugins are (CNI_PATH); Debian's is /usr/lib/cni.")


class Network(Model):
    mode: Literal["vxlan", "host-gw"] = Field("vxlan",
                                             description="vxlan (Flannel-style overlay) or host-gw (static routes).")
    vxlan: VxlanSettings = VxlanSettings()
    underlay: Underlay = Underlay()
    cni: Literal["builtin", "reference"] | CniConflist = Field(
        "builtin", description="How pods are attached: builtin (netlab's own netlink wiring), reference (Debian's "
                               "CNI bridge and host-local plugins, configured as Flannel delegates them), or "
                               "{conflist: FILE, binDir: DIR} (the user's plugin chain).")


class Node(Model):
    name: Name = Field(description="Node name (a DNS label); its namespace is <lab>-<name>.")
    ip: Ip | None = Field(None, description="Underlay address; allocated from network.underlay.cidr when absent.")
    pod_cidr: Cidr | None = Field(None, alias="podCIDR",
                                  description="This node's pod block; allocated from cluster.podCIDR when absent.")
    impair: dict[IfName, Impairment] = Field({}, description="Impairments of the node's interfaces' egress "
                                                             "(eth0, cni0, flannel.<vni>), by interface.")


class ContainerPort(Model):
    container_port: Port = Field(alias="containerPort", description="Port the container listens on.")
    protocol: Protocol = "TCP"
    name: PortName | None = Field(None, description="Optional port name, unique within the pod, that a Service's "
                                                    "targetPort or a policy's port may give instead of the number "
                                                    "(IANA_SVC_NAME: at most 15 characters).")


class Container(Model):
    name: Name = Field(description="Container name, unique within its pod.")
    command: list[Arg] | None = Field(None, min_length=1,
                                      description="argv; without it the container runs netlab's echo server.")
    ports: list[ContainerPort] = Field([], description="Ports the container serves (Services pick endpoints by them).")


class Pod(Model):
    name: Name = Field(description="Pod name (a DNS label); its namespace is <lab>-<name>.")
    node: Name = Field(description="Name of the node the pod runs on.")
    namespace: Name = Field("default", description="Kubernetes namespace (not a network namespace); pod names "
                                                   "stay unique across the lab.")
    ip: Ip | None = Field(None, description="Pod address; allocated from the node's pod CIDR when absent.")
    labels: dict[LabelKey, LabelValue] = Field({}, description="Labels that Service selectors match.")
    containers: list[Container] = Field([], description="Processes sharing the pod's network namespace; "
                                                        "none means one echo server on 8080/TCP.")
    restart_policy: Literal["Always", "OnFailure", "Never"] = Field(
        "Always", alias="restartPolicy",
        description="What `netlab up` does with a container that exited, as the kubelet does: Always restart it, "
                    "OnFailure only after a non-zero exit, Never leave it; a container that completed (exit 0) "
                    "and is not restarted is done, not drift (`up --watch` adds the kubelet's back-off: "
                    "10 s doubling up to 5 min).")
    impair: dict[IfName, Impairment] = Field({}, description="Impairments of the pod's eth0 egress.")


class ServicePort(Model):
    name: Name | None = Field(None, description="Port name.")
    port: Port = Field(description="Port on the ClusterIP.")
    target_port: TargetPort | None = Field(
        None, alias="targetPort",
        description="The pods' port: a number, or the name of a container port of this port's protocol, which each "
                    "pod maps to its own number (a pod that declares no such port is not an endpoint of this "
                    "port). Defaults to port.")
    protocol: Protocol = "TCP"
    node_port: NodePort | None = Field(
        None, alias="nodePort",
        description="Port on every node (type NodePort or LoadBalancer); allocated when absent, as the API server "
                    "does: one Service's only, where just its TCP and UDP ports of one number may share it.")

    def target(self, pod: Pod) -> int | None:
        """Where this port's traffic goes on one of the Service's pods, as the EndpointSlice controller finds it
        (FindPort): a numeric targetPort on every pod alike, declared or not; a named one at the number of the first
        container port (in container order) of that name and this port's protocol, so two pods may serve it on two
        numbers, and a pod that declares none is no endpoint of this port (None)."""
        target = self.target_port if self.target_port is not None else self.port
        if isinstance(target, int):
            return target
        return next((p.container_port for c in pod.containers for p in c.ports
                     if p.name == target and p.protocol == self.protocol), None)


class Service(Model):
    name: Name = Field(description="Service name, unique in its namespace (web in x and web in y are two Services).")
    namespace: Name = Field("default", description="Kubernetes namespace, used in the DNS name "
                                                   "<name>.<namespace>.svc.cluster.local.")
    selector: dict[LabelKey, LabelValue] = Field({}, description="Pods whose labels match are the endpoints.")
    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    cluster_ip: ClusterIp | None = Field(
        None, alias="clusterIP",
        description="Allocated from cluster.serviceCIDR when absent; None (the word) makes a headless Service: no "
                    "ClusterIP and no kube-proxy rules, its DNS name answers its endpoints' pod IPs.")
    session_affinity: Literal["None", "ClientIP"] = Field("None", alias="sessionAffinity")
    load_balancer_ip: Ip | None = Field(None, alias="loadBalancerIP",
                                        description="External IP held by the lab's load balancer (type LoadBalancer).")
    external_traffic_policy: Literal["Cluster", "Local"] = Field(
        "Cluster", alias="externalTrafficPolicy",
        description="Where a node sends traffic that came to its nodePort or the load balancer IP (type NodePort or "
                    "LoadBalancer): Cluster, to any endpoint, the client's address masqueraded as the node's; Local, "
                    "only to the node's own endpoints, the client's address kept (a node without one drops it). "
                    "Pods' own traffic to those addresses uses every endpoint either way.")
    internal_traffic_policy: Literal["Cluster", "Local"] = Field(
        "Cluster", alias="internalTrafficPolicy",
        description="Where a node sends traffic to the ClusterIP: Cluster, to any endpoint; Local, only to the "
                    "node's own endpoints (a node without one drops it: its pods get no answer).")
    health_check_node_port: NodePort | None = Field(
        None, alias="healthCheckNodePort",
        description="Port on every node where the load balancer may ask whether the node has an endpoint (type "
                    "LoadBalancer with externalTrafficPolicy Local only); allocated from the nodePort range when "
                    "absent, as the API server does.")
    ports: list[ServicePort] = Field(min_length=1)

    @property
    def external_local(self) -> bool:
        """externalTrafficPolicy Local on a Service that takes outside traffic (kube-proxy's ExternalPolicyLocal)."""
        return self.external_traffic_policy == "Local" and self.type != "ClusterIP"

    @property
    def needs_health_check(self) -> bool:
        """The API server's NeedsHealthCheck: a LoadBalancer Service with externalTrafficPolicy Local."""
        return self.type == "LoadBalancer" and self.external_traffic_policy == "Local"

    def selects(self, labels: Mapping[str, str]) -> bool:
        """Whether a pod with these labels matches the selector, whatever its namespace (a Service's endpoints
        are the matching pods of its own namespace). An empty selector matches nothing: such a Service's
        EndpointSlices are someone else's to write, unlike a policy's empty podSelector, which selects all."""
        return bool(self.selector) and all(labels.get(k) == v for k, v in self.selector.items())

    @property
    def headless(self) -> bool:
        """``clusterIP: None``: kube-proxy ignores the Service; the cluster DNS names its endpoints instead."""
        return self.cluster_ip == "None"


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

    @field_validator("source", "to", mode="before")
    @classmethod
    def _not_a_service(cls, value: Any) -> Any:
        if isinstance(value, str) and value.startswith("svc/"):
            raise ValueError(f"{value!r} names a Service; an expect: entry goes from and to a pod, node or internet "
                             "host (`netlab probe` dials every Service from every pod, as the rules say; `netlab "
                             f"trace POD {value}` follows one connection)")
        return value


# --- Kubernetes namespaces and NetworkPolicy (networking.k8s.io/v1) ------------------------
#
# The field names are the API's own (``podSelector``, ``namespaceSelector``,
# ``matchExpressions``, ``ipBlock.except``, ``endPort``, ``policyTypes``), so a
# policy copied from a cluster's manifest validates unchanged. What the fields
# mean is in :mod:`netlab.model.netpol`; these models only say what is well
# formed, with the API server's own rules:
#
# * a label selector requirement with ``In``/``NotIn`` has values, one with
#   ``Exists``/``DoesNotExist`` has none;
# * a peer has ``ipBlock`` alone, or a pod and/or namespace selector;
# * every ``except`` lies inside its ``cidr`` (of one family: IPv4, or IPv6, which a lab's IPv4 traffic never
#   matches);
# * ``endPort`` needs a numeric ``port`` not above it;
# * a named ``port`` is an IANA service name (at most 15 characters).
#
# A *missing* list and an *empty* one differ (``ingress: []`` allows nothing,
# ``from:`` missing or empty allows every source), so the lists stay ``None``
# when absent.

# The label the API server puts on every namespace (Kubernetes >= 1.21).
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def _port_value(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a port number or a port name, not a boolean")
    if isinstance(value, int):
        if not PORT_RANGE[0] <= value <= PORT_RANGE[1]:
            raise ValueError(f"{value} is not a port; ports are {PORT_RANGE[0]}-{PORT_RANGE[1]}")
        return value
    if isinstance(value, str):
        if not is_port_name(value):
            raise ValueError(f"{show(value, 30)} is not a port name (lower-case letters, digits and '-', at most "
                             f"{PORT_NAME_MAX}, at least one letter) nor a number; write numbers without quotes")
        return value
    raise ValueError("must be a port number or a port name")


PolicyPort = Annotated[StrictInt | StrictStr, BeforeValidator(_port_value)]
# A Service's targetPort: a number, or a container port's name (IANA_SVC_NAME, as the API server validates it).
TargetPort = Annotated[Port | Annotated[StrictStr, Field(max_length=PORT_NAME_MAX, pattern=PORT_NAME.pattern)],
                       BeforeValidator(_port_value)]


class Namespace(Model):
    name: Name = Field(description="Kubernetes namespace name (not a network namespace).")
    labels: dict[LabelKey, LabelValue] = Field({}, description="Labels that namespaceSelectors match; "
                                                                f"{NAMESPACE_NAME_LABEL} is always set.")


class LabelSelectorRequirement(Model):
    key: LabelKey
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[LabelValue] | None = None

    @model_validator(mode="after")
    def _values_fit_operator(self) -> "LabelSelectorRequirement":
        if self.operator in ("In", "NotIn") and not self.values:
            raise ValueError(f"operator {self.operator} needs a non-empty values: list")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise ValueError(f"operator {self.operator} takes no values:; remove them")
        return self


class LabelSelector(Model):
    """matchLabels AND matchExpressions; an empty selector ({}) selects everything."""

    match_labels: dict[LabelKey, LabelValue] = Field({}, alias="matchLabels")
    match_expressions: list[LabelSelectorRequirement] = Field([], alias="matchExpressions")


class IPBlock(Model):
    cidr: BlockCidr = Field(description="Addresses the peer is (IPv4; an IPv6 block is valid, as in Kubernetes, "
                                        "and matches nothing in a lab, which is IPv4 only).")
    except_: list[BlockCidr] = Field([], alias="except", description="Smaller blocks inside cidr, of its family, "
                                                                     "that are not the peer.")

    @model_validator(mode="after")
    def _except_inside(self) -> "IPBlock":
        for net in self.except_:  # a strict subset, as the API server validates it (ValidateIPBlock)
            if net.version != self.cidr.version:  # its net.IPNet.Contains: an IPv4 IP is never in an IPv6 block
                raise ValueError(f"except {net} is IPv{net.version} and cidr {self.cidr} IPv{self.cidr.version}; "
                                 "every except must be a smaller block inside cidr, of its family")
            if not net.subnet_of(self.cidr) or net == self.cidr:  # type: ignore[arg-type]  # one family: checked
                why = "is cidr itself" if net == self.cidr else f"is not inside cidr {self.cidr}"
                raise ValueError(f"except {net} {why}; every except must be a smaller block inside it")
        return self

    @property
    def ipv6(self) -> bool:
        """An IPv6 block: it matches no address of an IPv4 lab, as the CNI's policy controllers skip a block of
        the other family (kube-router's ipset of the cluster's family; Calico's rules per IP version)."""
        return self.cidr.version == 6


class NetworkPolicyPeer(Model):
    pod_selector: LabelSelector | None = Field(None, alias="podSelector")
    namespace_selector: LabelSelector | None = Field(None, alias="namespaceSelector")
    ip_block: IPBlock | None = Field(None, alias="ipBlock")

    @model_validator(mode="after")
    def _one_kind(self) -> "NetworkPolicyPeer":
        if self.ip_block is not None and (self.pod_selector is not None or self.namespace_selector is not None):
            raise ValueError("ipBlock cannot be combined with podSelector or namespaceSelector in one peer; "
                             "make them two peers (a separate '- ' item)")
        if self.ip_block is None and self.pod_selector is None and self.namespace_selector is None:
            raise ValueError("a peer needs podSelector, namespaceSelector or ipBlock")
        return self


class NetworkPolicyPort(Model):
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"
    port: PolicyPort | None = None
    end_port: Annotated[StrictInt, Field(ge=PORT_RANGE[0], le=PORT_RANGE[1])] | None = Field(None, alias="endPort")

    @model_validator(mode="after")
    def _range(self) -> "NetworkPolicyPort":
        if self.end_port is not None:
            if not isinstance(self.port, int):
                got = "none is given" if self.port is None else f"not the named port {self.port!r}"
                raise ValueError(f"endPort {self.end_port} needs a numeric port, the start of the range ({got})")
            if self.end_port < self.port:
                raise ValueError(f"endPort {self.end_port} is below port {self.port}")
        return self


class NetworkPolicyIngressRule(Model):
    ports: list[NetworkPolicyPort] | None = None
    from_: list[NetworkPolicyPeer] | None = Field(None, alias="from")


class NetworkPolicyEgressRule(Model):
    ports: list[NetworkPolicyPort] | None = None
    to: list[NetworkPolicyPeer] | None = None


class NetworkPolicySpec(Model):
    pod_selector: LabelSelector = Field(alias="podSelector", description="Pods of the policy's namespace it applies "
                                                                         "to; {} selects all of them.")
    ingress: list[NetworkPolicyIngressRule] | None = None
    egress: list[NetworkPolicyEgressRule] | None = None
    policy_types: list[Literal["Ingress", "Egress"]] | None = Field(None, alias="policyTypes")

    @model_validator(mode="after")
    def _types_once(self) -> "NetworkPolicySpec":
        if self.policy_types is not None and len(set(self.policy_types)) != len(self.policy_types):
            raise ValueError("policyTypes lists a type twice")
        return self

    @property
    def types(self) -> tuple[str, ...]:
        """policyTypes, or the API server's default (SetDefaults_NetworkPolicySpec): Ingress, plus Egress when
        egress rules are given. ``egress: []`` gives none: such a policy does not isolate for egress (deny-all
        egress needs ``policyTypes: [Egress]``)."""
        if self.policy_types:
            return tuple(t for t in ("Ingress", "Egress") if t in self.policy_types)
        return ("Ingress", "Egress") if self.egress else ("Ingress",)


class NetworkPolicy(Model):
    name: Name = Field(description="Policy name, unique within its namespace.")
    namespace: Name = Field("default", description="The Kubernetes namespace the policy lives in.")
    spec: NetworkPolicySpec


class Topology(Model):
    """A whole lab."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True,
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
    namespaces: list[Namespace] = Field([], description="Kubernetes namespaces and their labels (any namespace a "
                                                        "pod names exists, with no labels but its name).")
    network_policies: list[NetworkPolicy] = Field([], alias="networkPolicies",
                                                  description="NetworkPolicies (networking.k8s.io/v1), enforced by "
                                                              "iptables in every node.")
    include: list[StrictStr] = Field([], description="Kubernetes manifests (kind NetworkPolicy or Namespace, "
                                                     "multi-document, or a List of them) to add, as globs relative "
                                                     "to this file's folder.")
