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

from ipaddress import IPv4Address, IPv4Network
from typing import Annotated, Any, Literal, Mapping

from pydantic import BeforeValidator, ConfigDict, Field, StrictBool, StrictInt, StrictStr, field_validator

from netlab.model.cni_bin import CNI_BIN_DIR as CNI_BIN_DIR  # Debian's containernetworking-plugins
from netlab.model.echo_ports import ECHO_DEFAULT_PORT as ECHO_DEFAULT_PORT  # the echo server's, where none is declared
from netlab.model.fields import (AFFINITY_TIMEOUT_DEFAULT, AFFINITY_TIMEOUT_RANGE, MTU_RANGE, NAMESPACE_NAME_LABEL,
                                 NODE_MASK_RANGE, VNI_BITS_MAX, VNI_RANGE, Arg, Cidr, ClusterIp, Ip, LabelKey,
                                 LabelValue, LabName, Model, Name, NodePort, Port, PortName, Protocol, ServiceName,
                                 SourceRange, TargetPort)
from netlab.model.impair import IfName, Impairment
from netlab.model.policy_spec import NetworkPolicy


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
    vni: StrictInt = Field(1, ge=VNI_RANGE[0], le=VNI_BITS_MAX,
                           description="VXLAN network identifier (Flannel uses 1), 1-9999999: the device is "
                                       "flannel.<vni>, and a larger one does not fit the kernel's 15-byte interface "
                                       "names.")
    port: Port = Field(8472, description="UDP destination port of the overlay (Flannel uses 8472, IANA 4789).")


class Underlay(Model):
    cidr: Cidr = Field(IPv4Network("192.168.122.0/24"),
                       description="The nodes' LAN. Its first address is kept for the lab's gateway.")
    mtu: StrictInt = Field(1500, ge=MTU_RANGE[0], le=MTU_RANGE[1], description="MTU of the nodes' eth0.")



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
    host_port: Port | None = Field(
        None, alias="hostPort",
        description="Port on the pod's node that leads to this port (Kubernetes' hostPort): the runtime hands it "
                    "to the CNI plugins that declare the portMappings capability (portmap DNATs <node IP>:hostPort "
                    "to the pod). Needs network.cni {conflist: FILE} with such a plugin; one node's pods may not "
                    "share a hostPort of one protocol.")
    host_ip: Ip | None = Field(None, alias="hostIP",
                               description="With hostPort only: the node address the hostPort is on, the node's "
                                           "ip (pinned in the file) or loopback (all of the node's addresses "
                                           "when absent or 0.0.0.0).")


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
    hostname: Name | None = Field(None, description="The pod's hostname (spec.hostname; `hostname` in the pod "
                                                    "prints it); the pod's name when absent.")
    subdomain: Name | None = Field(
        None, description="With hostname: a Service of this name in the pod's namespace that selects it names it "
                          "in the cluster DNS <hostname>.<subdomain>.<namespace>.svc.cluster.local (a StatefulSet's "
                          "pods behind their headless Service), and so do its SRV records and the pod's PTR.")
    labels: dict[LabelKey, LabelValue] = Field({}, description="Labels that Service selectors match.")
    annotations: dict[LabelKey, StrictStr] = Field(
        {}, description="The pod's annotations. kubernetes.io/ingress-bandwidth and kubernetes.io/egress-bandwidth "
                        "(bits per second: 10M, 1Mi) go to the CNI plugins that declare the bandwidth capability, "
                        "as containerd hands them over (network.cni {conflist: FILE} only); netlab reads no other.")
    containers: list[Container] = Field([], description="Processes sharing the pod's network namespace; "
                                                        "none means one echo server on 8080/TCP.")
    restart_policy: Literal["Always", "OnFailure", "Never"] = Field(
        "Always", alias="restartPolicy",
        description="What `netlab up` does with a container that exited, as the kubelet does: Always restart it, "
                    "OnFailure only after a non-zero exit, Never leave it; a container that completed (exit 0) "
                    "and is not restarted is done, not drift (`up --watch` adds the kubelet's back-off: "
                    "10 s doubling up to 5 min).")
    impair: dict[IfName, Impairment] = Field({}, description="Impairments of the pod's eth0 egress.")
    enable_service_links: bool = Field(
        True, alias="enableServiceLinks",
        description="Whether its command containers start with the Service variables of the Services of its "
                    "namespace (<SVC>_SERVICE_HOST, <SVC>_SERVICE_PORT, Docker's <SVC>_PORT_...), as the kubelet "
                    "gives them; a Service default/kubernetes of the topology is given either way.")


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


