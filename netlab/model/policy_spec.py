"""NetworkPolicy (networking.k8s.io/v1) as a topology holds it: typed, frozen pydantic models.

The field names are the API's own (``podSelector``, ``namespaceSelector``,
``matchExpressions``, ``ipBlock.except``, ``endPort``, ``policyTypes``), so a
policy copied from a cluster's manifest validates unchanged. What the fields
mean is in :mod:`netlab.model.netpol`; these models only say what is well
formed, with the API server's own rules:

* a label selector requirement with ``In``/``NotIn`` has values, one with
  ``Exists``/``DoesNotExist`` has none;
* a peer has ``ipBlock`` alone, or a pod and/or namespace selector;
* every ``except`` lies inside its ``cidr`` (of one family: IPv4, or IPv6, which a lab's IPv4 traffic never
  matches);
* ``endPort`` needs a numeric ``port`` not above it;
* a named ``port`` is an IANA service name (at most 15 characters);
* ``spec`` itself is optional (a struct, no pointer, in the API): left out or empty (``spec:``, null) it is the
  zero spec, which the defaults make ``podSelector: {}`` and ``policyTypes: [Ingress]``, all ingress denied to
  every pod of the policy's namespace;
* ``policyTypes`` has at most two items, each Ingress or Egress; a repeat is taken (the API server's
  ValidateNetworkPolicySpec refuses only a third item), meaning the set.

A *missing* list and an *empty* one differ (``ingress: []`` allows nothing,
``from:`` missing or empty allows every source), so the lists stay ``None``
when absent.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, StrictInt, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError

from netlab.model.fields import PORT_RANGE, BlockCidr, LabelKey, LabelValue, Model, Name, PolicyName, PolicyPort


class LabelSelectorRequirement(Model):
    key: LabelKey
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[LabelValue] | None = None

    @model_validator(mode="after")
    def _values_fit_operator(self) -> "LabelSelectorRequirement":
        if self.operator in ("In", "NotIn") and not self.values:
            raise ValueError(f"operator {self.operator} needs a non-empty values: list")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise ValueError(f"operator {self.operator} takes no values; remove values:")
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


PolicyType = Literal["Ingress", "Egress"]


def _at_most_two(types: list[str]) -> list[str]:
    """The API server's rule (ValidateNetworkPolicySpec): more than two policyTypes is refused, whatever they are;
    two of one type is not (it means that type). Reported at the third item, on its own line."""
    if len(types) > 2:
        error = PydanticCustomError("value_error", "may not specify more than two policyTypes (Ingress, Egress)")
        raise ValidationError.from_exception_data("policyTypes", [InitErrorDetails(type=error, loc=(2,),
                                                                                   input=types[2])])
    return types


class NetworkPolicySpec(Model):
    # Optional, as the API server takes it (a non-pointer LabelSelector; kubernetes/kubernetes#131354): left out,
    # it is the empty selector, all the pods of the policy's namespace.
    pod_selector: LabelSelector = Field(default_factory=LabelSelector, alias="podSelector",
                                        description="Pods of the policy's namespace it applies to; {} (or no "
                                                    "podSelector) selects all of them.")
    ingress: list[NetworkPolicyIngressRule] | None = None
    egress: list[NetworkPolicyEgressRule] | None = None
    policy_types: Annotated[list[PolicyType], AfterValidator(_at_most_two)] | None = Field(None, alias="policyTypes")

    @property
    def types(self) -> tuple[str, ...]:
        """policyTypes, or the API server's default (SetDefaults_NetworkPolicySpec): Ingress, plus Egress when
        egress rules are given. ``egress: []`` gives none: such a policy does not isolate for egress (deny-all
        egress needs ``policyTypes: [Egress]``)."""
        if self.policy_types:
            return tuple(t for t in ("Ingress", "Egress") if t in self.policy_types)
        return ("Ingress", "Egress") if self.egress else ("Ingress",)


def _null_spec(value: Any) -> Any:
    """``spec:`` with no value (null) is the zero spec, as the API server decodes it: ``{}``."""
    return {} if value is None else value


def _spec_or_null(schema: dict[str, Any]) -> None:
    """The JSON Schema of ``spec``: the spec's, or null (``spec:`` with no value)."""
    schema["anyOf"] = [{"$ref": schema.pop("$ref")}, {"type": "null"}]


# A policy's spec as the API server reads it, inline or in a manifest: optional, null the zero spec.
PolicySpec = Annotated[NetworkPolicySpec, BeforeValidator(_null_spec)]


class NetworkPolicy(Model):
    name: PolicyName = Field(description="Policy name, unique within its namespace: a DNS subdomain (dots allowed, at "
                                         "most 253 characters), as in Kubernetes.")
    namespace: Name = Field("default", description="The Kubernetes namespace the policy lives in.")
    # Optional, as the API server takes it: no spec, or an empty one, denies all ingress in the namespace.
    spec: PolicySpec = Field(
        default_factory=NetworkPolicySpec, json_schema_extra=_spec_or_null,
        description="What the policy selects and allows; none (or an empty one) is podSelector {} and "
                    "policyTypes [Ingress]: all ingress to every pod of its namespace denied.")
