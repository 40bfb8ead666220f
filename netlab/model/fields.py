"""The scalar types and the base model of a topology's fields: names, labels, addresses, ports.

Each type is a pydantic ``Annotated`` scalar with the API server's own rules
(a DNS label, a label key or value, a port or an IANA port name), so every
model of :mod:`netlab.model.topology` and :mod:`netlab.model.policy_spec`
says the same thing about the same kind of value.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Network, IPv6Network
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, StrictStr

from netlab.model.location import show
from netlab.model.naming import DNS_1035_LABEL, DNS_LABEL, DNS_SUBDOMAIN, LAB_NAME_MAX, NAME_MAX, SUBDOMAIN_MAX
from netlab.model.values import (LABEL_MAX, LABEL_PREFIX_MAX, LABEL_VALUE, as_argv_item, as_block_cidr,
                                 as_cidr, as_dns_1035_label, as_dns_label, as_dns_subdomain, as_ip, as_label_key,
                                 as_label_value, as_lab_name)

# Namespace names are "<lab>-<name>"; keep them DNS labels too.
NETNS_NAME_MAX = 63
# Names of namespaces netlab makes besides nodes and pods.
RESERVED_NAMES = frozenset({"underlay", "gateway", "lb", "internet"})
# Numeric ranges: (low, high, what), used by the fields and by error messages.
PORT_RANGE = (1, 65535, "ports")
NODE_PORT_RANGE = (30000, 32767, "nodePorts")
# kube-proxy's health server on every node (--healthz-bind-address, healthzBindAddress: 0.0.0.0:10256): /healthz, which
# cloud load balancers ask, and /livez. Outside NODE_PORT_RANGE, which a topology cannot change, so no nodePort or
# healthCheckNodePort is ever it; a TCP hostPort could be (model/hostports.py refuses it).
KUBE_PROXY_HEALTHZ_PORT = 10256
# A VNI has 24 bits, but Flannel's device is flannel.<VNI>: over 9999999 its name is longer than the kernel's 15
# bytes (IFNAMSIZ), and no such lab can be made. The field takes 24 bits (what a lab's saved topology of an older
# netlab, in host-gw mode, may hold); check_topology refuses what is over the range in the same words.
VNI_RANGE = (1, 9999999, "VXLAN VNIs (the device flannel.<VNI> must fit the kernel's 15-byte interface names)")
VNI_BITS_MAX = 2 ** 24 - 1
MTU_RANGE = (1280, 9000, "underlay MTUs")
NODE_MASK_RANGE = (16, 28, "nodeMask prefix lengths")
# sessionAffinityConfig.clientIP.timeoutSeconds: the API server's 0 < t <= MaxClientIPServiceAffinitySeconds
AFFINITY_TIMEOUT_RANGE = (1, 86400, "ClientIP affinity timeouts (seconds, at most a day)")
AFFINITY_TIMEOUT_DEFAULT = 10800  # v1.DefaultClientIPServiceAffinitySeconds (3 h)
RANGES: dict[str, tuple[int, int, str]] = {
    "port": PORT_RANGE, "containerPort": PORT_RANGE, "hostPort": PORT_RANGE,
    "nodePort": NODE_PORT_RANGE, "vni": VNI_RANGE, "mtu": MTU_RANGE, "nodeMask": NODE_MASK_RANGE,
    "timeoutSeconds": AFFINITY_TIMEOUT_RANGE,
}


Name = Annotated[StrictStr, Field(max_length=NAME_MAX, pattern=DNS_LABEL.pattern), BeforeValidator(as_dns_label)]
# A Service's name (DNS-1035 label) and a NetworkPolicy's (DNS subdomain), as the API server validates them.
ServiceName = Annotated[StrictStr, Field(max_length=NAME_MAX, pattern=DNS_1035_LABEL.pattern),
                        BeforeValidator(as_dns_1035_label)]
PolicyName = Annotated[StrictStr, Field(max_length=SUBDOMAIN_MAX, pattern=DNS_SUBDOMAIN.pattern),
                       BeforeValidator(as_dns_subdomain)]
LabName = Annotated[StrictStr, Field(max_length=LAB_NAME_MAX, pattern=DNS_LABEL.pattern), BeforeValidator(as_lab_name)]
# The label key's rule in one pattern, its two lengths as bounded repetitions (the schema's propertyNames: an editor
# checks a key as the loader does); LABEL_KEY and as_label_key say which part is wrong.
LABEL_KEY_BOUNDED = (rf"^(?:([a-z0-9]([-a-z0-9.]{{0,{LABEL_PREFIX_MAX - 2}}}[a-z0-9])?)/)?"
                     rf"([A-Za-z0-9]([-A-Za-z0-9_.]{{0,{LABEL_MAX - 2}}}[A-Za-z0-9])?)$")
LabelKey = Annotated[StrictStr, Field(max_length=LABEL_PREFIX_MAX + 1 + LABEL_MAX, pattern=LABEL_KEY_BOUNDED),
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


def _source_range(value: Any) -> Any:
    """loadBalancerSourceRanges: the API server's IsValidCIDR after TrimSpace (its historical leniency), which
    takes host bits (203.0.113.7/24), as kube-proxy's parse masks them (203.0.113.0/24)."""
    if isinstance(value, str):
        value = value.strip()
        try:
            return IPv4Network(value, strict=False) if "/" in value else as_cidr(value)
        except ValueError:
            return as_cidr(value)
    return as_cidr(value)


