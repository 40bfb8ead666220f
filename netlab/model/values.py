"""The checks of a topology's single values (names, labels, addresses, CIDRs, command arguments), each a
pydantic ``BeforeValidator`` of a field type of topology.py, with the words of its error.

Pure: no I/O. A value of the wrong YAML kind (a number where an address goes) is said as such, a CIDR with
host bits set gets the network it probably meant.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Network, IPv6Network
from typing import Any, Callable

from netlab.model.location import show, yaml_kind
from netlab.model.naming import dns_1035_label_problem, dns_label_problem, dns_subdomain_problem, lab_name_problem

# Kubernetes label keys: an optional DNS-subdomain prefix (at most 253) and "/", then a name (at most 63):
# app, app.kubernetes.io/name, kubernetes.io/metadata.name. Values are names, or empty.
LABEL_KEY = re.compile(r"^(?:([a-z0-9]([-a-z0-9.]*[a-z0-9])?)/)?([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
LABEL_PREFIX_MAX = 253
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_IPV4 = re.compile(r"^[0-9]{1,3}(\.[0-9]{1,3}){3}$")
_CIDR = re.compile(r"^[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}$")

LABEL_MAX = 63

# Ranges no lab address may come from: the kernel refuses them on an interface or a route
# (0.0.0.0/8 "this network", 240.0.0.0/4 and the broadcast address), or gives them a meaning
# of their own (loopback, link-local, multicast).
SPECIAL_RANGES = tuple((IPv4Network(net), what) for net, what in (
    ("0.0.0.0/8", "'this network'"), ("127.0.0.0/8", "loopback"), ("169.254.0.0/16", "link-local"),
    ("224.0.0.0/4", "multicast"), ("240.0.0.0/4", "reserved, with the broadcast address")))


def _raising(problem_of: Callable[[str], str | None]) -> Callable[[Any], Any]:
    """A pydantic validator of a name from its check: the value as it is, or ValueError with the problem's words.
    A value that is no string is left to StrictStr, which reports its type."""
    def check(value: Any) -> Any:
        if isinstance(value, str):
            problem = problem_of(value)
            if problem:
                raise ValueError(problem)
        return value
    return check


as_dns_label = _raising(dns_label_problem)
as_dns_1035_label = _raising(dns_1035_label_problem)
as_dns_subdomain = _raising(dns_subdomain_problem)
as_lab_name = _raising(lab_name_problem)


def as_label_key(value: Any) -> Any:
    m = LABEL_KEY.fullmatch(value) if isinstance(value, str) else None
    too_long = m is not None and (len(m.group(3)) > LABEL_MAX or len(m.group(1) or "") > LABEL_PREFIX_MAX)
    if isinstance(value, str) and (m is None or too_long):
        raise ValueError(f"label key {show(value, 30)} is not valid; use [prefix/]name: a name of letters, digits, "
                         f"'-', '_' and '.', starting and ending with a letter or digit, at most {LABEL_MAX}, after "
                         f"an optional DNS subdomain prefix (app.kubernetes.io/name)")
    return value


def as_label_value(value: Any) -> Any:
    if isinstance(value, str) and (len(value) > LABEL_MAX or not LABEL_VALUE.fullmatch(value)):
        raise ValueError(f"label value {show(value, 30)} is not valid; use letters, digits, '-', '_' and '.', "
                         f"starting and ending with a letter or digit, at most {LABEL_MAX}")
    return value


def as_ip(value: Any) -> Any:
    if isinstance(value, IPv4Address):
        return value
    if not isinstance(value, str):
        raise ValueError(f"must be an IPv4 address written as a string like \"10.244.0.2\", not {yaml_kind(value)}")
    if "/" in value and _CIDR.fullmatch(value):
        raise ValueError(f"{show(value, 30)} is a CIDR; give the address alone, without /prefix")
    if not _IPV4.fullmatch(value):
        raise ValueError(f"{show(value, 30)} is not an IPv4 address like 10.244.0.2")
    try:
        return IPv4Address(value)
    except ValueError as exc:
        raise ValueError(f"{show(value, 30)} is not an IPv4 address like 10.244.0.2 ({exc})") from None


def as_cidr(value: Any) -> Any:
    if isinstance(value, IPv4Network):
        return value
    if not isinstance(value, str):
        raise ValueError(f"must be an IPv4 CIDR written as a string like \"10.244.0.0/16\", not {yaml_kind(value)}")
    if _IPV4.fullmatch(value):
        raise ValueError(f"{show(value, 30)} has no prefix length; write it as a CIDR like {value}/24")
    if not _CIDR.fullmatch(value):
        raise ValueError(f"{show(value, 30)} is not an IPv4 CIDR like 10.244.0.0/16")
    try:
        return IPv4Network(value)
    except ValueError as exc:
        try:
            loose = IPv4Network(value, strict=False)
        except ValueError:
            raise ValueError(f"{show(value, 30)} is not an IPv4 CIDR like 10.244.0.0/16 ({exc})") from None
        raise ValueError(f"{value} has host bits set; did you mean {loose}?") from None


class LooseV4Network(IPv4Network):
    """A block written with host bits set (``10.244.1.5/16``), read as its network (10.244.0.0/16), as the API
    server reads an ipBlock (ParseCIDRSloppy; it warns that the value is ambiguous): equal to that network, and
    keeping what was written, for the note that says so (netpol.policy_notes)."""

    written = ""


class LooseV6Network(IPv6Network):
    written = ""


def _loose(kind: type[LooseV4Network] | type[LooseV6Network], value: str) -> IPv4Network | IPv6Network:
    net = kind(value, strict=False)
    net.written = value
    return net


def as_block_cidr(value: Any) -> Any:
    """An ipBlock's cidr or except: IPv4 as everywhere, or IPv6, which the API server takes in any cluster (a
    policy is written for every cluster it may be applied to); in an IPv4 lab such a block matches nothing.
    Host bits set are the API server's legacy rule too (IsValidCIDRForLegacyField): the network is meant."""
    if isinstance(value, IPv6Network):
        return value
    if not (isinstance(value, str) and ":" in value):
        if isinstance(value, str) and _CIDR.fullmatch(value):
            try:
                IPv4Network(value)
            except ValueError:
                try:
                    return _loose(LooseV4Network, value)
                except ValueError:
                    pass  # not a network at all: as_cidr says why
        return as_cidr(value)
    if "/" not in value:
        raise ValueError(f"{show(value, 30)} has no prefix length; write it as a CIDR like {value}/64")
    if "%" in value:  # a zone (fe80::1%eth0) is an interface's, not a network's (ParseCIDR refuses it)
        raise ValueError(f"{show(value, 30)} is not an IPv4 or IPv6 CIDR like 10.0.0.0/8 or 2001:db8::/32 "
                         "(a zone index names an interface, not a network)")
    try:
        return IPv6Network(value)
    except ValueError as exc:
        try:
            return _loose(LooseV6Network, value)
        except ValueError:
            raise ValueError(f"{show(value, 30)} is not an IPv4 or IPv6 CIDR like 10.0.0.0/8 or 2001:db8::/32 "
                             f"({exc})") from None


def as_argv_item(value: Any) -> Any:
    if isinstance(value, str) and "\0" in value:
        raise ValueError("a command argument cannot contain a NUL character")
    return value