class ClientIPConfig(Model):
    timeout_seconds: StrictInt = Field(
        AFFINITY_TIMEOUT_DEFAULT, alias="timeoutSeconds", ge=AFFINITY_TIMEOUT_RANGE[0], le=AFFINITY_TIMEOUT_RANGE[1],
        description="How long kube-proxy keeps a client on its endpoint after its last connection (1-86400 s, "
                    "as the API server allows; 10800, 3 h, when absent).")


class SessionAffinityConfig(Model):
    client_ip: ClientIPConfig = Field(ClientIPConfig(), alias="clientIP",
                                      description="sessionAffinity ClientIP's settings.")


class Service(Model):
    name: ServiceName = Field(description="Service name, unique in its namespace (web in x and web in y are two "
                                          "Services): a DNS-1035 label (it starts with a letter), as in Kubernetes.")
    namespace: Name = Field("default", description="Kubernetes namespace, used in the DNS name "
                                                   "<name>.<namespace>.svc.cluster.local.")
    selector: dict[LabelKey, LabelValue] = Field({}, description="Pods whose labels match are the endpoints.")
    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    cluster_ip: ClusterIp | None = Field(
        None, alias="clusterIP",
        description="Allocated from cluster.serviceCIDR when absent; None (the word) makes a headless Service: no "
                    "ClusterIP and no kube-proxy rules, its DNS name answers its endpoints' pod IPs.")
    session_affinity: Literal["None", "ClientIP"] = Field("None", alias="sessionAffinity")
    session_affinity_config: SessionAffinityConfig | None = Field(
        None, alias="sessionAffinityConfig",
        description="With sessionAffinity ClientIP only: clientIP.timeoutSeconds, kube-proxy's `recent --seconds` "
                    "(iptables) or its affinity sets' timeout (nftables).")
    external_ips: list[Ip] = Field(
        [], alias="externalIPs",
        description="Addresses routed to the cluster from outside (not allocated by netlab): every node's kube-proxy "
                    "sends traffic to <externalIP>:<port> to the Service, like its ClusterIP, through the external "
                    "chain (masqueraded; externalTrafficPolicy Local keeps the client's address). The lab's internet "
                    "gateway routes each one to the first node. Not 0.0.0.0, loopback or link-local (the API "
                    "server's rule), nor in the lab's own networks.")
    load_balancer_ip: Ip | None = Field(
        None, alias="loadBalancerIP",
        description="External IP of a LoadBalancer Service, which the lab's internet gateway routes to the nodes (a "
                    "passthrough balancer).")
    load_balancer_source_ranges: list[SourceRange] = Field(
        [], alias="loadBalancerSourceRanges",
        description="Type LoadBalancer only: the client addresses (CIDRs) allowed to reach the LoadBalancer IP. "
                    "Every node's kube-proxy drops the others (KUBE-FW-<hash> and KUBE-PROXY-FIREWALL; firewall-ips "
                    "in nftables mode): the lab's gateway routes the IP to the nodes untranslated.")
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
    ports: list[ServicePort] = Field([], description="At least one, but for a headless Service (clusterIP: None), "
                                                     "which may have none, as in Kubernetes: its DNS name answers its "
                                                     "endpoints' pod IPs, whatever their ports.")

    @property
    def affinity_seconds(self) -> int:
        """How long a client stays on its endpoint (sessionAffinity ClientIP): the API server's default 10800."""
        config = self.session_affinity_config
        return config.client_ip.timeout_seconds if config is not None else AFFINITY_TIMEOUT_DEFAULT

    @property
    def external_local(self) -> bool:
        """externalTrafficPolicy Local on a Service that takes outside traffic (kube-proxy's ExternalPolicyLocal)."""
        return self.external_traffic_policy == "Local" and self.externally_accessible

    @property
    def externally_accessible(self) -> bool:
        """The API server's ExternallyAccessible: a NodePort or LoadBalancer Service, or one with externalIPs."""
        return self.type != "ClusterIP" or bool(self.external_ips)

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


class Namespace(Model):
    name: Name = Field(description="Kubernetes namespace name (not a network namespace).")
    labels: dict[LabelKey, LabelValue] = Field({}, description="Labels that namespaceSelectors match; "
                                                                f"{NAMESPACE_NAME_LABEL} is always set.")



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