SourceRange = Annotated[IPv4Network, BeforeValidator(_source_range)]
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
# The same rule in one pattern without look-arounds (the schema's, which editors check): '-'-separated runs of
# letters and digits, one of them holding a letter.
IANA_SVC_NAME = r"^([a-z0-9]+-)*[0-9]*[a-z][a-z0-9]*(-[a-z0-9]+)*$"


def is_port_name(value: str) -> bool:
    return (len(value) <= PORT_NAME_MAX and bool(PORT_NAME.fullmatch(value)) and "--" not in value
            and re.search("[a-z]", value) is not None)


def _port_name(value: Any) -> Any:
    if isinstance(value, str) and not is_port_name(value):
        raise ValueError(f"{show(value, 30)} is not a port name: lower-case letters, digits and '-', at most "
                         f"{PORT_NAME_MAX}, at least one letter, no '-' at either end or twice in a row (the name "
                         "a Service's targetPort or a policy's port refers to)")
    return value


# A port name's type (the schema says its rule; _port_name, before it, says what is wrong in netlab's words).
PortNameText = Annotated[StrictStr, Field(max_length=PORT_NAME_MAX, pattern=IANA_SVC_NAME)]
PortName = Annotated[PortNameText, BeforeValidator(_port_name)]


class Model(BaseModel):
    # defer_build: a model's validator and serializer are built when it is first used, not when its class is
    # defined. Validating a Topology builds one validator that holds every nested model's schema; the nested
    # models' own, which pydantic would otherwise build for each of them at import, are built only if used
    # alone (every command that reads a lab's state starts ~25 ms sooner on the 2-core VM).
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)

    def written(self, *path: str) -> bool:
        """Whether the field at ``path`` (YAML names: ``"network", "underlay", "cidr"``) was given, not left to
        its default: a problem a default takes part in is said at the field the user wrote."""
        model: Any = self
        for part in path:
            name = next((n for n, f in type(model).model_fields.items() if (f.alias or n) == part), None)
            if name is None or name not in model.model_fields_set:
                return False
            model = getattr(model, name)
        return True


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


PolicyPort = Annotated[Port | PortNameText, BeforeValidator(_port_value)]
# A Service's targetPort: a number, or a container port's name (IANA_SVC_NAME, as the API server validates it).
TargetPort = Annotated[Port | PortNameText, BeforeValidator(_port_value)]
